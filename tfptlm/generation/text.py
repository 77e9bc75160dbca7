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

`TextGenerator.generate_tensors` is the whole path on tensors (prompt
strings in, text out); `generate` runs it eagerly, and
`tfptlm.export.generation` traces it into a SavedModel, so both give the
same text.

Example:

>>> generator = load_generator("runs/gpt_tiny")                       # doctest: +SKIP
>>> generator.generate(["The history of"], max_new_tokens=20, strategy="top_p", p=0.9)  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tensorflow as tf
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

    Example:

    >>> generator = TextGenerator(model, model.preprocessor)          # doctest: +SKIP
    >>> generator.generate(["a dog runs"], max_new_tokens=16)         # doctest: +SKIP
    ['ein Hund rennt']
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
        generate_fn = self.generate_fn(strategy, use_cache, **sampler_options)
        outputs: list[str] = []
        for start in range(0, len(prompts), batch_size):
            batch = list(prompts[start : start + batch_size])
            if not self.is_seq2seq:
                self._warn_if_cut(batch, max_new_tokens)
            texts = tf.constant(batch, tf.string)
            result = self.generate_tensors(texts, max_new_tokens, generate_fn, use_cache, seed)
            outputs.extend(text.decode("utf-8") for text in result["text"].numpy())
        return outputs

    def generate_fn(
        self, strategy: str = "greedy", use_cache: bool = True, **sampler_options: Any
    ) -> Callable:
        """The decoding loop for a strategy (`compile_generate_fn`), built once and kept.

        Example:

        >>> generate_fn = generator.generate_fn("top_k", k=5)               # doctest: +SKIP
        """
        key = (strategy, use_cache, tuple(sorted(sampler_options.items())))
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
                **sampler_options,
            )
        return self._compiled[key]

    def generate_tensors(
        self,
        prompts: tf.Tensor,
        max_new_tokens: int,
        generate_fn: Callable,
        use_cache: bool = True,
        seed: int | tf.Tensor | None = None,
        fixed_length: bool = False,
    ) -> dict[str, Any]:
        """Generates for a batch of prompts, eagerly or inside a `tf.function`.

        Args:
            prompts: tf.string ``[B]``.
            max_new_tokens: the most tokens generated per prompt.
            generate_fn: from `generate_fn` (with the same ``use_cache``).
            use_cache: prefill a key/value cache (else recompute every step).
            seed: for the random strategies; a ``[2]`` tensor inside a graph.
            fixed_length: pad GPT prompts to the context minus
                ``max_new_tokens`` (one shape for every batch, as a traced
                graph needs) instead of the batch's longest rounded up to 16.
                T5/BART decode a fixed ``max_new_tokens + 1`` positions anyway.

        Returns:
            ``text`` (tf.string ``[B]``, the new text, valid UTF-8) and ``token_ids`` (int32
            `tf.RaggedTensor` ``[B, (new tokens)]``, without the stop token).

        Example:

        >>> prompts = tf.constant(["a dog"])                                    # doctest: +SKIP
        >>> generator.generate_tensors(prompts, 8, generator.generate_fn())["text"]  # doctest: +SKIP
        """
        if self.is_seq2seq:
            prompt_ids, lengths, cache, start = self._seq2seq_inputs(prompts, max_new_tokens, use_cache)
        else:
            prompt_ids, lengths, cache, start = self._causal_inputs(
                prompts, max_new_tokens, use_cache, fixed_length
            )
        result = generate_fn(prompt_ids, lengths, cache, start, seed)
        new = self._new_tokens(result, lengths, max_new_tokens)
        # A byte-level BPE can stop inside a character: such bytes become U+FFFD.
        text = tf.strings.unicode_transcode(
            self.tokenizer.detokenize(new), "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
        )
        return {"text": text, "token_ids": new}

    def prompt_token_ids(self, prompts: tf.Tensor, max_new_tokens: int) -> tf.RaggedTensor:
        """The ids the model reads for each prompt, int32 ``[B, (tokens)]``: GPT's
        ``</s>`` and the last prompt tokens that fit, or T5/BART's cut source and ``</s>``.

        Example:

        >>> generator.prompt_token_ids(tf.constant(["a dog"]), 8).to_list()  # doctest: +SKIP
        [[2, 17, 40]]
        """
        if self.is_seq2seq:
            features = self.preprocessor.encode_sources(prompts)
            lengths = tf.reduce_sum(features["encoder_padding_mask"], axis=1)
            return tf.RaggedTensor.from_tensor(features["encoder_token_ids"], lengths=lengths)
        return self.preprocessor.prompt_ids(prompts, self._prompt_room(max_new_tokens))

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

    def _prompt_room(self, max_new_tokens: int) -> int:
        """The prompt tokens that fit GPT's context with the leading ``</s>`` and the new tokens."""
        context = self.backbone.max_sequence_length
        room = context - max_new_tokens - 1
        if room < 1:
            raise ValueError(
                f"max_new_tokens={max_new_tokens} leaves no room for a prompt in the model's "
                f"context of {context} tokens"
            )
        return room

    def _warn_if_cut(self, prompts: list[str], max_new_tokens: int) -> None:
        """Warns about prompts that lose their first tokens to fit the context window."""
        context = self.backbone.max_sequence_length
        room = self._prompt_room(max_new_tokens)
        full_lengths = self.tokenizer.tokenize(prompts).row_lengths().numpy()
        for i in (full_lengths > room).nonzero()[0]:
            warnings.warn(
                f"prompt {i + 1} has {full_lengths[i]} tokens; kept its last {room} so that "
                f"{max_new_tokens} new tokens fit the context window of {context}",
                stacklevel=4,
            )

    def _causal_inputs(self, prompts, max_new_tokens: int, use_cache: bool, fixed_length: bool) -> tuple:
        """``(prompt_ids [B, padded prompt + max_new_tokens], lengths, cache, start_index)``."""
        ragged = self.prompt_token_ids(prompts, max_new_tokens)
        lengths = tf.cast(ragged.row_lengths(), tf.int32)
        padded_prompt = self.backbone.max_sequence_length - max_new_tokens
        if not fixed_length:
            longest = int(tf.reduce_max(lengths))
            padded_prompt = min(_round_up(longest, PROMPT_LENGTH_MULTIPLE), padded_prompt)
        total = padded_prompt + max_new_tokens
        prompt_ids = ragged.to_tensor(default_value=self.tokenizer.pad_id, shape=[None, total])
        if not use_cache:
            return prompt_ids, lengths, ops.zeros_like(prompt_ids), 0
        cache = self.backbone.init_cache(tf.shape(prompt_ids)[0], total)
        cache = self._compiled_function("prefill", self._prefill)(prompt_ids[:, :padded_prompt], cache)
        return prompt_ids, lengths, cache, padded_prompt

    def _prefill(self, prompt_ids, cache):
        return self.backbone.call_with_cache(prompt_ids, cache, 0)[2]

    def _compiled_function(self, name: str, function: Callable) -> Callable:
        """``function`` as a `tf.function` (XLA when ``jit_compile``), built once and kept.

        The prompt work before the decoding loop (GPT's prefill, T5/BART's
        encoder) took 250 ms eagerly for a 16-token prompt, more than 10% of
        generating 256 tokens (benchmarks/NOTES.md).
        """
        if name not in self._compiled:
            self._compiled[name] = tf.function(function, jit_compile=self.jit_compile)
        return self._compiled[name]

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

    def _seq2seq_inputs(self, sources, max_new_tokens: int, use_cache: bool) -> tuple:
        """``(decoder prompt_ids [B, 1 + max_new_tokens], lengths, cache, start_index)``."""
        features = self.preprocessor.encode_sources(sources)
        encoder_ids = features["encoder_token_ids"]
        encoder_mask = features["encoder_padding_mask"]
        batch = tf.shape(encoder_ids)[0]
        prompt_ids = tf.concat(
            [
                tf.fill([batch, 1], tf.constant(self.model.decoder_start_id, tf.int32)),
                tf.fill([batch, max_new_tokens], tf.constant(self.tokenizer.pad_id, tf.int32)),
            ],
            axis=1,
        )
        lengths = tf.ones([batch], tf.int32)
        if not use_cache:
            return prompt_ids, lengths, (ops.zeros_like(prompt_ids), encoder_ids, encoder_mask), 0
        cross_cache = self._compiled_function("encode", self._cross_attention_cache)(encoder_ids, encoder_mask)
        cache = (self.backbone.init_cache(batch, max_new_tokens + 1), cross_cache, encoder_mask)
        return prompt_ids, lengths, cache, 0

    def _cross_attention_cache(self, encoder_ids, encoder_mask):
        encoder_outputs = self.backbone.encode(encoder_ids, encoder_mask)
        return self.backbone.compute_cross_attention_cache(encoder_outputs)

    def _new_tokens(self, result: dict, prompt_lengths: tf.Tensor, max_new_tokens: int) -> tf.RaggedTensor:
        """Each row's new tokens (at most ``max_new_tokens``, stop token dropped)."""
        token_ids = tf.convert_to_tensor(result["token_ids"])
        positions = tf.range(tf.shape(token_ids)[1])[tf.newaxis]
        ends = tf.minimum(tf.convert_to_tensor(result["lengths"]), prompt_lengths + max_new_tokens)
        keep = (
            (positions >= prompt_lengths[:, tf.newaxis])
            & (positions < ends[:, tf.newaxis])
            & (token_ids != self.tokenizer.eos_id)
        )
        return tf.ragged.boolean_mask(token_ids, keep)


def _round_up(value: int, multiple: int) -> int:
    return (value + multiple - 1) // multiple * multiple


def load_generator(model_dir: str | Path) -> TextGenerator:
    """A `TextGenerator` for a ``tfptlm finetune`` (seq2seq, causal_lm) or
    ``tfptlm pretrain`` (clm, span_corruption, text_infilling) output directory."""
    from tfptlm.config import load_config
    from tfptlm.data.generation_inputs import CausalLMPreprocessor, Seq2SeqPreprocessor
    from tfptlm.finetuning.backbones import load_model_dir
    from tfptlm.finetuning.run import TASK_FILE, load_finetuned

    model_dir = Path(model_dir)
    if (model_dir / TASK_FILE).is_file():
        model = load_finetuned(model_dir)
        preprocessor = model.preprocessor
    elif (model_dir / "pretrainer.keras").is_file():
        model, tokenizer = load_model_dir(model_dir, "pretrainer.keras")
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
