"""Text in, text out: prompts through a `CausalLM` or `Seq2SeqLM` and the decoding loop.

`TextGenerator` tokenizes prompts with the model's preprocessor, fills the
key/value cache, runs `compile_generate_fn` (one XLA program per strategy
and padded shape) and detokenizes the new tokens.

* GPT (`CausalLM`): the prompt is ``</s> prompt`` and the model continues
  it. A prompt that does not fit the context window with
  ``max_new_tokens`` keeps its last tokens, with a warning. An empty prompt
  generates from ``</s>`` alone (text from scratch).
* T5/BART (`Seq2SeqLM`): the prompt is the source text (cut to the
  preprocessor's ``source_length``); the decoder starts from the model's
  ``decoder_start_id``.

Generation stops at ``</s>`` or after ``max_new_tokens``. Prompts are padded
to a multiple of 16 tokens, so prompts of similar length share a compiled
program. ``use_cache=False`` recomputes the whole sequence at every step
(the reference the cached path must equal, and a speed baseline).

Example:

>>> generator = load_generator("runs/gpt_tiny")                       # doctest: +SKIP
>>> generator.generate(["The history of"], max_new_tokens=20, strategy="top_p", p=0.9)  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from keras import ops

from tfptlm.generation.decoding import compile_generate_fn

#: Prompt lengths are padded up to a multiple of this (fewer distinct compiled shapes).
PROMPT_LENGTH_MULTIPLE = 16


class TextGenerator:
    """Generates text with a `CausalLM` or `Seq2SeqLM` and its preprocessor.

    Args:
        model: a `CausalLM` (GPT) or `Seq2SeqLM` (T5, BART).
        preprocessor: its `CausalLMPreprocessor` or `Seq2SeqPreprocessor`.
        jit_compile: compile the decoding loop with XLA.
    """

    def __init__(self, model, preprocessor, jit_compile: bool = True):
        self.model = model
        self.preprocessor = preprocessor
        self.tokenizer = preprocessor.tokenizer
        self.backbone = model.backbone
        self.is_seq2seq = hasattr(self.backbone, "encode")
        self.jit_compile = jit_compile
        self._compiled: dict = {}

    def generate(
        self,
        prompts: str | list[str],
        max_new_tokens: int = 64,
        strategy: str = "greedy",
        seed: int | None = None,
        batch_size: int = 32,
        use_cache: bool = True,
        **sampler_options: Any,
    ) -> list[str]:
        """Returns the generated text for each prompt (without the prompt).

        Args:
            prompts: one prompt or a list.
            max_new_tokens: the most tokens generated per prompt.
            strategy: ``greedy``, ``beam`` (``num_beams``, ``length_penalty``),
                ``top_k`` (``k``, ``temperature``), ``top_p`` (``p``,
                ``temperature``, optional ``k``) or ``random`` (``temperature``).
            seed: makes sampling repeatable.
            batch_size: prompts decoded together.
            use_cache: reuse keys/values (fast); False recomputes every step.
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        if not prompts:
            raise ValueError("no prompts to generate from")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        generate_fn = self._generate_fn(strategy, use_cache, sampler_options)
        outputs: list[str] = []
        for start in range(0, len(prompts), batch_size):
            batch = list(prompts[start : start + batch_size])
            run = self._seq2seq_batch if self.is_seq2seq else self._causal_batch
            outputs.extend(run(batch, max_new_tokens, generate_fn, use_cache, seed))
        return outputs

    def _generate_fn(self, strategy: str, use_cache: bool, options: dict):
        key = (strategy, use_cache, tuple(sorted(options.items())))
        if key not in self._compiled:
            step_fn = {
                (False, True): self._causal_step,
                (False, False): self._causal_step_uncached,
                (True, True): self._seq2seq_step,
                (True, False): self._seq2seq_step_uncached,
            }[(self.is_seq2seq, use_cache)]
            self._compiled[key] = compile_generate_fn(
                step_fn,
                strategy,
                stop_token_ids=(self.tokenizer.eos_id,),
                pad_id=self.tokenizer.pad_id,
                jit_compile=self.jit_compile,
                **options,
            )
        return self._compiled[key]

    # -- GPT ------------------------------------------------------------------

    def _causal_step(self, token_ids, cache, index):
        logits, _, cache = self.backbone.call_with_cache(token_ids, cache, index)
        return logits[:, -1, :], cache

    def _causal_step_uncached(self, token_ids, buffer, index):
        buffer = ops.slice_update(buffer, (0, index), token_ids)
        hidden = self.backbone(
            {"token_ids": buffer, "padding_mask": ops.ones_like(buffer)}, training=False
        )["sequence_output"]
        return self.backbone.logits(ops.take(hidden, ops.expand_dims(index, 0), axis=1))[:, 0], buffer

    def _causal_batch(self, prompts, max_new_tokens, generate_fn, use_cache, seed) -> list[str]:
        context = self.backbone.max_sequence_length
        room = context - max_new_tokens - 1  # prompt tokens that fit, after the leading </s>
        if room < 1:
            raise ValueError(
                f"max_new_tokens={max_new_tokens} leaves no room for a prompt in the model's "
                f"context of {context} tokens"
            )
        full_lengths = self.tokenizer.tokenize(prompts).row_lengths().numpy()
        for i in np.flatnonzero(full_lengths > room):
            warnings.warn(
                f"prompt {i + 1} has {full_lengths[i]} tokens; kept its last {room} so that "
                f"{max_new_tokens} new tokens fit the context window of {context}",
                stacklevel=4,
            )
        ragged = self.preprocessor.prompt_ids(prompts, room)
        lengths = ragged.row_lengths().numpy().astype("int32")
        padded_prompt = min(_round_up(int(lengths.max()), PROMPT_LENGTH_MULTIPLE), context - max_new_tokens)
        total = padded_prompt + max_new_tokens
        prompt_ids = ragged.to_tensor(default_value=self.tokenizer.pad_id, shape=[len(prompts), total]).numpy()
        if use_cache:
            cache = self.backbone.init_cache(len(prompts), total)
            _, _, cache = self.backbone.call_with_cache(prompt_ids[:, :padded_prompt], cache, 0)
            start = padded_prompt
        else:
            cache, start = np.zeros_like(prompt_ids), 0
        result = generate_fn(prompt_ids, lengths, cache, start, seed)
        return self._texts(result, lengths, max_new_tokens)

    # -- T5 / BART --------------------------------------------------------------

    def _seq2seq_step(self, token_ids, cache, index):
        self_cache, cross_cache, encoder_mask = cache
        logits, _, self_cache = self.backbone.call_decoder_with_cache(
            token_ids, None, encoder_mask, self_cache, index, cross_attention_cache=cross_cache
        )
        return logits[:, -1, :], (self_cache, cross_cache, encoder_mask)

    def _seq2seq_step_uncached(self, token_ids, cache, index):
        buffer, encoder_ids, encoder_mask = cache
        buffer = ops.slice_update(buffer, (0, index), token_ids)
        outputs = self.backbone(
            {
                "encoder_token_ids": encoder_ids,
                "encoder_padding_mask": encoder_mask,
                "decoder_token_ids": buffer,
                "decoder_padding_mask": ops.ones_like(buffer),
            },
            training=False,
        )
        hidden = ops.take(outputs["decoder_sequence_output"], ops.expand_dims(index, 0), axis=1)
        return self.backbone.logits(hidden)[:, 0], (buffer, encoder_ids, encoder_mask)

    def _seq2seq_batch(self, sources, max_new_tokens, generate_fn, use_cache, seed) -> list[str]:
        features = self.preprocessor.encode_sources(sources)
        encoder_ids = features["encoder_token_ids"].numpy()
        encoder_mask = features["encoder_padding_mask"].numpy()
        total = max_new_tokens + 1
        prompt_ids = np.full((len(sources), total), self.tokenizer.pad_id, "int32")
        prompt_ids[:, 0] = self.model.decoder_start_id
        lengths = np.ones(len(sources), "int32")
        if use_cache:
            encoder_outputs = self.backbone.encode(encoder_ids, encoder_mask)
            cache = (
                self.backbone.init_cache(len(sources), total),
                self.backbone.compute_cross_attention_cache(encoder_outputs),
                encoder_mask,
            )
        else:
            cache = (np.zeros_like(prompt_ids), encoder_ids, encoder_mask)
        result = generate_fn(prompt_ids, lengths, cache, 0, seed)
        return self._texts(result, lengths, max_new_tokens)

    def _texts(self, result: dict, prompt_lengths: np.ndarray, max_new_tokens: int) -> list[str]:
        """Detokenizes each row's new tokens (at most ``max_new_tokens``, stop token dropped)."""
        token_ids = ops.convert_to_numpy(result["token_ids"])
        ends = ops.convert_to_numpy(result["lengths"])
        texts = []
        for row, start, end in zip(token_ids, prompt_lengths, ends):
            new = row[start : min(end, start + max_new_tokens)]
            new = new[new != self.tokenizer.eos_id]
            texts.append(_decode(self.tokenizer.detokenize(new)))
        return texts


