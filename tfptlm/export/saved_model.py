"""Export a fine-tuned model as a versioned SavedModel that takes raw strings.

Layout, as TF Serving expects::

    OUTPUT/1/saved_model.pb, variables/, assets/vocab.txt, assets.extra/task.json
    OUTPUT/2/...   (each export adds the next version)

Signatures: ``serving_default`` (raw strings in, answers out),
``serve_tokens`` (token ids and masks in, for clients that tokenize
themselves) and ``tokenize`` (text in, those inputs and the token strings
out); see `tfptlm.export.serving_functions`. The tokenizer runs inside the
graph and its vocabulary travels as an asset (``assets/vocab.txt``, read by
``tokenize``), so loading needs only ``tensorflow`` and ``tensorflow_text``.

Example:

>>> path = export_saved_model("runs/sst2", "exports/sst2")      # doctest: +SKIP
>>> import tensorflow as tf, tensorflow_text                     # doctest: +SKIP
>>> serve = tf.saved_model.load(str(path)).signatures["serving_default"]  # doctest: +SKIP
>>> serve(text=tf.constant(["A gorgeous, witty film."]))["label"]         # doctest: +SKIP
"""

from __future__ import annotations

import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfptlm.export import serving_functions
from tfptlm.finetuning.backbones import TOKENIZER_DIR, load_model_dir
from tfptlm.finetuning.run import TASK_FILE, load_finetuned
from tfptlm.tokenizers.wordpiece_files import VOCABULARY_FILE

#: The MLM + NSP model in a ``tfptlm pretrain`` output directory.
PRETRAINER_FILE = "pretrainer.keras"

#: Strings every export is checked on: ordinary text plus the inputs that
#: break tokenizers (empty, whitespace, emoji, control characters, mixed scripts).
PROBE_TEXTS = [
    "A gorgeous, witty and moving film.",
    "",
    "   \t ",
    "Emoji 🎬🍿 and accents: crème brûlée, naïve café",
    "control\x00\x07characters\u200b here",
    "混合 scripts: 北京 is in 中国, Москва in Россия",
]


