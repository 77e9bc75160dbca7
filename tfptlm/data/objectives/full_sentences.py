"""Full-sentence packing (RoBERTa FULL-SENTENCES): MLM inputs without sentence pairs.

Every example is ``<s> sentences... </s>`` (``cls_id ... sep_id``): whole,
consecutive sentences of the corpus, as many as fit ``max_sequence_length``.
Packs cross document boundaries, with an extra ``sep_id`` between the last
sentence of one document and the first of the next. There is no segment B:
segment ids are all 0.

The packs are fixed once, when the packer is built: a greedy pass over the
sentences in corpus order (:func:`pack_full_sentences`) closes a pack when the
next sentence (plus its document separator) would not fit. So every sentence
is in exactly one pack, and a pipeline that shows every pack once per epoch
(in a new order each epoch) shows every sentence once per epoch. A sentence is
never split; a single sentence longer than the budget fills a pack of its own
and is truncated (its end is dropped).

Reference: Liu et al. 2019, "RoBERTa: A Robustly Optimized BERT Pretraining
Approach", section 4.2.

Example:

>>> packer = FullSentencePacker(corpus, max_sequence_length=128,
...                             cls_id=0, sep_id=2)  # doctest: +SKIP
>>> dataset = tf.data.Dataset.range(packer.num_packs).map(packer)  # doctest: +SKIP
>>> sorted(next(iter(dataset)))  # doctest: +SKIP
['segment_ids', 'token_ids']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfptlm.data.text_corpus import CorpusError
from tfptlm.data.tokenized_corpus import TokenizedCorpus


def validate_for_full_sentences(
    documents: Sequence[Sequence[str]], files: Sequence[str] | None = None
) -> None:
    """Raises ``CorpusError`` unless the documents hold some non-blank text.

    Example:

    >>> validate_for_full_sentences([["A single sentence."]])
    >>> try:
    ...     validate_for_full_sentences([[], ["  "]])
    ... except CorpusError as error:
    ...     print(str(error)[:32])
    The pretraining corpus has no te
    """
    source = f"files {list(files)}" if files is not None else "the given documents"
    if not any(sentence.strip() for document in documents for sentence in document):
        raise CorpusError(f"The pretraining corpus has no text: no non-blank sentence in {source}.")


def pack_full_sentences(
    sentence_lengths: Sequence[int], sentence_document: Sequence[int], budget: int
) -> np.ndarray:
    """Greedily groups consecutive sentences into packs of at most ``budget`` tokens.

    Sentences are taken in corpus order. A sentence that starts a new document
    costs one extra token (the document separator) unless it opens the pack.
    A pack is closed when the next sentence would not fit; a sentence longer
    than ``budget`` gets a pack of its own.

    Args:
        sentence_lengths: tokens in each sentence.
        sentence_document: document index of each sentence (non-decreasing).
        budget: tokens per pack, separators included (not ``<s>``/``</s>``).

    Returns:
        ``[num_packs, 2]`` int64 ``[first, end)`` sentence ranges covering all
        sentences in order.

    Example:

    >>> pack_full_sentences([3, 2, 4, 1], [0, 0, 1, 1], budget=6).tolist()
    [[0, 2], [2, 4]]
    >>> pack_full_sentences([3, 2, 1], [0, 0, 1], budget=7).tolist()
    [[0, 3]]
    """
    lengths = [int(length) for length in sentence_lengths]
    documents = [int(document) for document in sentence_document]
    if len(lengths) != len(documents):
        raise ValueError(
            f"sentence_lengths ({len(lengths)}) and sentence_document ({len(documents)}) "
            "must have the same length."
        )
    packs = []
    first, used = 0, 0
    for index, length in enumerate(lengths):
        cost = length + (index > first and documents[index] != documents[index - 1])
        if index > first and used + cost > budget:
            packs.append((first, index))
            first, used = index, length
        else:
            used += cost
    if lengths:
        packs.append((first, len(lengths)))
    return np.array(packs, dtype=np.int64).reshape(-1, 2)


class FullSentencePacker:
    """Builds one full-sentence MLM example from a pack index.

    Args:
        corpus: the :class:`TokenizedCorpus` to pack.
        max_sequence_length: length of ``<s> ... </s>`` at most.
        cls_id: id of the start token (``<s>`` / ``[CLS]``).
        sep_id: id of the end and document-separator token (``</s>`` / ``[SEP]``).

    Attributes:
        packs: ``[num_packs, 2]`` int32 ``[first, end)`` sentence ranges.

    Example:

    >>> packer = FullSentencePacker(corpus, 16, cls_id=0, sep_id=2)  # doctest: +SKIP
    >>> packer(tf.constant(0))  # doctest: +SKIP
    {'token_ids': <tf.Tensor: shape=(14,), ...>, 'segment_ids': ...}
    """

    def __init__(
        self, corpus: TokenizedCorpus, max_sequence_length: int, cls_id: int, sep_id: int
    ):
        if max_sequence_length < 3:
            raise ValueError(f"max_sequence_length must be >= 3, got {max_sequence_length}.")
        self.corpus = corpus
        self.max_sequence_length = int(max_sequence_length)
        self.budget = self.max_sequence_length - 2
        self.cls_id = int(cls_id)
        self.sep_id = int(sep_id)
        packs = pack_full_sentences(
            np.diff(corpus.row_splits.numpy()), corpus.sentence_document.numpy(), self.budget
        )
        self.packs = tf.constant(packs, tf.int32)

    @property
    def num_packs(self) -> int:
        """Examples per epoch."""
        return int(self.packs.shape[0])

    def __call__(self, pack: tf.Tensor) -> dict:
        """Returns ``token_ids`` and ``segment_ids`` (``[L]`` int32, all 0) of pack ``pack``."""
        corpus = self.corpus
        bounds = self.packs[tf.cast(pack, tf.int32)]
        first, end = bounds[0], bounds[1]
        splits = corpus.row_splits[first : end + 1]
        sentences = tf.RaggedTensor.from_row_splits(
            corpus.token_values[splits[0] : splits[-1]], splits - splits[0]
        )
        documents = corpus.sentence_document[first:end]
        new_document = tf.concat([[False], documents[1:] != documents[:-1]], axis=0)
        separators = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(tf.cast(new_document, tf.int32))], self.sep_id),
            tf.cast(new_document, tf.int64),
        )
        body = tf.concat([separators, sentences], axis=1).flat_values[: self.budget]
        token_ids = tf.concat([[self.cls_id], body, [self.sep_id]], axis=0)
        return {"token_ids": token_ids, "segment_ids": tf.zeros_like(token_ids)}