def _round_up(value: int, multiple: int) -> int:
    return (value + multiple - 1) // multiple * multiple


def _decode(text: Any) -> str:
    value = text.numpy() if hasattr(text, "numpy") else text
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def load_generator(model_dir: str | Path) -> TextGenerator:
    """A `TextGenerator` for a ``tfptlm finetune`` (seq2seq, causal_lm) or
    ``tfptlm pretrain`` (clm, span_corruption, text_infilling) output directory."""
    from tfptlm.config import load_config
    from tfptlm.data.generation_inputs import CausalLMPreprocessor, Seq2SeqPreprocessor
    from tfptlm.finetuning.run import TASK_FILE, load_finetuned
    from tfptlm.models.loading import load_keras_model
    from tfptlm.tokenizers import load_tokenizer

    model_dir = Path(model_dir)
    if (model_dir / TASK_FILE).is_file():
        model = load_finetuned(model_dir)
        preprocessor = model.preprocessor
    elif (model_dir / "pretrainer.keras").is_file():
        model = load_keras_model(model_dir / "pretrainer.keras")
        tokenizer = load_tokenizer(model_dir / "tokenizer")
        data = load_config(model_dir / "config.yaml").data
        if hasattr(model, "decoder_start_id"):
            preprocessor = Seq2SeqPreprocessor(
                tokenizer, data.max_sequence_length, data.target_length, model.decoder_start_id
            )
        else:
            preprocessor = CausalLMPreprocessor(tokenizer, data.max_sequence_length)
    else:
        raise FileNotFoundError(
            f"{model_dir} is neither a `tfptlm finetune` nor a `tfptlm pretrain` output directory"
        )
    if not hasattr(model.backbone, "call_with_cache") and not hasattr(model.backbone, "encode"):
        raise ValueError(
            f"{model_dir} holds a {type(model).__name__}, which does not generate text; "
            "use a GPT, T5 or BART model"
        )
    return TextGenerator(model, preprocessor)
