"""Word-by-word tokenization for fine-tuning inputs (NER words, QA offsets).

`SentencePieceTokenizer` and `BytePairTokenizer` tokenize each word on its
own with a `pieces_of` function (`[W]` words -> `[W, (pieces)]` ids); these
helpers do the rest: keep the word boundaries (`tokenize_words`) or give each
piece its word's byte span in the original text (`tokenize_with_offsets`).
Only TF ops are used, so both run in `tf.data` and in exported SavedModels.

Example:

>>> def pieces_of(words):  # one id per character, for the example
...     return tf.strings.unicode_decode(words, "UTF-8")
>>> tokenize_words([["ab", ""]], pieces_of, unk_id=2).to_list()
[[[97, 98], [2]]]
>>> ids, starts, ends = tokenize_with_offsets(["ab, c"], pieces_of)
>>> ids.to_list(), starts.to_list(), ends.to_list()
([[97, 98, 44, 99]], [[0, 0, 2, 4]], [[2, 2, 3, 5]])
"""

from collections.abc import Callable

import tensorflow as tf

from tfptlm.tokenizers.normalization import split_words_with_offsets

#: `[W]` word strings -> int32 `tf.RaggedTensor` `[W, (pieces)]`.
PiecesFunction = Callable[[tf.Tensor], tf.RaggedTensor]


def tokenize_words(
    words: tf.RaggedTensor | list[list[str]], pieces_of: PiecesFunction, unk_id: int
) -> tf.RaggedTensor:
    """Pre-split words `[N, (words)]` -> int32 pieces `[N, (words), (pieces)]`.

    A word that `pieces_of` turns into nothing (such as ``""``) becomes one
    `unk_id`, so every word has a piece to carry its label.
    """
    if not isinstance(words, tf.RaggedTensor):
        words = tf.ragged.constant(words, dtype=tf.string, ragged_rank=1)
    pieces = pieces_of(words.flat_values)
    empty = pieces.row_lengths() == 0
    unknown = tf.RaggedTensor.from_row_lengths(
        tf.fill([tf.reduce_sum(tf.cast(empty, tf.int32))], tf.constant(unk_id, pieces.dtype)),
        tf.cast(empty, tf.int64),
    )
    pieces = tf.concat([pieces, unknown], axis=1)
    return tf.RaggedTensor.from_nested_row_splits(
        pieces.flat_values, words.nested_row_splits + pieces.nested_row_splits
    )


def tokenize_with_offsets(
    texts: list[str] | tf.Tensor, pieces_of: PiecesFunction
) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
    """Texts `[N]` -> `(ids, starts, ends)`, each `[N, (tokens)]`.

    The words are those of `split_words_with_offsets` (whitespace dropped,
    punctuation and CJK characters on their own); every piece of a word
    carries the word's UTF-8 byte span in the original string (int64), and a
    word with no pieces adds no token.
    """
    words, starts, ends = split_words_with_offsets(texts)
    pieces = pieces_of(words.flat_values)  # [words, (pieces)]
    counts = pieces.row_lengths()
    ids = tf.RaggedTensor.from_nested_row_splits(
        pieces.flat_values, words.nested_row_splits + pieces.nested_row_splits
    ).merge_dims(1, 2)
    return (
        ids,
        ids.with_flat_values(tf.repeat(starts.flat_values, counts)),
        ids.with_flat_values(tf.repeat(ends.flat_values, counts)),
    )
