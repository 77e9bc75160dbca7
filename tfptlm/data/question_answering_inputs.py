"""Question + context -> overlapping windows of BERT inputs for extractive QA.

A context longer than fits next to the question is cut into windows that
start every ``doc_stride`` tokens, so every token is in at least one window.
Each window is ``[CLS] question [SEP] context window [SEP]``; for every
position it also carries the UTF-8 byte span of its word in the original
context (-1 outside the context), so a predicted token span maps back to an
exact substring of what the user gave.

Example:

>>> preprocessor = QuestionAnsweringPreprocessor(tokenizer, sequence_length=384)
>>> windows = preprocessor.windows("Who?", "A long context ...")  # doctest: +SKIP
>>> windows["token_ids"].shape                                     # doctest: +SKIP
TensorShape([1, 384])
"""

from __future__ import annotations

import tensorflow as tf

from tfptlm.data.packing import pack_segments


class QuestionAnsweringPreprocessor:
    """Builds the windows of one (question, context) pair, with training labels.

    Args:
        tokenizer: any tfptlm tokenizer (it needs ``tokenize_with_offsets``).
        sequence_length: length of every window.
        doc_stride: tokens between the starts of consecutive windows.
        max_question_length: longer questions are cut to this many tokens.
    """

    def __init__(
        self,
        tokenizer,
        sequence_length: int = 384,
        doc_stride: int = 128,
        max_question_length: int = 64,
    ):
        if sequence_length - max_question_length - 3 < 1:
            raise ValueError(
                f"sequence_length {sequence_length} leaves no room for the context "
                f"after a question of up to {max_question_length} tokens"
            )
        if doc_stride < 1:
            raise ValueError(f"doc_stride must be positive, got {doc_stride}")
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.doc_stride = doc_stride
        self.max_question_length = max_question_length

    def windows(
        self,
        question: tf.Tensor | str,
        context: tf.Tensor | str,
        answer_start: tf.Tensor | int = -1,
        answer_end: tf.Tensor | int = -1,
    ) -> dict[str, tf.Tensor]:
        """Windows of one example; the answer is given as UTF-8 byte offsets in ``context``.

        Returns tensors with a leading window dimension ``K``: the model inputs
        (int32 `[K, length]`), ``start_offsets``/``end_offsets`` (int64
        `[K, length]`, -1 outside the context), and ``start_positions``/
        ``end_positions``/``has_answer`` `[K]`: the answer's token positions
        in the window, or 0 (the ``[CLS]`` position) when the window does not
        hold the whole answer (or no answer was given).
        """
        tokenizer = self.tokenizer
        question_ids = tokenizer.tokenize(tf.reshape(question, [1]))[0]
        question_ids = question_ids[: self.max_question_length]
        context_ids, starts, ends = tokenizer.tokenize_with_offsets(tf.reshape(context, [1]))
        context_ids, starts, ends = context_ids[0], starts[0], ends[0]

        question_length = tf.size(question_ids)
        context_length = tf.size(context_ids)
        window = self.sequence_length - question_length - 3
        stride = tf.minimum(self.doc_stride, window)
        extra = tf.maximum(context_length - window, 0)
        num_windows = 1 + (extra + stride - 1) // stride
        window_starts = tf.range(num_windows) * stride
        window_lengths = tf.minimum(window, context_length - window_starts)
        token_index = tf.ragged.range(window_starts, window_starts + window_lengths)

        inputs = pack_segments(
            [
                tf.RaggedTensor.from_tensor(tf.tile(question_ids[tf.newaxis], [num_windows, 1])),
                tf.gather(context_ids, token_index),
            ],
            self.sequence_length,
            cls_id=tokenizer.cls_id,
            sep_id=tokenizer.sep_id,
            pad_id=tokenizer.pad_id,
        )
        prefix = tf.fill([num_windows, question_length + 2], tf.constant(-1, tf.int64))
        for name, offsets in (("start_offsets", starts), ("end_offsets", ends)):
            window_offsets = tf.gather(offsets, token_index).to_tensor(
                default_value=-1,
                shape=tf.stack([num_windows, self.sequence_length - question_length - 2]),
            )
            inputs[name] = tf.concat([prefix, window_offsets], axis=1)

        # The answer's first and last tokens in the whole context (-1: none).
        answer_start = tf.cast(answer_start, tf.int64)
        answer_end = tf.cast(answer_end, tf.int64)
        overlaps = (ends > answer_start) & (starts < answer_end)
        positions = tf.cast(tf.where(overlaps)[:, 0], tf.int32)
        first = tf.reduce_min(tf.concat([positions, [context_length]], 0))
        last = tf.reduce_max(tf.concat([positions, [-1]], 0))
        found = (answer_start >= 0) & (last >= first)
        inside = found & (first >= window_starts) & (last < window_starts + window_lengths)
        shift = question_length + 2 - window_starts
        inputs["start_positions"] = tf.where(inside, first + shift, 0)
        inputs["end_positions"] = tf.where(inside, last + shift, 0)
        inputs["has_answer"] = inside
        return inputs
