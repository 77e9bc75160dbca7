"""BART text infilling and sentence permutation (Lewis et al. 2019), in the TF graph.

Text infilling: ``ceil(mask_ratio * n)`` of the ``n`` tokens are masked, in
spans whose lengths are drawn from Poisson(``poisson_lambda``) until they
cover that many tokens (the last span is cut to fit). Each span, whatever its
length, becomes ONE mask token; a span of length 0 inserts a mask token.
Unlike fairseq, spans never overlap or touch (at least one kept token between
two spans) and there are never more spans than masked tokens, so the
corrupted text is never longer than the original and the masked share is
exact. Spans are placed uniformly at random under these rules. Masking works
on token ids (fairseq masks whole words).

Sentence permutation shuffles the order of a chunk's sentences.

Example:

>>> corrupted = text_infilling(tf.range(10, 30), mask_id=4, seed=tf.constant([1, 2]))
>>> int(tf.reduce_sum(tf.cast(corrupted != 4, tf.int32)))  # 20 - ceil(0.3 * 20)
14
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from tfptlm.data.objectives.span_corruption import encoder_decoder_example
from tfptlm.data.tokenized_corpus import TokenizedCorpus


def _split_seed(seed: tf.Tensor, count: int) -> list[tf.Tensor]:
    return tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), count))


def text_infilling(
    token_ids: tf.Tensor,
    mask_id: int,
    seed: tf.Tensor,
    mask_ratio: float = 0.3,
    poisson_lambda: float = 3.0,
) -> tf.Tensor:
    """Replaces Poisson-length spans of 1-D ``token_ids`` by one ``mask_id`` each.

    Args:
        token_ids: 1-D int token ids (without ``<s>``/``</s>``).
        mask_id: id of the mask token.
        seed: ``[2]`` int stateless seed; same seed, same spans.
        mask_ratio: share of tokens masked (rounded up).
        poisson_lambda: mean span length.

    Returns:
        The corrupted 1-D int32 ids, never longer than ``token_ids`` (an
        empty ``token_ids`` gives one mask token).

    Example:

    >>> text_infilling(tf.constant([10, 11, 12, 13, 14, 15]), mask_id=4,
    ...                seed=tf.constant([0, 0])).numpy().tolist()  # a 0-length span
    [10, 11, 4, 12, 4, 15]
    """
    if not 0.0 < mask_ratio <= 1.0:
        raise ValueError(f"mask_ratio must be in (0, 1], got {mask_ratio}.")
    if poisson_lambda <= 0:
        raise ValueError(f"poisson_lambda must be > 0, got {poisson_lambda}.")
    token_ids = tf.cast(token_ids, tf.int32)
    length_seed, place_seed = _split_seed(seed, 2)
    n = tf.shape(token_ids)[0]
    num_masked = tf.cast(tf.math.ceil(tf.cast(n, tf.float64) * mask_ratio), tf.int32)
    num_kept = n - num_masked

    # Span lengths: Poisson draws up to the one that reaches num_masked, at
    # most num_masked spans and at most num_kept + 1 (a kept token between
    # two spans); the last span takes what the others leave.
    lengths = tf.random.stateless_poisson(
        [num_masked], seed=length_seed, lam=poisson_lambda, dtype=tf.int32
    )
    not_reached = tf.reduce_sum(tf.cast(tf.cumsum(lengths) < num_masked, tf.int32))
    num_spans = tf.minimum(tf.minimum(not_reached + 1, num_masked), num_kept + 1)
    num_spans = tf.maximum(num_spans, 1)
    lengths = lengths[: num_spans - 1]
    lengths = tf.concat([lengths, [num_masked - tf.reduce_sum(lengths)]], 0)

    # Kept-token gaps around the spans: the num_spans - 1 inner gaps get one
    # token each, the other free tokens go to the num_spans + 1 gaps by a
    # uniform stars-and-bars draw (num_spans bars among free + num_spans slots).
    free = num_kept - (num_spans - 1)
    slots = free + num_spans
    noise = tf.random.stateless_uniform([slots], seed=place_seed)
    bars = tf.sort(tf.argsort(noise)[:num_spans])
    bounds = tf.concat([[-1], bars, [slots]], 0)
    gaps = bounds[1:] - bounds[:-1] - 1
    gaps += tf.pad(tf.ones([num_spans - 1], tf.int32), [[1, 1]])

    # Output layout: gap_0, mask, gap_1, mask, ..., mask, gap_last.
    out_lengths = tf.reshape(tf.stack([gaps[:-1], tf.ones_like(lengths)], axis=1), [-1])
    out_segment = tf.repeat(tf.range(2 * num_spans + 1), tf.concat([out_lengths, gaps[-1:]], 0))
    is_mask = tf.equal(out_segment % 2, 1)
    in_lengths = tf.reshape(tf.stack([gaps[:-1], lengths], axis=1), [-1])
    in_segment = tf.repeat(tf.range(2 * num_spans + 1), tf.concat([in_lengths, gaps[-1:]], 0))
    kept = tf.boolean_mask(token_ids, tf.equal(in_segment % 2, 0))
    kept_index = tf.cumsum(tf.cast(~is_mask, tf.int32)) - 1
    kept_values = tf.gather(tf.concat([kept, [mask_id]], 0), tf.maximum(kept_index, 0))
    return tf.where(is_mask, tf.constant(mask_id, tf.int32), kept_values)


def permute_sentences(sentences: tf.RaggedTensor, seed: tf.Tensor) -> tf.RaggedTensor:
    """Shuffles the rows (sentences) of a ragged ``[num_sentences, (tokens)]``.

    Example:

    >>> out = permute_sentences(tf.ragged.constant([[1, 2], [3], [4, 5, 6]]),
    ...                         seed=tf.constant([1, 2]))
    >>> sorted(out.to_list())
    [[1, 2], [3], [4, 5, 6]]
    """
    noise = tf.random.stateless_uniform([sentences.nrows()], seed=tf.cast(seed, tf.int64))
    return tf.gather(sentences, tf.argsort(noise))


# make_text_infilling_dataset's argument of the same name hides the function.
_permute_sentences = permute_sentences


def _chunk_sentences(corpus: TokenizedCorpus, budget: int) -> tf.RaggedTensor:
    """Groups consecutive sentences of each document into chunks of <= ``budget`` tokens.

    A sentence longer than ``budget`` is split into pieces of ``budget``
    tokens (the last one shorter), each treated as a sentence. Sentences
    without tokens are left out.

    Returns:
        int32 ragged ``[num_chunks, (sentences), (tokens)]``.
    """
    splits = corpus.row_splits.numpy()
    bounds = corpus.document_bounds.numpy()
    piece_splits, chunk_splits = [0], [0]
    for first, end in bounds:
        chunk_tokens = 0
        for sentence in range(first, end):
            start, stop = int(splits[sentence]), int(splits[sentence + 1])
            for piece_start in range(start, stop, budget):
                piece_length = min(stop, piece_start + budget) - piece_start
                if chunk_tokens + piece_length > budget:
                    chunk_splits.append(len(piece_splits) - 1)
                    chunk_tokens = 0
                piece_splits.append(piece_splits[-1] + piece_length)
                chunk_tokens += piece_length
        if chunk_tokens:
            chunk_splits.append(len(piece_splits) - 1)
    if len(chunk_splits) == 1:
        raise ValueError("The documents hold no tokens to pretrain on.")
    return tf.RaggedTensor.from_nested_row_splits(
        corpus.token_values,
        [tf.constant(chunk_splits, tf.int64), tf.constant(piece_splits, tf.int64)],
    )


def make_text_infilling_dataset(
    documents: Sequence[Sequence[str]],
    tokenizer,
    max_length: int,
    batch_size: int,
    seed: int | None = None,
    shuffle: bool = True,
    repeat: bool = True,
    permute_sentences: bool = False,
    mask_ratio: float = 0.3,
    poisson_lambda: float = 3.0,
    decoder_start_id: int | None = None,
    drop_remainder: bool = True,
) -> tf.data.Dataset:
    """Builds a ``tf.data.Dataset`` of ``(x, labels, sample_weight)`` for BART.

    Sentences are tokenized one by one and grouped, within each document, into
    chunks of at most ``max_length - 2`` tokens (a longer sentence is split).
    Every epoch the chunks are shuffled and each gets new noise: encoder input
    ``<s> infilled </s>`` (after permuting the sentences if asked), target the
    original ``<s> text </s>``.

    Args:
        documents: lists of sentences (e.g. from ``read_documents``).
        tokenizer: has ``tokenize``, ``pad_id``, ``bos_id``, ``eos_id`` and
            ``mask_id``.
        max_length: encoder and decoder length ``T``.
        batch_size: examples per batch ``B``.
        seed: makes the stream repeatable; None draws at random.
        shuffle: shuffle the chunks anew every epoch.
        repeat: repeat forever (use ``steps_per_epoch`` in ``fit``).
        permute_sentences: shuffle the sentence order of the encoder input.
        mask_ratio: share of tokens masked.
        poisson_lambda: mean span length.
        decoder_start_id: first decoder token; defaults to
            ``tokenizer.eos_id`` (BART).
        drop_remainder: drop the last partial batch.

    Returns:
        A dataset of ``(x, labels, sample_weight)``: ``x`` has
        ``encoder_token_ids``, ``encoder_padding_mask``, ``decoder_token_ids``
        (``decoder_start_id`` then the labels shifted right) and
        ``decoder_padding_mask``, all ``[B, T]`` int32; ``labels`` ``[B, T]``
        int32 (the original text padded with ``pad_id``); ``sample_weight``
        ``[B, T]`` float32, 1 on real label tokens.

    Example:

    >>> ds = make_text_infilling_dataset(documents, tokenizer, max_length=128,
    ...                                  batch_size=8, permute_sentences=True)  # doctest: +SKIP
    >>> x, labels, sample_weight = next(iter(ds))  # doctest: +SKIP
    >>> x["encoder_token_ids"].shape, labels.shape  # doctest: +SKIP
    (TensorShape([8, 128]), TensorShape([8, 128]))
    """
    if max_length < 3:
        raise ValueError(f"max_length must be >= 3, got {max_length}.")
    if decoder_start_id is None:
        decoder_start_id = tokenizer.eos_id
    chunks = _chunk_sentences(TokenizedCorpus.build(documents, tokenizer), max_length - 2)
    bos = tf.constant([tokenizer.bos_id], tf.int32)
    eos = tf.constant([tokenizer.eos_id], tf.int32)

    def corrupt(chunk: tf.RaggedTensor, example_seed: tf.Tensor):
        permute_seed, mask_seed = _split_seed(example_seed, 2)
        source = _permute_sentences(chunk, permute_seed) if permute_sentences else chunk
        infilled = text_infilling(
            source.flat_values, tokenizer.mask_id, mask_seed, mask_ratio, poisson_lambda
        )
        return encoder_decoder_example(
            tf.concat([bos, infilled, eos], 0),
            tf.concat([bos, chunk.flat_values, eos], 0),
            max_length,
            max_length,
            tokenizer.pad_id,
            decoder_start_id,
        )

    dataset = tf.data.Dataset.from_tensor_slices(chunks)
    if shuffle:
        dataset = dataset.shuffle(int(chunks.nrows()), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    seeds = tf.data.Dataset.random(
        seed=None if seed is None else seed + 1, rerandomize_each_iteration=True
    ).batch(2)
    dataset = tf.data.Dataset.zip(dataset, seeds)
    dataset = dataset.map(corrupt, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)
