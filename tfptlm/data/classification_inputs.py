"""Raw texts (and text pairs) -> BERT inputs for sequence classification, in the graph.

Example:

>>> preprocessor = TextClassificationPreprocessor(tokenizer, sequence_length=128)
>>> inputs = preprocessor(["a great film"], ["I loved it"])  # doctest: +SKIP
>>> sorted(inputs)                                          # doctest: +SKIP
['padding_mask', 'segment_ids', 'token_ids']
"""

from __future__ import annotations

import tensorflow as tf

from tfptlm.data.packing import pack_segments


class TextClassificationPreprocessor:
    """Tokenizes one text or a text pair per example and packs ``[CLS] a [SEP] (b [SEP])``.

    Uses only TF and tensorflow-text ops, so it runs inside `tf.data` and in an
    exported SavedModel.

    Args:
        tokenizer: a `WordPieceTokenizer` (anything with ``tokenize`` and the
            ``cls_id``/``sep_id``/``pad_id`` properties).
        sequence_length: the longest packed input; longer texts are trimmed.
    """

    def __init__(self, tokenizer, sequence_length: int = 128):
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length

    def __call__(
        self,
        texts: tf.Tensor | list[str],
        text_pairs: tf.Tensor | list[str] | None = None,
        pad_to_batch: bool = True,
    ) -> dict[str, tf.Tensor]:
        """Packs a batch: ``texts`` (and ``text_pairs``) are string tensors `[N]`."""
        segments = [self.tokenizer.tokenize(tf.convert_to_tensor(texts, tf.string))]
        if text_pairs is not None:
            segments.append(self.tokenizer.tokenize(tf.convert_to_tensor(text_pairs, tf.string)))
        return pack_segments(
            segments,
            self.sequence_length,
            cls_id=self.tokenizer.cls_id,
            sep_id=self.tokenizer.sep_id,
            pad_id=self.tokenizer.pad_id,
            pad_to_batch=pad_to_batch,
        )
