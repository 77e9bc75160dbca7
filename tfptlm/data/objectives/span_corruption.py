"""T5 span corruption (Raffel et al. 2019), in the TF graph, new every epoch.

The noise mask follows T5's ``random_spans_noise_mask``: for ``length`` tokens,
``num_noise_tokens = round(length * noise_density)`` clipped to
``[1, length - 1]`` and ``num_noise_spans = max(1, round(num_noise_tokens /
mean_noise_span_length))``. The noise and the non-noise tokens are each cut
into that many non-empty spans at random, and the spans are interleaved,
non-noise first (so the sequence always ends with a noise span).

Corruption follows T5's ``noise_span_to_unique_sentinel`` /
``nonnoise_span_to_unique_sentinel``: noise span ``i`` becomes
``sentinel_ids[i]`` in the inputs, and the targets are ``sentinel_0 span_0
sentinel_1 span_1 ... sentinel_k span_k``; both end with ``eos_id``. As in T5
there is no final sentinel in the targets.

Example:

>>> inputs, targets = span_corruption(tf.range(10, 50), sentinel_ids=[5, 6, 7],
...                                   eos_id=1, seed=tf.constant([1, 2]))
>>> len(inputs) + len(targets) == 40 + 2 * 2 + 2  # 6 noise tokens in 2 spans
True
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from tfptlm.data.objectives.clm import document_stream, pack_into_blocks, tokenize_documents


def _noise_counts(length, noise_density: float, mean_noise_span_length: float):
    """Numbers of noise tokens and noise spans for ``length`` tokens (T5 rules).

    Works on Python ints and on int tensors alike (float64 math and
    round-half-to-even in both cases, so the two always agree).
    """
    if isinstance(length, int):
        num_noise = min(max(round(length * noise_density), 1), length - 1)
        return num_noise, max(round(num_noise / mean_noise_span_length), 1)
    length64 = tf.cast(length, tf.float64)
    num_noise = tf.cast(tf.round(length64 * noise_density), tf.int32)
    num_noise = tf.clip_by_value(num_noise, 1, length - 1)
    num_spans = tf.round(tf.cast(num_noise, tf.float64) / mean_noise_span_length)
    return num_noise, tf.maximum(tf.cast(num_spans, tf.int32), 1)


def _random_segmentation(num_items: tf.Tensor, num_segments: tf.Tensor, seed: tf.Tensor):
    """Lengths of a uniformly random cut of ``num_items`` into non-empty segments."""
    is_boundary = tf.cast(tf.range(num_items - 1) < num_segments - 1, tf.int32)
    noise = tf.random.stateless_uniform([num_items - 1], seed=seed)
    is_boundary = tf.gather(is_boundary, tf.argsort(noise))
    segment_ids = tf.cumsum(tf.pad(is_boundary, [[1, 0]]))
    return tf.math.segment_sum(tf.ones_like(segment_ids), segment_ids)


def noise_span_mask(
    length: int | tf.Tensor,
    seed: tf.Tensor,
    noise_density: float = 0.15,
    mean_noise_span_length: float = 3.0,
) -> tf.Tensor:
    """T5's ``random_spans_noise_mask``: a ``[length]`` bool mask of noise spans.

    Args:
        length: number of tokens (>= 2 for any noise; 1 gives ``[False]``).
        seed: ``[2]`` int stateless seed.
        noise_density: share of tokens that are noise.
        mean_noise_span_length: average length of a noise span.

    Example:

    >>> mask = noise_span_mask(100, seed=tf.constant([1, 2]))
    >>> int(tf.reduce_sum(tf.cast(mask, tf.int32)))
    15
    """
    original_length = tf.cast(length, tf.int32)
    length = tf.maximum(original_length, 2)
    num_noise, num_spans = _noise_counts(length, noise_density, mean_noise_span_length)
    # Guards what T5 leaves undefined at extreme densities: never more spans
    # than non-noise tokens, so every span stays non-empty.
    num_spans = tf.minimum(num_spans, length - num_noise)
    noise_seed, nonnoise_seed = tf.unstack(
        tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    )
    noise_lengths = _random_segmentation(num_noise, num_spans, noise_seed)
    nonnoise_lengths = _random_segmentation(length - num_noise, num_spans, nonnoise_seed)
    interleaved = tf.reshape(tf.stack([nonnoise_lengths, noise_lengths], axis=1), [-1])
    span_ids = tf.repeat(tf.range(2 * num_spans), interleaved)
    return tf.equal(span_ids % 2, 1)[:original_length]


def span_corruption(
    token_ids: tf.Tensor,
    sentinel_ids: Sequence[int],
    eos_id: int,
    seed: tf.Tensor,
    noise_density: float = 0.15,
    mean_noise_span_length: float = 3.0,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Corrupts 1-D ``token_ids`` into T5 ``(inputs, targets)``.

    Args:
        token_ids: 1-D int token ids (no eos).
        sentinel_ids: ids of ``<extra_id_0>, <extra_id_1>, ...`` in order.
        eos_id: appended to both outputs.
        seed: ``[2]`` int stateless seed; same seed, same spans.
        noise_density: share of tokens that are noise.
        mean_noise_span_length: average length of a noise span.

    Returns:
        int32 ``inputs`` (non-noise tokens, a sentinel per noise span, eos) and
        ``targets`` (each sentinel followed by its span, eos).

    Raises:
        tf.errors.InvalidArgumentError: more noise spans than ``sentinel_ids``.

    Example:

    >>> inputs, targets = span_corruption(tf.constant([10, 11, 12, 13, 14, 15]),
    ...                                   [5, 6], eos_id=1, seed=tf.constant([0, 0]))
    >>> inputs.numpy().tolist(), targets.numpy().tolist()  # one span: always last
    ([10, 11, 12, 13, 14, 5, 1], [5, 15, 1])
    """
    token_ids = tf.cast(token_ids, tf.int32)
    noise = noise_span_mask(tf.shape(token_ids)[0], seed, noise_density, mean_noise_span_length)
    sentinels = tf.constant(list(sentinel_ids), tf.int32)
    num_spans = tf.reduce_sum(tf.cast(noise & ~tf.pad(noise[:-1], [[1, 0]]), tf.int32))
    check = tf.debugging.assert_less_equal(
        num_spans,
        tf.size(sentinels),
        message=f"span corruption drew more noise spans than the {len(sentinel_ids)} "
        "sentinel ids; pass more sentinel_ids or use shorter sequences",
    )
    with tf.control_dependencies([check]):
        eos = tf.constant([eos_id], tf.int32)
        inputs = _spans_to_sentinels(token_ids, noise, sentinels)
        targets = _spans_to_sentinels(token_ids, ~noise, sentinels)
    return tf.concat([inputs, eos], 0), tf.concat([targets, eos], 0)


