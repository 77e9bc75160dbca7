"""Pre-split words (and their tag ids) -> BERT inputs for token classification.

Each word is split into word pieces; only a word's first piece carries its
tag (weight 1), the other pieces, ``[CLS]``, ``[SEP]`` and padding have
weight 0, so they count neither in the loss nor in the metrics. ``word_ids``
maps every position back to its word (-1 for none).

Example:

>>> preprocessor = TokenClassificationPreprocessor(tokenizer, sequence_length=16)
>>> features = preprocessor(tf.ragged.constant([["EU", "rejects", "German"]]),
...                         tf.ragged.constant([[1, 0, 2]]))      # doctest: +SKIP
>>> features["first_piece"].numpy()                                 # doctest: +SKIP
array([[0, 1, 1, 0, 1, 0, 0, 0]], dtype=int32)
"""

from __future__ import annotations

import tensorflow as tf

from tfptlm.data.packing import batch_length, pack_segments


class TokenClassificationPreprocessor:
    """Turns words `[N, (words)]` into packed inputs, labels and a word map, in the graph.

    Args:
        tokenizer: any tfptlm tokenizer (it needs ``tokenize_words``).
        sequence_length: the longest packed input; words whose first piece
            does not fit are left out (``words_kept`` tells how many fit).
    """

    def __init__(self, tokenizer, sequence_length: int = 128):
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length

    def __call__(
        self,
        words: tf.RaggedTensor,
        tag_ids: tf.RaggedTensor | None = None,
        pad_to_batch: bool = True,
    ) -> dict[str, tf.Tensor]:
        """Returns the model inputs plus ``word_ids``, ``first_piece``,
        ``words_kept`` and (with ``tag_ids``) ``labels``, all int32 `[N, length]`
        except ``words_kept`` `[N]`."""
        pieces = self.tokenizer.tokenize_words(words)  # [N, (words), (pieces)]
        pieces_per_word = pieces.values.row_lengths()
        token_ids = pieces.merge_dims(1, 2)  # [N, (tokens)]

        def per_token(word_values: tf.Tensor) -> tf.RaggedTensor:
            """Spreads one value per word onto that word's pieces, then trims."""
            spread = token_ids.with_flat_values(tf.repeat(word_values, pieces_per_word))
            return spread[:, : self.sequence_length - 2]

        word_index = tf.ragged.range(words.row_lengths()).flat_values
        first = tf.cast(tf.ragged.range(pieces_per_word).flat_values == 0, tf.int32)
        first = token_ids.with_flat_values(first)[:, : self.sequence_length - 2]
        features = pack_segments(
            [token_ids],
            self.sequence_length,
            cls_id=self.tokenizer.cls_id,
            sep_id=self.tokenizer.sep_id,
            pad_id=self.tokenizer.pad_id,
        )
        first_piece = self._align(first, 0)
        features["word_ids"] = self._align(per_token(tf.cast(word_index, tf.int32)), -1)
        features["first_piece"] = first_piece
        features["words_kept"] = tf.reduce_sum(first_piece, axis=1)
        if tag_ids is not None:
            features["labels"] = self._align(per_token(tf.cast(tag_ids.flat_values, tf.int32)), 0)
        if pad_to_batch:
            length = batch_length(features["padding_mask"])
            features = {
                key: value if key == "words_kept" else value[:, :length]
                for key, value in features.items()
            }
        return features

    def _align(self, values: tf.RaggedTensor, fill: int) -> tf.Tensor:
        """Dense `[N, sequence_length]` with ``fill`` at [CLS], [SEP] and padding."""
        dense = values.to_tensor(default_value=fill, shape=[None, self.sequence_length - 2])
        column = tf.fill([tf.shape(dense)[0], 1], fill)
        return tf.concat([column, dense, column], axis=1)
