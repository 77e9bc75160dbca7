"""Next-sentence-prediction pairs built in the TF graph, new every epoch.

For a start sentence ``i`` (one that has a next sentence in its document):

1. Greedily take consecutive sentences ``i, i+1, ...`` of the document while
   their total length fits ``budget = max_sequence_length - 3`` (at least one).
2. If that chunk has ``n >= 2`` sentences, segment A is its first ``a_end``
   sentences, ``a_end`` uniform in ``[1, n - 1]``; otherwise A is sentence i.
3. With probability ``1 - random_next_rate`` B is the real continuation (the
   rest of the chunk, or sentence ``i + 1``), label ``is_random_next = 0``.
   Otherwise B is consecutive sentences of a uniformly chosen *other*
   document from a random sentence on, filling the remaining budget (at least
   one sentence), label 1.
4. The pair is truncated to the budget, always from the longer segment (both
   long: about half each). A loses tokens at its start and B at its end, so the
   tokens around the A/B boundary are kept.
5. Output ``[CLS] A [SEP] B [SEP]`` with segment ids 0 for ``[CLS] A [SEP]`` and
   1 for ``B [SEP]``.

All randomness comes from a stateless ``seed`` per example, so a seeded
pipeline is repeatable while a fresh seed stream gives new pairs each epoch.

Example:

>>> pairer = NextSentencePairer(corpus, max_sequence_length=128,
...                             cls_id=2, sep_id=3)  # doctest: +SKIP
>>> dataset = tf.data.Dataset.zip(
...     tf.data.Dataset.from_tensor_slices(corpus.candidate_starts),
...     tf.data.Dataset.random(seed=1).batch(2),
... ).map(pairer)  # doctest: +SKIP
>>> sorted(next(iter(dataset)))  # doctest: +SKIP
['is_random_next', 'segment_ids', 'token_ids']
"""

from __future__ import annotations

import tensorflow as tf

from tfptlm.data.tokenized_corpus import TokenizedCorpus