def _spans_to_sentinels(token_ids: tf.Tensor, in_span: tf.Tensor, sentinels: tf.Tensor):
    """Replaces the ``i``-th run of ``in_span`` tokens with ``sentinels[i]``.

    With the non-noise mask this numbers each non-noise run like the noise run
    after it, since the noise mask always starts with non-noise.
    """
    previous = tf.pad(in_span[:-1], [[1, 0]])
    first = in_span & ~previous
    span_number = tf.cumsum(tf.cast(first, tf.int32))
    replaced = tf.where(first, tf.gather(sentinels, tf.maximum(span_number - 1, 0)), token_ids)
    return tf.boolean_mask(replaced, ~(in_span & previous))


def span_corruption_lengths(
    inputs_length: int, noise_density: float = 0.15, mean_noise_span_length: float = 3.0
) -> tuple[int, int]:
    """Raw chunk length and targets length for corrupted inputs of ``inputs_length``.

    T5's ``random_spans_helper``: the longest chunk of tokens whose corrupted
    inputs (kept tokens, one sentinel per span, eos) fit ``inputs_length``,
    and the length of its targets (noise tokens, one sentinel per span, eos).
    Shorter chunks never give longer inputs or targets.

    Example:

    >>> span_corruption_lengths(512)
    (568, 114)
    """
    if inputs_length < 3:
        raise ValueError(f"inputs_length must be >= 3, got {inputs_length}.")

    def corrupted_lengths(tokens_length: int) -> tuple[int, int]:
        num_noise, num_spans = _noise_counts(tokens_length, noise_density, mean_noise_span_length)
        num_spans = min(num_spans, tokens_length - num_noise)
        return tokens_length - num_noise + num_spans + 1, num_noise + num_spans + 1

    tokens_length = inputs_length - 1
    while corrupted_lengths(tokens_length + 1)[0] <= inputs_length:
        tokens_length += 1
    targets_length = corrupted_lengths(tokens_length)[1]
    # T5's tweak: with noise_density 0.5, targets no longer than inputs.
    if noise_density == 0.5 and targets_length > inputs_length:
        tokens_length -= 1
        targets_length -= 1
    return tokens_length, targets_length


