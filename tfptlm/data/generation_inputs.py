"""In-graph preprocessors of the generative tasks: raw strings in, model inputs out.

``Seq2SeqPreprocessor`` feeds T5/BART (translation, summarization);
``CausalLMPreprocessor`` feeds GPT fine-tuning on prompt -> response pairs
(dialogue, code). Both use TF and tf-text ops only, so they run inside
``tf.data`` and inside exported SavedModels. Batches are padded to their
longest row (rounded up to a multiple of 8), not to the maximum length.

Example:

>>> preprocessor = Seq2SeqPreprocessor(tokenizer, source_length=64, target_length=32)
>>> features, labels, weights = preprocessor(["a dog runs"], ["ein Hund rennt"])
>>> sorted(features)
['decoder_padding_mask', 'decoder_token_ids', 'encoder_padding_mask', 'encoder_token_ids']
"""

from __future__ import annotations

import tensorflow as tf


def _strings(texts) -> tf.Tensor:
    return tf.reshape(tf.convert_to_tensor(texts, tf.string), [-1])


def _padded(ids: tf.RaggedTensor, pad_id: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Dense ids padded to the longest row rounded up to a multiple of 8, and the padding mask."""
    longest = tf.reduce_max(tf.concat([ids.row_lengths(), [1]], 0))
    length = (longest + 7) // 8 * 8
    shape = tf.stack([ids.nrows(), length])
    dense = ids.to_tensor(default_value=pad_id, shape=shape)
    mask = tf.ones_like(ids).to_tensor(default_value=0, shape=shape)
    return tf.cast(dense, tf.int32), tf.cast(mask, tf.int32)


class Seq2SeqPreprocessor:
    """Source and target strings -> encoder/decoder inputs, labels and weights.

    Encoder input: source tokens cut to ``source_length - 1``, then ``</s>``.
    Labels: target tokens cut to ``target_length - 1``, then ``</s>``.
    Decoder input: the labels shifted right after ``decoder_start_id``.
    Sample weights: 1 on real label tokens, 0 on padding.

    Args:
        tokenizer: any tfptlm tokenizer (``tokenize``, ``pad_id``, ``eos_id``).
        source_length, target_length: the longest inputs in tokens.
        decoder_start_id: the decoder's first input token (the model's).
    """

    def __init__(self, tokenizer, source_length: int, target_length: int, decoder_start_id: int = 0):
        self.tokenizer = tokenizer
        self.source_length = source_length
        self.target_length = target_length
        self.decoder_start_id = decoder_start_id

    def _with_eos(self, texts, length: int) -> tf.RaggedTensor:
        ids = tf.cast(self.tokenizer.tokenize(_strings(texts)), tf.int32)[:, : length - 1]
        eos = tf.fill([ids.nrows(), 1], tf.constant(self.tokenizer.eos_id, tf.int32))
        return tf.concat([ids, eos], axis=1)

    def encode_sources(self, sources) -> dict:
        """The encoder inputs of a batch of source strings."""
        ids, mask = _padded(self._with_eos(sources, self.source_length), self.tokenizer.pad_id)
        return {"encoder_token_ids": ids, "encoder_padding_mask": mask}

    def __call__(self, sources, targets=None):
        features = self.encode_sources(sources)
        if targets is None:
            return features
        labels = self._with_eos(targets, self.target_length)
        start = tf.fill([labels.nrows(), 1], tf.constant(self.decoder_start_id, tf.int32))
        decoder_ids = tf.concat([start, labels[:, :-1]], axis=1)
        labels, weights = _padded(labels, self.tokenizer.pad_id)
        decoder_ids, decoder_mask = _padded(decoder_ids, self.tokenizer.pad_id)
        features.update(decoder_token_ids=decoder_ids, decoder_padding_mask=decoder_mask)
        return features, labels, tf.cast(weights, tf.float32)


class CausalLMPreprocessor:
    """Prompt and response strings -> one decoder sequence with the loss on the response.

    Sequence: ``</s> prompt response </s>`` (``</s>`` also separates
    documents in causal-LM pretraining, so it marks a new text). When it is
    longer than ``sequence_length`` + 1 tokens, the response is cut to
    ``sequence_length // 2`` first and then the prompt loses its oldest
    tokens (the start of a dialogue matters least). Inputs are the sequence
    without its last token, labels without its first; weights are 1 on the
    response and the final ``</s>``, 0 on the prompt and padding.

    Args:
        tokenizer: any tfptlm tokenizer (``tokenize``, ``pad_id``, ``eos_id``).
        sequence_length: the model's input length.
    """

    def __init__(self, tokenizer, sequence_length: int):
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length

    def prompt_ids(self, prompts, max_prompt_tokens: int) -> tf.RaggedTensor:
        """``</s> prompt`` ids, keeping the last ``max_prompt_tokens`` prompt tokens."""
        ids = tf.cast(self.tokenizer.tokenize(_strings(prompts)), tf.int32)[:, -max_prompt_tokens:]
        eos = tf.fill([ids.nrows(), 1], tf.constant(self.tokenizer.eos_id, tf.int32))
        return tf.concat([eos, ids], axis=1)

    def __call__(self, prompts, responses):
        length = self.sequence_length
        eos = tf.constant(self.tokenizer.eos_id, tf.int32)
        responses = tf.cast(self.tokenizer.tokenize(_strings(responses)), tf.int32)
        responses = responses[:, : length // 2]
        responses = tf.concat([responses, tf.fill([responses.nrows(), 1], eos)], axis=1)
        room = length + 1 - 1 - responses.row_lengths()  # 1 for the leading </s>
        prompts = tf.cast(self.tokenizer.tokenize(_strings(prompts)), tf.int32)
        keep = tf.minimum(prompts.row_lengths(), tf.maximum(room, 0))
        prompts = tf.ragged.boolean_mask(
            prompts, tf.ragged.range(prompts.row_lengths()) >= tf.expand_dims(prompts.row_lengths() - keep, 1)
        )
        starts = tf.fill([prompts.nrows(), 1], eos)
        sequence = tf.concat([starts, prompts, responses], axis=1)
        is_response = tf.concat(
            [tf.zeros_like(starts), tf.zeros_like(prompts), tf.ones_like(responses)], axis=1
        )
        token_ids, mask = _padded(sequence[:, :-1], self.tokenizer.pad_id)
        labels, _ = _padded(sequence[:, 1:], self.tokenizer.pad_id)
        weights, _ = _padded(is_response[:, 1:], 0)
        features = {"token_ids": token_ids, "padding_mask": mask}
        return features, labels, tf.cast(weights, tf.float32)