def next_version(output_dir: Path) -> int:
    """One more than the highest numbered version folder in ``output_dir`` (1 if none)."""
    versions = [int(p.name) for p in output_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def endpoints_for(model) -> dict:
    """The signatures of a loaded fine-tuned model (see `load_finetuned`)."""
    task, data = model.recipe.task, model.data_config
    if task == "text_classification":
        return serving_functions.classification_endpoints(model, data.text_pair_column is not None)
    if task == "token_classification":
        return serving_functions.token_classification_endpoints(model)
    return serving_functions.question_answering_endpoints(model, data.max_answer_length)


def export_saved_model(
    model_dir: str | Path,
    output_dir: str | Path,
    version: int | None = None,
    check: bool = True,
    max_new_tokens: int = 64,
) -> Path:
    """Exports a fine-tuned model or a pretrained model to ``output_dir/<version>``.

    GPT, T5 and BART models (fine-tuned or pretrained) are exported by
    `tfptlm.export.generation.export_generator` (prompt in, text out).

    Args:
        model_dir: a ``tfptlm finetune`` output directory, or a ``tfptlm
            pretrain`` output directory (BERT: exported as masked-word fill-in).
        output_dir: the export base directory (TF Serving's model base path).
        version: the version number; default the next free one.
        check: reload the export and check that it answers like the Keras
            model on `PROBE_TEXTS` (raises ``AssertionError`` if not).
        max_new_tokens: the most tokens a generative model writes per prompt.

    Returns:
        The version directory written.
    """
    from tfptlm.export.generation import export_generator, is_generative  # it imports this module

    model_dir, output_dir = Path(model_dir), Path(output_dir)
    if is_generative(model_dir):
        return export_generator(model_dir, output_dir, version, max_new_tokens, check=check)
    if not (model_dir / TASK_FILE).is_file() and (model_dir / PRETRAINER_FILE).is_file():
        return _export_fill_mask(model_dir, output_dir, version, check)
    model = load_finetuned(model_dir)
    target = version_dir(output_dir, version)
    tokenizer = model.preprocessor.tokenizer
    table = serving_functions.vocabulary_table(tokenizer, model_dir / TOKENIZER_DIR / VOCABULARY_FILE)
    endpoints = endpoints_for(model)
    endpoints.update(
        serving_functions.tokenize_endpoint(tokenizer, model.data_config.sequence_length, table)
    )
    _write_archive(target, [tokenizer, table], endpoints)
    shutil.copy(model_dir / TASK_FILE, target / "assets.extra" / TASK_FILE)
    if check:
        check_parity(model, target)
    return target


def version_dir(output_dir: Path, version: int | None) -> Path:
    """``output_dir/<version>`` (default the next free one); an existing version is an error."""
    target = output_dir / str(version or next_version(output_dir))
    if target.exists():
        raise FileExistsError(f"{target} already exists; choose another version")
    return target


def _write_archive(target: Path, trackables: list, endpoints: dict) -> None:
    """Writes the endpoints; ``trackables`` are the non-Keras resources they use.

    The Keras model is deliberately not passed to ``track``: the endpoints
    capture its variables anyway, and tracking it too stores every weight
    twice (once per Keras variable, once per TF variable), doubling the size.
    """
    archive = keras.export.ExportArchive()
    for trackable in trackables:
        archive.track(trackable)
    for name, (function, signature) in endpoints.items():
        archive.add_endpoint(name, function, input_signature=signature)
    archive.write_out(str(target), verbose=False)
    (target / "assets.extra").mkdir(exist_ok=True)


def _export_fill_mask(model_dir: Path, output_dir: Path, version: int | None, check: bool) -> Path:
    """Exports a pretraining output's MLM head: ``[MASK]`` marks in, likely words out."""
    from tfptlm.config import MLM_OBJECTIVES, load_config

    config = load_config(model_dir / "config.yaml")
    if config.objective not in MLM_OBJECTIVES:
        raise ValueError(
            f"{model_dir} holds a {config.objective} pretraining run, which has no masked-word "
            "head to serve; fine-tune it (tfptlm finetune) and export the fine-tuned model"
        )
    pretrainer, tokenizer = load_model_dir(model_dir, PRETRAINER_FILE)
    length = config.data.max_sequence_length
    table = serving_functions.vocabulary_table(tokenizer, model_dir / TOKENIZER_DIR / VOCABULARY_FILE)
    endpoints = serving_functions.fill_mask_endpoints(pretrainer, tokenizer, length, table)
    endpoints.update(serving_functions.tokenize_endpoint(tokenizer, length, table))
    target = version_dir(output_dir, version)
    _write_archive(target, [tokenizer, table], endpoints)
    shutil.copy(model_dir / "config.yaml", target / "assets.extra" / "config.yaml")
    if check:
        serve = tf.saved_model.load(str(target)).signatures["serving_default"]
        mark = tokenizer.id_to_token(tokenizer.mask_id)
        probes = ["The [MASK] of France is Paris.", "no mark", "[MASK][MASK]"] + PROBE_TEXTS
        texts = tf.constant([text.replace("[MASK]", mark) for text in probes])
        expected = tf.function(endpoints["serving_default"][0])(texts)
        actual = serve(text=texts)
        np.testing.assert_array_equal(actual["tokens"], expected["tokens"])
        np.testing.assert_allclose(actual["scores"], expected["scores"], atol=1e-5)
    return target


def probe_inputs(task: str, text_pairs: bool) -> dict:
    """Signature inputs built from `PROBE_TEXTS` for a task."""
    texts = tf.constant(PROBE_TEXTS)
    if task == "question_answering":
        return {"question": texts, "context": tf.constant(PROBE_TEXTS[::-1])}
    if text_pairs:
        return {"text": texts, "text_pair": tf.constant(PROBE_TEXTS[::-1])}
    return {"text": texts}


def keras_answers(model, inputs: dict) -> dict:
    """What the Keras model answers for signature inputs, in the signature's terms."""
    task = model.recipe.task
    as_text = {k: [s.decode("utf-8") for s in v.numpy()] for k, v in inputs.items()}
    if task == "text_classification":
        probabilities = model.predict_probabilities(as_text["text"], as_text.get("text_pair"))
        return {
            "label": np.array([model.label_names[i] for i in probabilities.argmax(-1)]),
            "probabilities": probabilities,
        }
    if task == "token_classification":
        tags = model.tag_words(_words(as_text["text"]))
        return {"tags": [t for row in tags for t in row]}
    answers = model.answer(
        as_text["question"], as_text["context"], max_answer_length=model.data_config.max_answer_length
    )
    return {"answer": np.array([a["text"] for a in answers]), "start": np.array([a["start"] for a in answers])}


def _words(texts: list[str]) -> list[list[str]]:
    from tfptlm.tokenizers.normalization import split_words_with_offsets

    words, _, _ = split_words_with_offsets(tf.constant(texts))
    return [[w.decode("utf-8") for w in row] for row in words.to_list()]


def exported_answers(serve, inputs: dict) -> dict:
    """The exported signature's answers, comparable with `keras_answers`."""
    outputs = {k: v.numpy() for k, v in serve(**inputs).items()}
    if "tags" in outputs:
        return {"tags": [t.decode() for row in outputs["tags"] for t in row if t]}
    decoded = {k: np.array([s.decode("utf-8") for s in v]) if v.dtype == object else v for k, v in outputs.items()}
    return {k: decoded[k] for k in ("label", "probabilities", "answer", "start") if k in decoded}


def check_parity(model, export_path: Path, atol: float = 1e-5) -> None:
    """Reloads the export and checks it against the Keras model on the probe texts."""
    serve = tf.saved_model.load(str(export_path)).signatures["serving_default"]
    inputs = probe_inputs(model.recipe.task, model.data_config.text_pair_column is not None)
    expected, actual = keras_answers(model, inputs), exported_answers(serve, inputs)
    for key, value in expected.items():
        if np.asarray(value).dtype.kind == "f":
            np.testing.assert_allclose(actual[key], value, atol=atol, err_msg=f"exported {key} differs")
        else:
            np.testing.assert_array_equal(actual[key], value, err_msg=f"exported {key} differs")