def encoder_decoder_example(
    inputs: tf.Tensor,
    targets: tf.Tensor,
    inputs_length: int,
    targets_length: int,
    pad_id: int,
    decoder_start_id: int,
) -> tuple[dict, tf.Tensor, tf.Tensor]:
    """Pads one ``(inputs, targets)`` pair into fixed-shape seq2seq features.

    Longer sequences are cut to the fixed lengths.

    Returns:
        ``(x, labels, sample_weight)``: ``x`` has ``encoder_token_ids``,
        ``encoder_padding_mask`` ``[inputs_length]``, ``decoder_token_ids``
        (``decoder_start_id`` then the targets shifted right) and
        ``decoder_padding_mask`` ``[targets_length]``, int32 (masks: 1 = real
        token); ``labels`` are the targets ``[targets_length]`` int32, padded
        with ``pad_id``; ``sample_weight`` ``[targets_length]`` float32 is 1
        on real target tokens.

    Example:

    >>> x, labels, weight = encoder_decoder_example(
    ...     tf.constant([7, 8, 1]), tf.constant([9, 1]), 4, 3, pad_id=0, decoder_start_id=0)
    >>> x["decoder_token_ids"].numpy().tolist(), labels.numpy().tolist()
    ([0, 9, 1], [9, 1, 0])
    """

    def pad(ids: tf.Tensor, length: int) -> tuple[tf.Tensor, tf.Tensor]:
        ids = tf.cast(ids[:length], tf.int32)
        real = tf.shape(ids)[0]
        padded = tf.pad(ids, [[0, length - real]], constant_values=pad_id)
        padded.set_shape([length])
        return padded, tf.sequence_mask(real, length, dtype=tf.int32)

    encoder_ids, encoder_mask = pad(inputs, inputs_length)
    labels, decoder_mask = pad(targets, targets_length)
    start = tf.constant([decoder_start_id], tf.int32)
    x = {
        "encoder_token_ids": encoder_ids,
        "encoder_padding_mask": encoder_mask,
        "decoder_token_ids": tf.concat([start, labels[:-1]], 0),
        "decoder_padding_mask": decoder_mask,
    }
    return x, labels, tf.cast(decoder_mask, tf.float32)


