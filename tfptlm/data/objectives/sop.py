"""Sentence-order-prediction pairs (ALBERT), built in the TF graph, new every epoch.

For a start sentence ``i`` (one that has a next sentence in its document):

1. Greedily take consecutive sentences ``i, i+1, ...`` of the document while
   their total length fits ``budget = max_sequence_length - 3`` (at least one),
   exactly as :class:`NextSentencePairer` does.
2. If that chunk has ``n >= 2`` sentences, segment A is its first ``a_end``
   sentences, ``a_end`` uniform in ``[1, n - 1]``, and B is the rest; otherwise
   A is sentence ``i`` and B is sentence ``i + 1``. So B always directly
   follows A in the same document; no other document is needed.
3. The pair is truncated to the budget like NSP pairs (A loses tokens at its
   start, B at its end, so the tokens around the A/B boundary are kept).
4. With probability ``swap_rate`` the two segments change places, label
   ``is_swapped = 1``: ``[CLS] B [SEP] A [SEP]``; else ``[CLS] A [SEP] B [SEP]``,
   label 0. Segment ids are 0 for the first segment with ``[CLS]`` and its
   ``[SEP]``, 1 for the second with its ``[SEP]``.

Reference: Lan et al. 2019, "ALBERT: A Lite BERT for Self-supervised Learning
of Language Representations", section 3.1.

Example:

>>> pairer = SentenceOrderPairer(corpus, max_sequence_length=128,
...                              cls_id=2, sep_id=3)  # doctest: +SKIP
>>> dataset = tf.data.Dataset.zip(
...     tf.data.Dataset.from_tensor_slices(corpus.candidate_starts),
...     tf.data.Dataset.random(seed=1).batch(2),
... ).map(pairer)  # doctest: +SKIP
>>> sorted(next(iter(dataset)))  # doctest: +SKIP
['is_swapped', 'segment_ids', 'token_ids']
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from tfptlm.data.objectives.nsp import (
    NextSentencePairer,
    _uniform_int,
    build_pair_inputs,
    truncate_pair,
)
from tfptlm.data.text_corpus import CorpusError
from tfptlm.data.tokenized_corpus import TokenizedCorpus


def validate_for_sop(
    documents: Sequence[Sequence[str]], files: Sequence[str] | None = None
) -> None:
    """Raises ``CorpusError`` unless sentence-order prediction is possible.

    SOP needs at least one document with two or more sentences (a single
    document is enough).

    Example:

    >>> validate_for_sop([["A.", "B."]])
    >>> try:
    ...     validate_for_sop([["A."], ["B."]])
    ... except CorpusError as error:
    ...     print(str(error)[:40])
    No document in the given documents has 2
    """
    source = f"files {list(files)}" if files is not None else "the given documents"
    if not any(documents):
        raise CorpusError(f"The pretraining corpus is empty: no sentences in {source}.")
    if not any(len(document) >= 2 for document in documents):
        raise CorpusError(
            f"No document in {source} has 2 or more sentences, so sentence-order "
            "prediction is impossible (BERT format wants one sentence per line)."
        )


class SentenceOrderPairer(NextSentencePairer):
    """Builds one ALBERT SOP example from a start sentence and a seed.

    Reuses :class:`NextSentencePairer`'s greedy chunking and truncation; B is
    always the real continuation of A, and the label says whether the two
    were swapped.

    Args:
        corpus: the :class:`TokenizedCorpus` to draw sentences from; it needs
            a document with at least two sentences.
        max_sequence_length: length of ``[CLS] A [SEP] B [SEP]`` at most.
        cls_id: id of ``[CLS]``.
        sep_id: id of ``[SEP]``.
        swap_rate: probability that B is put before A.

    Example:

    >>> pairer = SentenceOrderPairer(corpus, 16, cls_id=2, sep_id=3)  # doctest: +SKIP
    >>> pairer(tf.constant(0), tf.constant([1, 2], tf.int64))  # doctest: +SKIP
    {'token_ids': <tf.Tensor: shape=(11,), ...>, 'segment_ids': ..., 'is_swapped': ...}
    """

    def __init__(
        self,
        corpus: TokenizedCorpus,
        max_sequence_length: int,
        cls_id: int,
        sep_id: int,
        swap_rate: float = 0.5,
    ):
        super().__init__(corpus, max_sequence_length, cls_id, sep_id, random_next_rate=0.0)
        if not 0.0 <= swap_rate <= 1.0:
            raise ValueError(f"swap_rate must be in [0, 1], got {swap_rate}.")
        if corpus.num_examples == 0:
            raise ValueError(
                "Sentence-order prediction needs a corpus with a document of at least 2 sentences."
            )
        self.swap_rate = float(swap_rate)

    def __call__(self, start: tf.Tensor, seed: tf.Tensor) -> dict:
        """Returns ``token_ids``, ``segment_ids`` ([L] int32) and ``is_swapped``.

        Args:
            start: scalar int sentence index with a next sentence in its document.
            seed: ``[2]`` int stateless seed.
        """
        corpus = self.corpus
        start = tf.cast(start, tf.int32)
        u = tf.random.stateless_uniform([2], seed=tf.cast(seed, tf.int64))
        document_end = corpus.document_bounds[corpus.sentence_document[start], 1]

        chunk = self._count_fitting(start, document_end, self.budget)
        a_count = tf.where(chunk >= 2, 1 + _uniform_int(u[0], chunk - 1), 1)
        b_count = tf.maximum(chunk - a_count, 1)
        segment_a = self._slice(start, a_count)
        segment_b = self._slice(start + a_count, b_count)
        segment_a, segment_b = truncate_pair(segment_a, segment_b, self.budget)

        is_swapped = u[1] < self.swap_rate
        first, second = tf.cond(
            is_swapped, lambda: (segment_b, segment_a), lambda: (segment_a, segment_b)
        )
        return build_pair_inputs(first, second, self.cls_id, self.sep_id) | {
            "is_swapped": tf.cast(is_swapped, tf.int32)
        }
