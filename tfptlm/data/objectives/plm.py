"""Permuted language modelling (XLNet, Yang et al. 2019): masks in the TF graph, new every epoch.

For one example of ``T`` positions whose first ``n`` are real:

1. Eligible tokens are the real, non-special ones. ``m = min(ceil(n_eligible *
   prediction_ratio), max_predictions)`` of them become targets (partial
   prediction, ``prediction_ratio = 1/K``):
   - by default, ``m`` eligible tokens drawn uniformly;
   - with ``span_targets``, whole contiguous spans: the eligible tokens are cut
     into spans of 1 to ``max_span_length`` tokens (uniform lengths; a span
     also ends at any non-eligible token), and spans are taken in a random
     order until ``m`` tokens, the last span shortened to fit.
2. The factorization order puts every non-target first (they all see each
   other: bidirectional context) and then the targets in a random order.
3. ``permutation_mask[i, j] = 1`` iff ``i`` and ``j`` are real and ``j`` is not
   later than ``i`` in that order, i.e. ``rank(j) <= rank(i)`` with rank -1
   for every non-target and ``0 .. m-1`` for the targets. Row i is what the
   content stream of token i may attend (itself included); the model's query
   stream additionally hides the target's own token (see
   :class:`tfptlm.layers.relative_attention.RelativeAttention`).

Target tokens stay in ``token_ids``: they are hidden by the masks, not by
``[MASK]``. ``target_positions`` lists the targets in factorization order,
padded with 0 (weight 0) to ``max_predictions``.

Example:

>>> masks = permutation_lm_masks(
...     length=5, special=tf.constant([True, False, False, False, True]),
...     seed=tf.constant([1, 2]), max_predictions=2, prediction_ratio=0.5)
>>> masks["target_weights"].numpy()          # ceil(3 * 0.5) = 2 targets
array([1., 1.], dtype=float32)
>>> ds = make_plm_dataset(documents, tokenizer, batch_size=32, seed=1)  # doctest: +SKIP
>>> x, y, sample_weight = next(iter(ds))                                 # doctest: +SKIP
>>> x["permutation_mask"].shape, y["plm"].shape                          # doctest: +SKIP
(TensorShape([32, 128, 128]), TensorShape([32, 22]))
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import tensorflow as tf

from tfptlm.data.objectives.nsp import NextSentencePairer
from tfptlm.data.pretraining_dataset import _offset, _seed_stream, never_predicted_ids
from tfptlm.data.text_corpus import validate_for_nsp
from tfptlm.data.tokenized_corpus import TokenizedCorpus

# Tolerance of the rounding up, so that n * (1 / K) counts exactly n / K targets.
_CEIL_TOLERANCE = 1e-9


def check_plm_options(prediction_ratio: float, max_predictions: int, max_span_length: int) -> None:
    """Raises a ValueError naming the first bad permuted-LM option."""
    if not 0.0 < prediction_ratio <= 1.0:
        raise ValueError(f"prediction_ratio must be in (0, 1], got {prediction_ratio}.")
    if max_predictions < 1:
        raise ValueError(f"max_predictions must be >= 1, got {max_predictions}.")
    if max_span_length < 1:
        raise ValueError(f"max_span_length must be >= 1, got {max_span_length}.")


def _random_targets(eligible: tf.Tensor, count: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """``count`` eligible positions drawn uniformly, as a ``[T]`` bool mask."""
    noise = tf.random.stateless_uniform(tf.shape(eligible), seed=seed)
    keys = tf.where(eligible, noise, 2.0)  # ineligible positions sort last
    rank = tf.argsort(tf.argsort(keys))
    return rank < count


def _span_targets(
    eligible: tf.Tensor, count: tf.Tensor, seed: tf.Tensor, max_span_length: int
) -> tf.Tensor:
    """``count`` eligible positions in random contiguous spans, as a ``[T]`` bool mask."""
    length = tf.shape(eligible)[0]
    length_seed, order_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    span_lengths = tf.random.stateless_uniform(
        [length], seed=length_seed, minval=1, maxval=max_span_length + 1, dtype=tf.int32
    )
    # A span starts at 0, after each drawn length, and wherever eligibility resumes.
    drawn_starts = tf.minimum(tf.cumsum(span_lengths, exclusive=True), length)
    is_start = tf.scatter_nd(drawn_starts[:, None], tf.ones([length], tf.int32), [length + 1])
    previous_eligible = tf.pad(eligible[:-1], [[1, 0]], constant_values=True)
    is_start = (is_start[:length] > 0) | (eligible & ~previous_eligible)
    span_id = tf.cumsum(tf.cast(is_start, tf.int32)) - 1

    eligible_count = tf.cast(eligible, tf.int32)
    eligible_before = tf.cumsum(eligible_count, exclusive=True)
    index_in_span = eligible_before - tf.gather(
        tf.math.segment_min(eligible_before, span_id), span_id
    )
    span_sizes = tf.math.segment_sum(eligible_count, span_id)

    # Take spans in a random order until `count` tokens; the last one is shortened.
    span_order = tf.argsort(
        tf.random.stateless_uniform(tf.shape(span_sizes), seed=order_seed)
    )
    sizes = tf.gather(span_sizes, span_order)
    taken = tf.clip_by_value(count - tf.cumsum(sizes, exclusive=True), 0, sizes)
    taken_per_span = tf.gather(taken, tf.argsort(span_order))
    return eligible & (index_in_span < tf.gather(taken_per_span, span_id))


def permutation_mask(rank: tf.Tensor, real: tf.Tensor) -> tf.Tensor:
    """``[T, T]`` int32, 1 iff i and j are real and ``rank[j] <= rank[i]``.

    Args:
        rank: ``[T]`` int, the place of each target in the factorization
            order (0 first) and -1 for every other token.
        real: ``[T]`` bool, False for padding.

    Example:

    >>> permutation_mask(tf.constant([-1, 1, -1, 0]), tf.constant([True] * 4)).numpy()
    array([[1, 0, 1, 0],
           [1, 1, 1, 1],
           [1, 0, 1, 0],
           [1, 0, 1, 1]], dtype=int32)
    """
    visible = rank[None, :] <= rank[:, None]
    visible &= real[:, None] & real[None, :]
    return tf.cast(visible, tf.int32)


def permutation_lm_masks(
    length: int | tf.Tensor,
    special: tf.Tensor,
    seed: tf.Tensor,
    max_predictions: int,
    prediction_ratio: float = 1 / 6,
    span_targets: bool = False,
    max_span_length: int = 5,
) -> dict:
    """Draws the targets and factorization order of one example (see the module doc).

    Args:
        length: number of real tokens n; positions ``[n, T)`` are padding.
        special: ``[T]`` bool, True for tokens that are never targets
            ([CLS], [SEP], ...).
        seed: ``[2]`` int stateless seed; same seed, same masks.
        max_predictions: most targets P (the static width of the outputs).
        prediction_ratio: share of the eligible tokens to predict, in (0, 1].
        span_targets: predict contiguous spans instead of single tokens.
        max_span_length: longest span with ``span_targets``.

    Returns:
        ``permutation_mask`` ``[T, T]`` int32 (1 = content i may attend j),
        ``target_positions`` ``[P]`` int32 (in factorization order, padded
        with 0) and ``target_weights`` ``[P]`` float32 (1 real, 0 padding).
    """
    check_plm_options(prediction_ratio, max_predictions, max_span_length)
    special = tf.convert_to_tensor(special, tf.bool)
    total = tf.shape(special)[0]
    real = tf.range(total) < tf.cast(length, tf.int32)
    eligible = real & ~special
    num_eligible = tf.reduce_sum(tf.cast(eligible, tf.float64))
    count = tf.math.ceil(num_eligible * prediction_ratio - _CEIL_TOLERANCE)
    count = tf.minimum(tf.cast(count, tf.int32), max_predictions)

    select_seed, order_seed = tf.unstack(
        tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    )
    if span_targets:
        is_target = _span_targets(eligible, count, select_seed, max_span_length)
    else:
        is_target = _random_targets(eligible, count, select_seed)

    # Non-targets first (key -1), then the targets in a random order.
    order_keys = tf.where(
        is_target, tf.random.stateless_uniform([total], seed=order_seed), -1.0
    )
    order = tf.argsort(order_keys, stable=True)
    first_target = total - count
    rank = tf.where(is_target, tf.argsort(order) - first_target, -1)
    target_positions = tf.pad(order[first_target:], [[0, max_predictions - count]])
    return {
        "permutation_mask": permutation_mask(rank, real),
        "target_positions": target_positions,
        "target_weights": tf.sequence_mask(count, max_predictions, tf.float32),
    }


def make_plm_dataset(
    documents: Sequence[Sequence[str]] | TokenizedCorpus,
    tokenizer,
    batch_size: int,
    max_sequence_length: int = 128,
    prediction_ratio: float = 1 / 6,
    span_targets: bool = False,
    max_span_length: int = 5,
    max_predictions: int | None = None,
    random_next_rate: float = 0.5,
    shuffle: bool = True,
    repeat: bool = True,
    seed: int | None = None,
    deterministic_eval: bool = False,
    drop_remainder: bool = True,
) -> tf.data.Dataset:
    """Builds a ``tf.data.Dataset`` of ``(x, y, sample_weight)`` for XLNet permuted LM.

    Examples are ``[CLS] A [SEP] B [SEP]`` pairs from :class:`NextSentencePairer`
    (B follows A, or with ``random_next_rate`` comes from another document;
    that label is not used), one per start sentence per epoch; pairs, targets
    and orders are drawn anew every epoch inside the graph.

    Args:
        documents: lists of sentences (e.g. from ``read_documents``), or a
            prebuilt ``TokenizedCorpus``.
        tokenizer: has ``tokenize``, ``pad_id``, ``cls_id``, ``sep_id``,
            ``mask_id`` and ``special_token_ids`` (those ids are never targets).
        batch_size: examples per batch ``B``.
        max_sequence_length: padded length ``T``.
        prediction_ratio, span_targets, max_span_length: see
            :func:`permutation_lm_masks`.
        max_predictions: targets per example ``P``; default
            ``ceil(max_sequence_length * prediction_ratio)``.
        random_next_rate: probability that segment B comes from another document.
        shuffle, repeat, seed, deterministic_eval, drop_remainder: as in
            :func:`tfptlm.data.make_bert_pretraining_dataset`.

    Returns:
        A dataset of ``(x, y, sample_weight)``: ``x`` has ``token_ids``,
        ``segment_ids``, ``padding_mask`` ``[B, T]``, ``permutation_mask``
        ``[B, T, T]`` and ``target_positions`` ``[B, P]`` (all int32); ``y``
        has ``plm`` ``[B, P]`` int32 original ids (0 at padding targets);
        ``sample_weight`` has ``plm`` ``[B, P]`` float32.
    """
    if max_predictions is None:
        max_predictions = math.ceil(max_sequence_length * prediction_ratio - _CEIL_TOLERANCE)
    check_plm_options(prediction_ratio, max_predictions, max_span_length)
    if isinstance(documents, TokenizedCorpus):
        corpus = documents
    else:
        validate_for_nsp(documents)
        corpus = TokenizedCorpus.build(documents, tokenizer)
    pairer = NextSentencePairer(
        corpus, max_sequence_length, tokenizer.cls_id, tokenizer.sep_id, random_next_rate
    )
    special_ids = tf.constant(never_predicted_ids(tokenizer), tf.int32)
    rerandomize = not deterministic_eval
    repeat = repeat and not deterministic_eval

    def to_example(start: tf.Tensor, pair_seed: tf.Tensor, plm_seed: tf.Tensor):
        pair = pairer(start, pair_seed)
        length = tf.shape(pair["token_ids"])[0]
        padding = [[0, max_sequence_length - length]]
        token_ids = tf.pad(pair["token_ids"], padding, constant_values=tokenizer.pad_id)
        token_ids = tf.ensure_shape(token_ids, [max_sequence_length])
        special = tf.reduce_any(tf.equal(token_ids[:, None], special_ids[None, :]), axis=1)
        masks = permutation_lm_masks(
            length,
            special,
            plm_seed,
            max_predictions,
            prediction_ratio,
            span_targets,
            max_span_length,
        )
        weights = masks["target_weights"]
        labels = tf.gather(token_ids, masks["target_positions"])
        segment_ids = tf.pad(pair["segment_ids"], padding)
        x = {
            "token_ids": token_ids,
            "segment_ids": tf.ensure_shape(segment_ids, [max_sequence_length]),
            "padding_mask": tf.sequence_mask(length, max_sequence_length, tf.int32),
            "permutation_mask": tf.ensure_shape(
                masks["permutation_mask"], [max_sequence_length, max_sequence_length]
            ),
            "target_positions": tf.ensure_shape(masks["target_positions"], [max_predictions]),
        }
        y = {"plm": tf.where(weights > 0, labels, 0)}
        return x, y, {"plm": weights}

    dataset = tf.data.Dataset.from_tensor_slices(corpus.candidate_starts)
    if shuffle:
        dataset = dataset.shuffle(
            corpus.num_examples, seed=seed, reshuffle_each_iteration=rerandomize
        )
    if repeat:
        dataset = dataset.repeat()
    dataset = tf.data.Dataset.zip(
        dataset,
        _seed_stream(_offset(seed, 1), rerandomize),
        _seed_stream(_offset(seed, 2), rerandomize),
    )
    dataset = dataset.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)