def make_span_corruption_dataset(
    documents: Sequence[Sequence[str]],
    tokenizer,
    inputs_length: int,
    targets_length: int,
    batch_size: int,
    seed: int | None = None,
    shuffle: bool = True,
    repeat: bool = True,
    decoder_start_id: int | None = None,
    noise_density: float = 0.15,
    mean_noise_span_length: float = 3.0,
    drop_remainder: bool = True,
) -> tf.data.Dataset:
    """Builds a ``tf.data.Dataset`` of ``(x, labels, sample_weight)`` for T5.

    As in T5, the documents (sentences joined with a space) are concatenated
    without separators, in a new random order every epoch, and cut into
    chunks of the raw length given by :func:`span_corruption_lengths`; each
    chunk gets fresh noise spans every epoch.

    Args:
        documents: lists of sentences (e.g. from ``read_documents``).
        tokenizer: has ``tokenize``, ``pad_id``, ``eos_id`` and
            ``sentinel_ids`` (``<extra_id_0>, <extra_id_1>, ...``).
        inputs_length: encoder length ``I``.
        targets_length: decoder length ``D``; at least the targets length
            that :func:`span_corruption_lengths` gives for ``I``.
        batch_size: examples per batch ``B``.
        seed: makes the stream repeatable; None draws at random.
        shuffle: shuffle the document order anew every epoch.
        repeat: repeat forever (use ``steps_per_epoch`` in ``fit``).
        decoder_start_id: first decoder token; defaults to ``tokenizer.pad_id``
            (T5).
        noise_density: share of tokens that are noise.
        mean_noise_span_length: average length of a noise span.
        drop_remainder: drop the last short chunk and the last partial batch
            (only happen without ``repeat``).

    Returns:
        A dataset of ``(x, labels, sample_weight)``: ``x`` has
        ``encoder_token_ids``, ``encoder_padding_mask`` ``[B, I]`` and
        ``decoder_token_ids``, ``decoder_padding_mask`` ``[B, D]`` int32;
        ``labels`` ``[B, D]`` int32 targets padded with ``pad_id``;
        ``sample_weight`` ``[B, D]`` float32, 1 on real target tokens.

    Example:

    >>> ds = make_span_corruption_dataset(documents, tokenizer, inputs_length=512,
    ...                                   targets_length=114, batch_size=8)  # doctest: +SKIP
    >>> x, labels, sample_weight = next(iter(ds))  # doctest: +SKIP
    >>> x["encoder_token_ids"].shape, labels.shape  # doctest: +SKIP
    (TensorShape([8, 512]), TensorShape([8, 114]))
    """
    tokens_length, needed_targets_length = span_corruption_lengths(
        inputs_length, noise_density, mean_noise_span_length
    )
    if targets_length < needed_targets_length:
        raise ValueError(
            f"targets_length {targets_length} is too short: span corruption of "
            f"{tokens_length}-token chunks (inputs_length {inputs_length}) gives "
            f"targets of {needed_targets_length} tokens."
        )
    sentinel_ids = list(tokenizer.sentinel_ids)
    max_spans = _noise_counts(tokens_length, noise_density, mean_noise_span_length)[1]
    if len(sentinel_ids) < max_spans:
        raise ValueError(
            f"inputs_length {inputs_length} gives up to {max_spans} noise spans but the "
            f"tokenizer has only {len(sentinel_ids)} sentinel ids."
        )
    if decoder_start_id is None:
        decoder_start_id = tokenizer.pad_id

    chunks = pack_into_blocks(
        document_stream(tokenize_documents(documents, tokenizer), seed, shuffle, repeat),
        tokens_length,
        drop_remainder,
    )
    seeds = tf.data.Dataset.random(
        seed=None if seed is None else seed + 1, rerandomize_each_iteration=True
    ).batch(2)

    def corrupt(chunk: tf.Tensor, example_seed: tf.Tensor):
        inputs, targets = span_corruption(
            chunk,
            sentinel_ids,
            tokenizer.eos_id,
            example_seed,
            noise_density,
            mean_noise_span_length,
        )
        return encoder_decoder_example(
            inputs, targets, inputs_length, targets_length, tokenizer.pad_id, decoder_start_id
        )

    dataset = tf.data.Dataset.zip(chunks, seeds)
    dataset = dataset.map(corrupt, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)
