"""Permuted-LM masks and dataset (tfptlm.data.objectives.plm): orders, targets, spans, pipeline."""

import math

import numpy as np
import pytest
import tensorflow as tf
from test_data import CLS, MASK, SEP, SPECIAL_IDS, coded_documents, coded_tokenizer

from tfptlm.data import TokenizedCorpus
from tfptlm.data.objectives.plm import make_plm_dataset, permutation_lm_masks, permutation_mask

masks_fn = tf.function(permutation_lm_masks)  # traced once per option set, fast per seed


def draw(length, special, seed, max_predictions=8, **options):
    out = masks_fn(
        tf.constant(length),
        tf.constant(special),
        tf.constant(seed, tf.int64),
        max_predictions,
        **options,
    )
    return {k: v.numpy() for k, v in out.items()}


def ranks_from_targets(total, masks):
    """Rank of every position decoded from target_positions (factorization order), -1 else."""
    count = int(masks["target_weights"].sum())
    rank = np.full(total, -1)
    rank[masks["target_positions"][:count]] = np.arange(count)
    return rank, count


def check_masks(length, special, masks, ratio, max_predictions):
    """Every pair (i, j) against the rule; returns the targets in order."""
    special = np.asarray(special)
    total = len(special)
    real = np.arange(total) < length
    eligible = real & ~special
    rank, count = ranks_from_targets(total, masks)
    targets = masks["target_positions"][:count]
    assert count == min(math.ceil(eligible.sum() / round(1 / ratio)), max_predictions)
    assert len(set(targets)) == count and eligible[targets].all()
    np.testing.assert_array_equal(masks["target_positions"][count:], 0)
    np.testing.assert_array_equal(masks["target_weights"], [1.0] * count + [0.0] * (max_predictions - count))
    mask = masks["permutation_mask"]
    for i in range(total):
        for j in range(total):
            expected = real[i] and real[j] and rank[j] <= rank[i]
            assert mask[i, j] == expected, (i, j, rank)
    # Spelled out: non-targets see each other, nothing sees a later token or padding,
    # and a target's row minus itself (its query stream) never contains its own token.
    non_targets = real & (rank == -1)
    assert mask[np.ix_(non_targets, non_targets)].all()
    assert not mask[:, ~real].any() and not mask[~real].any()
    for k, t in enumerate(targets):
        later = targets[k + 1:]
        assert not mask[t, later].any() and not mask[non_targets][:, t].any()
    return targets


def test_hand_written_permutation_mask():
    # [CLS] a b c [PAD]; the targets are c (position 3), then a (position 1).
    rank = tf.constant([-1, 1, -1, 0, -1])
    real = tf.constant([True, True, True, True, False])
    expected = [
        [1, 0, 1, 0, 0],  # [CLS]: the non-targets only
        [1, 1, 1, 1, 0],  # second target: everything real, itself included
        [1, 0, 1, 0, 0],  # a non-target
        [1, 0, 1, 1, 0],  # first target: the non-targets and itself
        [0, 0, 0, 0, 0],  # padding sees nothing
    ]
    np.testing.assert_array_equal(permutation_mask(rank, real).numpy(), expected)


@pytest.mark.parametrize("span_targets", [False, True])
def test_seeded_masks_follow_the_order_for_every_pair(span_targets):
    rng = np.random.default_rng(0)
    total, ratio, max_predictions = 20, 1 / 6, 3
    for seed in range(25):
        length = int(rng.integers(1, total + 1))
        special = rng.random(total) < 0.2
        special[0] = True  # [CLS]
        masks = draw(length, special, [seed, 7], max_predictions, prediction_ratio=ratio,
                     span_targets=span_targets, max_span_length=3)
        check_masks(length, special, masks, ratio, max_predictions)


@pytest.mark.parametrize(
    "eligible, expected", [(0, 0), (1, 1), (5, 1), (6, 1), (7, 2), (12, 2), (13, 3), (30, 5), (31, 6)]
)
def test_number_of_targets_is_ceil_of_eligible_over_k(eligible, expected):
    special = [True] + [False] * eligible + [True] * (40 - eligible - 1)
    masks = draw(eligible + 2, special, [1, 2], max_predictions=8)  # the final [SEP] is special
    assert masks["target_weights"].sum() == expected
    capped = draw(eligible + 2, special, [1, 2], max_predictions=2)
    assert capped["target_weights"].sum() == min(expected, 2)


def test_same_seed_same_masks_and_other_seeds_differ():
    special = [True] + [False] * 30 + [True]
    first, second = draw(32, special, [3, 4]), draw(32, special, [3, 4])
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    others = [draw(32, special, [3, s])["target_positions"] for s in range(5, 10)]
    assert any(not np.array_equal(first["target_positions"], other) for other in others)


def count_runs(targets):
    """Number of maximal runs of consecutive positions."""
    targets = np.sort(targets)
    return 1 + int(np.sum(np.diff(targets) > 1)) if len(targets) else 0


def test_span_targets_are_contiguous_spans():
    special = [True] + [False] * 60 + [True] * 3
    runs = {}
    for span_targets in (False, True):
        counts = []
        for seed in range(100):
            masks = draw(62, special, [seed, 1], max_predictions=16, span_targets=span_targets)
            rank, count = ranks_from_targets(len(special), masks)
            assert count == 10
            counts.append(count_runs(masks["target_positions"][:count]))
        runs[span_targets] = np.mean(counts)
    # 10 single tokens out of 60 form ~8.5 runs; spans of 1-5 tokens (mean 3) ~4.
    assert runs[False] > 7.5 and runs[True] < 5.5


