"""Export a GPT, T5 or BART model as a SavedModel that turns prompts into text (TF Serving ready).

Layout, as TF Serving expects::

    OUTPUT/1/saved_model.pb, variables/,
             assets.extra/task.json (or config.yaml), assets.extra/generation.json
    OUTPUT/2/...   (each export adds the next version)

Signatures:

* ``serving_default``: ``prompt`` (tf.string ``[batch]``) -> ``text``
  (tf.string ``[batch]``, the continuation for GPT, the target for T5/BART),
  ``token_ids`` (int32 ``[batch, max_new_tokens]``, the new tokens, padded
  with the pad id) and ``lengths`` (int32 ``[batch]``, new tokens per row).
* ``tokenize``: ``prompt`` -> ``token_ids`` (int32 ``[batch, tokens]``, the ids
  the model reads, padded) and ``lengths``.

The whole path is one plain graph (no XLA, which TF Serving CPU builds may
lack): the tokenizer, the prompt preparation of `TextGenerator` (the same
code, so the same text), the cache prefill, the decoding loop and the
detokenizer. The batch is dynamic; GPT prompts are padded to the context
minus ``max_new_tokens``. The tokenizer's model travels inside the graph, so
loading needs only ``tensorflow`` and ``tensorflow_text``. Random strategies
draw a new seed for every request.

Example:

>>> path = export_generator("runs/gpt_tiny", "exports/gpt", max_new_tokens=32)  # doctest: +SKIP
>>> import tensorflow as tf, tensorflow_text                                   # doctest: +SKIP
>>> serve = tf.saved_model.load(str(path)).signatures["serving_default"]      # doctest: +SKIP
>>> serve(prompt=tf.constant(["The history of"]))["text"]                     # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import tensorflow as tf

from tfptlm.config import load_config
from tfptlm.export.saved_model import PROBE_TEXTS, _write_archive, version_dir
from tfptlm.export.serving_functions import clean, strings
from tfptlm.finetuning.run import TASK_FILE
from tfptlm.generation.text import TextGenerator, load_generator

#: Fine-tuning tasks and pretraining objectives whose models generate text.
GENERATIVE_TASKS = ("seq2seq", "causal_lm")
GENERATIVE_OBJECTIVES = ("clm", "span_corruption", "text_infilling")

#: Settings of the export (strategy, ``max_new_tokens``, sampler options), in assets.extra.
GENERATION_FILE = "generation.json"

#: Prompts every export is checked on, besides `PROBE_TEXTS`: one longer than any context.
GENERATION_PROBES = PROBE_TEXTS + ["the history of " * 2_000]


def is_generative(model_dir: Path) -> bool:
    """Whether a ``tfptlm finetune`` or ``tfptlm pretrain`` output holds a GPT, T5 or BART model."""
    if (model_dir / TASK_FILE).is_file():
        return json.loads((model_dir / TASK_FILE).read_text())["task"] in GENERATIVE_TASKS
    config = model_dir / "config.yaml"
    return config.is_file() and load_config(config).objective in GENERATIVE_OBJECTIVES


def generation_endpoints(
    generator: TextGenerator, max_new_tokens: int, strategy: str = "greedy", **sampler_options: Any
) -> dict:
    """``serving_default`` and ``tokenize`` of a generator (see the module docstring)."""
    generate_fn = generator.generate_fn(strategy, **sampler_options)
    pad_id = generator.tokenizer.pad_id

    def serve(prompt):
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
        out = generator.generate_tensors(
            clean(prompt), max_new_tokens, generate_fn, seed=seed, fixed_length=True
        )
        new = out["token_ids"]
        return {
            "text": out["text"],
            "token_ids": new.to_tensor(default_value=pad_id, shape=[None, max_new_tokens]),
            "lengths": tf.cast(new.row_lengths(), tf.int32),
        }

    def tokenize(prompt):
        ids = generator.prompt_token_ids(clean(prompt), max_new_tokens)
        return {
            "token_ids": ids.to_tensor(default_value=pad_id),
            "lengths": tf.cast(ids.row_lengths(), tf.int32),
        }

    return {"serving_default": (serve, [strings("prompt")]), "tokenize": (tokenize, [strings("prompt")])}


def export_generator(
    model_dir: str | Path,
    output_dir: str | Path,
    version: int | None = None,
    max_new_tokens: int = 64,
    strategy: str = "greedy",
    check: bool = True,
    **sampler_options: Any,
) -> Path:
    """Exports a GPT, T5 or BART model to ``output_dir/<version>`` (prompt in, text out).

    Args:
        model_dir: a ``tfptlm finetune`` output (task ``seq2seq`` or
            ``causal_lm``) or a ``tfptlm pretrain`` output (objective ``clm``,
            ``span_corruption`` or ``text_infilling``).
        output_dir: the export base directory (TF Serving's model base path).
        version: the version number; default the next free one.
        max_new_tokens: the most tokens generated per prompt.
        strategy: ``greedy``, ``beam``, ``top_k``, ``top_p`` or ``random``,
            with ``sampler_options`` as in `TextGenerator.generate`.
        check: reload the export and check that it writes what
            `TextGenerator.generate` writes on `GENERATION_PROBES` (empty,
            emoji, Chinese, longer than the context...; raises
            ``AssertionError`` if not). The generator runs without XLA, like
            the export, so float rounding cannot flip a near tie. Skipped for
            the random strategies.

    Returns:
        The version directory written.

    Example:

    >>> export_generator("runs/multi30k", "exports/translate", max_new_tokens=48)  # doctest: +SKIP
    PosixPath('exports/translate/1')
    """
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    loaded = load_generator(model_dir)
    graph_generator = TextGenerator(loaded.model, loaded.preprocessor, jit_compile=False)
    endpoints = generation_endpoints(graph_generator, max_new_tokens, strategy, **sampler_options)
    target = version_dir(output_dir, version)
    _write_archive(target, [loaded.tokenizer], endpoints)
    settings = {"max_new_tokens": max_new_tokens, "strategy": strategy, **sampler_options}
    (target / "assets.extra" / GENERATION_FILE).write_text(json.dumps(settings, indent=2) + "\n")
    description = TASK_FILE if (model_dir / TASK_FILE).is_file() else "config.yaml"
    shutil.copy(model_dir / description, target / "assets.extra" / description)
    if check and strategy in ("greedy", "beam"):
        check_generation_parity(graph_generator, target, max_new_tokens, strategy, **sampler_options)
    return target


def check_generation_parity(
    generator: TextGenerator, export_path: Path, max_new_tokens: int, strategy: str = "greedy", **options: Any
) -> None:
    """Reloads the export and checks that it writes what ``generator`` writes on `GENERATION_PROBES`."""
    serve = tf.saved_model.load(str(export_path)).signatures["serving_default"]
    exported = [t.decode("utf-8") for t in serve(prompt=tf.constant(GENERATION_PROBES))["text"].numpy()]
    with warnings.catch_warnings():  # the long probe is cut to fit, by design
        warnings.simplefilter("ignore", UserWarning)
        expected = generator.generate(GENERATION_PROBES, max_new_tokens, strategy, **options)
    differing = [(p[:40], e, a) for p, e, a in zip(GENERATION_PROBES, expected, exported) if e != a]
    assert not differing, (
        f"the export writes other text than the model (prompt, expected, exported): {differing}"
    )
