"""Packing token segments into BERT inputs: ``[CLS] a [SEP] b [SEP]`` plus padding.

Example:

>>> inputs = pack_segments([tf.ragged.constant([[5, 6, 7]])], sequence_length=8,
...                        cls_id=2, sep_id=3, pad_id=0)
>>> inputs["token_ids"].numpy().tolist()
[[2, 5, 6, 7, 3, 0, 0, 0]]
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text

#: Batch-padded inputs are rounded up to a multiple of this many tokens, so a
#: compiled model sees a handful of shapes instead of one per batch.
LENGTH_MULTIPLE = 8


def pack_segments(
    segments: list[tf.RaggedTensor],
    sequence_length: int,
    cls_id: int,
    sep_id: int,
    pad_id: int,
    pad_to_batch: bool = False,
) -> dict[str, tf.Tensor]:
    """Trims, joins and pads one or two segments of token ids into model inputs.

    Segments are trimmed round-robin (one token at a time from the longest) so
    that ``[CLS]``, the segments and a ``[SEP]`` after each fit in
    ``sequence_length``.

    Args:
        segments: one or more int `tf.RaggedTensor` `[N, (tokens)]`.
        sequence_length: the maximum length of a packed row.
        cls_id, sep_id, pad_id: the special token ids.
        pad_to_batch: pad only to the longest row of the batch (rounded up to
            a multiple of 8) instead of to `sequence_length`.

    Returns:
        int32 ``token_ids``, ``segment_ids`` and ``padding_mask`` (1 = real
        token), each `[N, length]`.
    """
    available = sequence_length - len(segments) - 1
    if available < len(segments):
        raise ValueError(
            f"sequence_length {sequence_length} leaves no room for {len(segments)} segment(s)"
        )
    segments = [tf.cast(segment, tf.int32) for segment in segments]
    trimmed = tf_text.RoundRobinTrimmer(max_seq_length=available).trim(segments)
    token_ids, segment_ids = tf_text.combine_segments(
        trimmed, start_of_sequence_id=cls_id, end_of_segment_id=sep_id
    )
    token_ids, padding_mask = tf_text.pad_model_inputs(
        token_ids, max_seq_length=sequence_length, pad_value=pad_id
    )
    segment_ids, _ = tf_text.pad_model_inputs(segment_ids, max_seq_length=sequence_length)
    inputs = {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "padding_mask": padding_mask,
    }
    if pad_to_batch:
        inputs = {key: value[:, : batch_length(padding_mask)] for key, value in inputs.items()}
    return {key: tf.cast(value, tf.int32) for key, value in inputs.items()}


def batch_length(padding_mask: tf.Tensor) -> tf.Tensor:
    """The longest row of a padded batch, rounded up to a multiple of 8 (at least 8)."""
    longest = tf.reduce_max(tf.reduce_sum(tf.cast(padding_mask, tf.int32), axis=1))
    rounded = (longest + LENGTH_MULTIPLE - 1) // LENGTH_MULTIPLE * LENGTH_MULTIPLE
    return tf.minimum(tf.maximum(rounded, LENGTH_MULTIPLE), tf.shape(padding_mask)[1])