class NextSentencePairer:
    """Builds one BERT NSP example from a start sentence and a seed.

    Args:
        corpus: the :class:`TokenizedCorpus` to draw sentences from; it needs
            at least two documents.
        max_sequence_length: length of ``[CLS] A [SEP] B [SEP]`` at most.
        cls_id: id of ``[CLS]``.
        sep_id: id of ``[SEP]``.
        random_next_rate: probability that B comes from another document.

    Example:

    >>> pairer = NextSentencePairer(corpus, 16, cls_id=2, sep_id=3)  # doctest: +SKIP
    >>> pairer(tf.constant(0), tf.constant([1, 2], tf.int64))  # doctest: +SKIP
    {'token_ids': <tf.Tensor: shape=(11,), ...>, 'segment_ids': ..., 'is_random_next': ...}
    """

    def __init__(
        self,
        corpus: TokenizedCorpus,
        max_sequence_length: int,
        cls_id: int,
        sep_id: int,
        random_next_rate: float = 0.5,
    ):
        if max_sequence_length < 5:
            raise ValueError(f"max_sequence_length must be >= 5, got {max_sequence_length}.")
        if not 0.0 <= random_next_rate <= 1.0:
            raise ValueError(f"random_next_rate must be in [0, 1], got {random_next_rate}.")
        if random_next_rate > 0 and corpus.num_documents < 2:
            raise ValueError("Random next sentences need a corpus with at least 2 documents.")
        self.corpus = corpus
        self.max_sequence_length = int(max_sequence_length)
        self.budget = self.max_sequence_length - 3
        self.cls_id = int(cls_id)
        self.sep_id = int(sep_id)
        self.random_next_rate = float(random_next_rate)

    def __call__(self, start: tf.Tensor, seed: tf.Tensor) -> dict:
        """Returns ``token_ids``, ``segment_ids`` ([L] int32) and ``is_random_next``.

        Args:
            start: scalar int sentence index with a next sentence in its document.
            seed: ``[2]`` int stateless seed.
        """
        corpus = self.corpus
        start = tf.cast(start, tf.int32)
        u = tf.random.stateless_uniform([5], seed=tf.cast(seed, tf.int64))
        document = corpus.sentence_document[start]
        document_end = corpus.document_bounds[document, 1]

        chunk = self._count_fitting(start, document_end, self.budget)
        a_count = tf.where(chunk >= 2, 1 + _uniform_int(u[0], chunk - 1), 1)
        a_length = self._tokens_in(start, a_count)

        # Real continuation.
        next_start = start + a_count
        next_count = tf.maximum(chunk - a_count, 1)

        # Random continuation from another document.
        num_documents = corpus.num_documents
        other = (document + 1 + _uniform_int(u[1], num_documents - 1)) % num_documents
        other_start, other_end = corpus.document_bounds[other, 0], corpus.document_bounds[other, 1]
        random_start = other_start + _uniform_int(u[2], other_end - other_start)
        random_count = self._count_fitting(random_start, other_end, self.budget - a_length)

        is_random_next = u[3] < self.random_next_rate
        b_start = tf.where(is_random_next, random_start, next_start)
        b_count = tf.where(is_random_next, random_count, next_count)

        segment_a = self._slice(start, a_count)
        segment_b = self._slice(b_start, b_count)
        segment_a, segment_b = truncate_pair(segment_a, segment_b, self.budget)
        return build_pair_inputs(segment_a, segment_b, self.cls_id, self.sep_id) | {
            "is_random_next": tf.cast(is_random_next, tf.int32)
        }

    def _tokens_in(self, first: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
        """Number of tokens in sentences ``[first, first + count)``."""
        splits = self.corpus.row_splits
        return tf.cast(splits[first + count] - splits[first], tf.int32)

    def _slice(self, first: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
        """Token ids of sentences ``[first, first + count)``, concatenated."""
        splits = self.corpus.row_splits
        return self.corpus.token_values[splits[first] : splits[first + count]]

    def _count_fitting(self, first: tf.Tensor, end: tf.Tensor, budget) -> tf.Tensor:
        """How many sentences from ``first`` (before ``end``) fit ``budget``; >= 1."""
        splits = self.corpus.row_splits
        cumulative = splits[first + 1 : end + 1] - splits[first]
        fitting = tf.reduce_sum(tf.cast(cumulative <= tf.cast(budget, tf.int64), tf.int32))
        return tf.maximum(fitting, 1)


def _uniform_int(u: tf.Tensor, n: tf.Tensor) -> tf.Tensor:
    """Maps ``u`` in [0, 1) to an int32 uniform in ``[0, n)`` (0 when n <= 0)."""
    n = tf.cast(n, tf.int32)
    value = tf.cast(u * tf.cast(n, tf.float32), tf.int32)
    return tf.clip_by_value(value, 0, tf.maximum(n - 1, 0))


def truncate_pair(segment_a: tf.Tensor, segment_b: tf.Tensor, budget: int):
    """Truncates two 1-D segments so that together they have <= ``budget`` items.

    Items are removed from the longer segment; when both are long, A keeps
    ``ceil(budget / 2)`` and B ``floor(budget / 2)``. A loses items from its
    start and B from its end.

    Example:

    >>> a, b = truncate_pair(tf.range(10), tf.range(100, 103), 8)
    >>> a.numpy().tolist(), b.numpy().tolist()
    ([5, 6, 7, 8, 9], [100, 101, 102])
    """
    length_a = tf.shape(segment_a)[0]
    length_b = tf.shape(segment_b)[0]
    keep_a = tf.minimum(length_a, tf.maximum(budget - length_b, (budget + 1) // 2))
    keep_b = tf.minimum(length_b, budget - keep_a)
    return segment_a[length_a - keep_a :], segment_b[:keep_b]


def build_pair_inputs(
    segment_a: tf.Tensor, segment_b: tf.Tensor, cls_id: int, sep_id: int
) -> dict:
    """Returns ``[CLS] A [SEP] B [SEP]`` token ids and segment ids (0 then 1).

    Example:

    >>> out = build_pair_inputs(tf.constant([7, 8]), tf.constant([9]), 2, 3)
    >>> out["token_ids"].numpy().tolist(), out["segment_ids"].numpy().tolist()
    ([2, 7, 8, 3, 9, 3], [0, 0, 0, 0, 1, 1])
    """
    segment_a = tf.cast(segment_a, tf.int32)
    segment_b = tf.cast(segment_b, tf.int32)
    cls = tf.constant([cls_id], tf.int32)
    sep = tf.constant([sep_id], tf.int32)
    token_ids = tf.concat([cls, segment_a, sep, segment_b, sep], axis=0)
    segment_ids = tf.concat(
        [
            tf.zeros([tf.shape(segment_a)[0] + 2], tf.int32),
            tf.ones([tf.shape(segment_b)[0] + 1], tf.int32),
        ],
        axis=0,
    )
    return {"token_ids": token_ids, "segment_ids": segment_ids}
