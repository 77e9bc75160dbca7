"""A tokenized corpus held in memory as tensors, built once before training.

All sentences of all documents are tokenized (in batches, in the TF graph)
into one flat ``int32`` tensor of token ids plus row splits, so that
consecutive sentences of a document are one contiguous slice. Pretraining
objectives (NSP, SOP, ...) read it from inside ``tf.data`` maps.

Example:

>>> corpus = TokenizedCorpus.build([["a b", "c"], ["d e f"]], tokenizer)  # doctest: +SKIP
>>> corpus.num_sentences, corpus.num_documents, corpus.num_examples  # doctest: +SKIP
(3, 2, 1)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow as tf


def count_examples(documents: Sequence[Sequence[str]]) -> int:
    """Number of sentence-pair examples per epoch: sentences with a next one.

    Each sentence that is followed by another sentence of its document is the
    start of exactly one example per epoch.

    Example:

    >>> count_examples([["a", "b", "c"], ["d"], ["e", "f"]])
    3
    """
    return sum(max(len(document) - 1, 0) for document in documents)


@dataclasses.dataclass(frozen=True)
class TokenizedCorpus:
    """Token ids of every sentence of a corpus, plus where documents begin/end.

    Attributes:
        token_values: ``[num_tokens]`` int32, all sentences concatenated.
        row_splits: ``[num_sentences + 1]`` int64; sentence ``i`` is
            ``token_values[row_splits[i]:row_splits[i + 1]]``.
        sentence_document: ``[num_sentences]`` int32 document index.
        document_bounds: ``[num_documents, 2]`` int32 ``[start, end)`` sentence
            ranges.
        candidate_starts: ``[num_examples]`` int32 sentences that have a next
            sentence in their document.

    Example:

    >>> corpus = TokenizedCorpus.build(documents, tokenizer)  # doctest: +SKIP
    >>> corpus.sentence(0)  # doctest: +SKIP
    <tf.Tensor: shape=(4,), dtype=int32, numpy=array([ 7, 19,  8, 11])>
    """

    token_values: tf.Tensor
    row_splits: tf.Tensor
    sentence_document: tf.Tensor
    document_bounds: tf.Tensor
    candidate_starts: tf.Tensor

    @classmethod
    def build(
        cls,
        documents: Sequence[Sequence[str]],
        tokenizer,
        batch_size: int = 4096,
        word_segmenter: str | None = None,
    ) -> "TokenizedCorpus":
        """Tokenizes ``documents`` (lists of sentences) with ``tokenizer``.

        ``tokenizer.tokenize`` maps a ``[N]`` string tensor to a ragged
        ``[N, (tokens)]`` int tensor; it runs in a parallel ``tf.data`` map.
        Documents without sentences hold no data and are skipped; sentences
        that tokenize to nothing are kept (as empty rows).

        ``word_segmenter="jieba"`` marks word boundaries for whole-word
        masking of Chinese: each sentence is cut into words with jieba
        (``pip install tfptlm[chinese]``; whitespace is kept with the word
        after it), each word is tokenized on its own, and the pieces after
        the first of every word are stored as ``id + tokenizer.vocabulary_size``
        (the continuation flag of ``tfptlm.data.objectives.whole_word``, which
        ``WholeWordMasker`` decodes; other objectives need real ids).
        """
        if word_segmenter not in (None, "jieba"):
            raise ValueError(
                f"word_segmenter must be None or 'jieba', got {word_segmenter!r}."
            )
        documents = [document for document in documents if len(document)]
        sentences = [sentence for document in documents for sentence in document]
        if not sentences:
            raise ValueError("Cannot build a TokenizedCorpus from documents without sentences.")
        document_sizes = np.array([len(document) for document in documents], dtype=np.int64)
        ends = np.cumsum(document_sizes)
        starts = ends - document_sizes
        if word_segmenter is None:
            values, lengths = _tokenize_all(sentences, tokenizer, batch_size)
        else:
            values, lengths = _tokenize_jieba_words(sentences, tokenizer, batch_size)
        sentence_document = np.repeat(np.arange(len(documents)), document_sizes)
        has_next = np.arange(len(sentences)) + 1 < ends[sentence_document]
        return cls(
            token_values=tf.constant(values, tf.int32),
            row_splits=tf.constant(np.concatenate([[0], np.cumsum(lengths)]), tf.int64),
            sentence_document=tf.constant(sentence_document, tf.int32),
            document_bounds=tf.constant(np.stack([starts, ends], axis=1), tf.int32),
            candidate_starts=tf.constant(np.flatnonzero(has_next), tf.int32),
        )

    @property
    def num_sentences(self) -> int:
        return int(self.sentence_document.shape[0])

    @property
    def num_documents(self) -> int:
        return int(self.document_bounds.shape[0])

    @property
    def num_tokens(self) -> int:
        return int(self.token_values.shape[0])

    @property
    def num_examples(self) -> int:
        """Sentence-pair examples per epoch (see :func:`count_examples`)."""
        return int(self.candidate_starts.shape[0])

    def sentence(self, index: int) -> tf.Tensor:
        """Token ids of sentence ``index``."""
        return self.token_values[self.row_splits[index] : self.row_splits[index + 1]]


def _jieba_words(sentence: str, jieba) -> list[str]:
    """jieba's words of ``sentence``; whitespace joins the word after it."""
    words, pending = [], ""
    for word in jieba.lcut(sentence):
        if word.isspace():
            pending += word
        else:
            words.append(pending + word)
            pending = ""
    return words


def _tokenize_jieba_words(sentences: list[str], tokenizer, batch_size: int):
    """Like ``_tokenize_all``, with the non-first pieces of each jieba word flagged."""
    try:
        import jieba
    except ImportError:
        raise ImportError(
            "word_segmenter='jieba' needs the jieba package: pip install tfptlm[chinese]"
        ) from None
    words_per_sentence = [_jieba_words(sentence, jieba) for sentence in sentences]
    words = [word for sentence_words in words_per_sentence for word in sentence_words]
    word_sentence = np.repeat(
        np.arange(len(sentences)), [len(sentence_words) for sentence_words in words_per_sentence]
    )
    if not words:
        return np.zeros([0], np.int32), np.zeros([len(sentences)], np.int64)
    values, word_lengths = _tokenize_all(words, tokenizer, batch_size)
    word_firsts = np.repeat(np.cumsum(word_lengths) - word_lengths, word_lengths)
    continuation = np.arange(len(values)) != word_firsts
    values = values + np.int32(tokenizer.vocabulary_size) * continuation.astype(np.int32)
    lengths = np.bincount(word_sentence, weights=word_lengths, minlength=len(sentences))
    return values.astype(np.int32), lengths.astype(np.int64)


def _tokenize_all(sentences: list[str], tokenizer, batch_size: int):
    """Returns flat token ids and per-sentence lengths as numpy arrays."""

    def tokenize(batch):
        tokens = tokenizer.tokenize(batch)
        if tokens.ragged_rank > 1:
            tokens = tokens.merge_dims(1, -1)
        return tf.cast(tokens.flat_values, tf.int32), tf.cast(tokens.row_lengths(), tf.int64)

    dataset = (
        tf.data.Dataset.from_tensor_slices(tf.constant(sentences, tf.string))
        .batch(batch_size)
        .map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
    )
    values, lengths = [], []
    for batch_values, batch_lengths in dataset.as_numpy_iterator():
        values.append(batch_values)
        lengths.append(batch_lengths)
    return np.concatenate(values), np.concatenate(lengths)