def test_span_targets_with_every_token_predicted_and_spans_stop_at_special_tokens():
    special = np.array([True, False, False, True, False, False, False, True, True])
    masks = draw(8, special, [5, 5], max_predictions=9, prediction_ratio=1.0, span_targets=True)
    count = int(masks["target_weights"].sum())
    assert sorted(masks["target_positions"][:count]) == [1, 2, 4, 5, 6]
    # With one-token spans the choice is spread like single-token targets.
    masks = draw(8, special, [5, 6], max_predictions=9, prediction_ratio=0.5, span_targets=True,
                 max_span_length=1)
    check_masks(8, special, masks, 0.5, 9)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(prediction_ratio=0.0), "prediction_ratio"),
        (dict(prediction_ratio=1.5), "prediction_ratio"),
        (dict(max_span_length=0), "max_span_length"),
    ],
)
def test_bad_options_raise(options, message):
    with pytest.raises(ValueError, match=message):
        permutation_lm_masks(4, tf.zeros([6], tf.bool), tf.constant([1, 2]), 3, **options)
    documents, tokenizer = pipeline_inputs()
    with pytest.raises(ValueError, match=message):
        make_plm_dataset(documents, tokenizer, batch_size=2, **options)
    with pytest.raises(ValueError, match="max_predictions"):
        permutation_lm_masks(4, tf.zeros([6], tf.bool), tf.constant([1, 2]), 0)


# ----------------------------------------------------------------- pipeline

BATCH, LENGTH = 4, 24


def pipeline_inputs():
    rng = np.random.default_rng(1)
    lengths = [list(rng.integers(2, 9, size=2 + d % 6)) for d in range(20)]
    return coded_documents(lengths), coded_tokenizer(20)


def make(**kwargs):
    documents, tokenizer = pipeline_inputs()
    options = dict(batch_size=BATCH, max_sequence_length=LENGTH, seed=0)
    return make_plm_dataset(documents, tokenizer, **(options | kwargs))


def batches(dataset, count=None):
    iterator = dataset.as_numpy_iterator()
    return [next(iterator) for _ in range(count)] if count else list(iterator)


def test_pipeline_shapes_and_dtypes():
    x, y, sample_weight = make().element_spec
    predictions = math.ceil(LENGTH / 6)
    for key in ("token_ids", "segment_ids", "padding_mask"):
        assert x[key].shape == (BATCH, LENGTH) and x[key].dtype == tf.int32
    assert x["permutation_mask"].shape == (BATCH, LENGTH, LENGTH)
    assert x["target_positions"].shape == (BATCH, predictions)
    assert y["plm"].shape == (BATCH, predictions) and y["plm"].dtype == tf.int32
    assert sample_weight["plm"].shape == (BATCH, predictions)
    assert sample_weight["plm"].dtype == tf.float32


@pytest.mark.parametrize("span_targets", [False, True])
def test_pipeline_examples_are_consistent(span_targets):
    predictions = 5
    dataset = make(span_targets=span_targets, max_predictions=predictions, prediction_ratio=0.25)
    for x, y, sample_weight in batches(dataset, count=5):
        for i in range(BATCH):
            tokens = x["token_ids"][i]
            length = int(x["padding_mask"][i].sum())
            np.testing.assert_array_equal(x["padding_mask"][i], np.arange(LENGTH) < length)
            assert tokens[0] == CLS and tokens[length - 1] == SEP and MASK not in tokens
            special = np.isin(tokens, SPECIAL_IDS)
            masks = {
                "permutation_mask": x["permutation_mask"][i],
                "target_positions": x["target_positions"][i],
                "target_weights": sample_weight["plm"][i],
            }
            targets = check_masks(length, special, masks, 0.25, predictions)
            # Labels are the original tokens, which stay in token_ids.
            np.testing.assert_array_equal(y["plm"][i][: len(targets)], tokens[targets])
            np.testing.assert_array_equal(y["plm"][i][len(targets):], 0)


def test_pipeline_same_seed_same_batches():
    documents, tokenizer = pipeline_inputs()
    corpus = TokenizedCorpus.build(documents, tokenizer)
    first = batches(make(seed=11), count=2)
    second = batches(make_plm_dataset(corpus, tokenizer, BATCH, LENGTH, seed=11), count=2)
    for batch_a, batch_b in zip(first, second):
        for part_a, part_b in zip(batch_a, batch_b):
            for key in part_a:
                np.testing.assert_array_equal(part_a[key], part_b[key])


def test_pipeline_new_masks_each_epoch():
    dataset = make(seed=3, shuffle=False, repeat=False, random_next_rate=0.0)
    epoch_1, epoch_2 = batches(dataset, count=2), batches(dataset, count=2)
    # Same examples in the same order (the A/B split point is redrawn each epoch, so
    # only each row's first token, the start of its document chunk, is fixed).
    for a, b in zip(epoch_1, epoch_2):
        np.testing.assert_array_equal(a[0]["token_ids"][:, :2], b[0]["token_ids"][:, :2])
    assert not all(
        np.array_equal(a[0]["target_positions"], b[0]["target_positions"])
        for a, b in zip(epoch_1, epoch_2)
    )


def test_pipeline_deterministic_eval_repeats_exactly():
    dataset = make(seed=None, deterministic_eval=True)
    first, second = batches(dataset), batches(dataset)
    assert len(first) == sum(len(d) - 1 for d in pipeline_inputs()[0]) // BATCH
    for batch_a, batch_b in zip(first, second, strict=True):
        np.testing.assert_array_equal(batch_a[0]["permutation_mask"], batch_b[0]["permutation_mask"])
