"""Tests for the generative objectives: causal LM, T5 span corruption, BART text infilling."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfptlm.data.objectives import (
    make_clm_dataset,
    make_span_corruption_dataset,
    make_text_infilling_dataset,
    noise_span_mask,
    pack_into_blocks,
    permute_sentences,
    span_corruption,
    span_corruption_lengths,
    text_infilling,
)

PAD, UNK, BOS, EOS, MASK = 0, 1, 2, 3, 4
NUM_SENTINELS = 50
SENTINELS = list(range(5, 5 + NUM_SENTINELS))
FIRST_WORD = 5 + NUM_SENTINELS  # word ``w{i}`` has id FIRST_WORD + i
NUM_WORDS = 2000


class FakeTokenizer:
    """Whitespace split + vocabulary lookup, with the seq2seq special ids."""

    def __init__(self):
        vocabulary = ["<pad>", "<unk>", "<s>", "</s>", "<mask>"]
        vocabulary += [f"<extra_id_{i}>" for i in range(NUM_SENTINELS)]
        vocabulary += [f"w{i}" for i in range(NUM_WORDS)]
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(vocabulary), tf.range(len(vocabulary), dtype=tf.int32)
            ),
            default_value=UNK,
        )
        self.pad_id, self.bos_id, self.eos_id, self.mask_id = PAD, BOS, EOS, MASK
        self.sentinel_ids = SENTINELS

    def tokenize(self, texts):
        return tf.ragged.map_flat_values(self.table.lookup, tf.strings.split(texts))


@pytest.fixture(scope="module")
def tokenizer():
    return FakeTokenizer()


def unique_documents(sentence_lengths):
    """Documents of sentences of distinct words, numbered in reading order.

    Returns the documents and, for each, its token ids (all sentences).
    """
    documents, token_ids, word = [], [], 0
    for lengths in sentence_lengths:
        document, ids = [], []
        for length in lengths:
            document.append(" ".join(f"w{word + i}" for i in range(length)))
            ids.extend(FIRST_WORD + word + i for i in range(length))
            word += length
        documents.append(document)
        token_ids.append(ids)
    return documents, token_ids


def seeds(count, seed=0):
    """``count`` (None: endless) ``[2]`` stateless seeds."""
    return tf.data.Dataset.random(seed=seed).batch(2).take(-1 if count is None else count)


def epoch(dataset):
    """All batches of a finite dataset as numpy, ``x`` merged into one dict."""
    out = []
    for x, y, w in dataset.as_numpy_iterator():
        out.append({**x, "labels": y, "sample_weight": w})
    return {key: np.concatenate([batch[key] for batch in out]) for key in out[0]}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def differs(a, b, key):
    return a[key].shape != b[key].shape or not np.array_equal(a[key], b[key])


# ---------------------------------------------------------------- causal LM

CLM_DOCS = [[4, 3], [7], [2, 5, 1], [6], [3, 3, 3], [9], [1]]


def test_pack_into_blocks_cuts_the_concatenated_stream():
    rows = tf.data.Dataset.from_tensor_slices(tf.ragged.constant([[1, 2, 3], [4], [5, 6, 7, 8, 9]]))
    def blocks(drop_remainder):
        packed = pack_into_blocks(rows, 4, drop_remainder=drop_remainder)
        return [block.tolist() for block in packed.as_numpy_iterator()]

    assert blocks(drop_remainder=False) == [[1, 2, 3, 4], [5, 6, 7, 8], [9]]
    assert blocks(drop_remainder=True) == [[1, 2, 3, 4], [5, 6, 7, 8]]


def test_clm_blocks_are_consecutive_slices_of_the_document_stream(tokenizer):
    documents, token_ids = unique_documents(CLM_DOCS)
    dataset = make_clm_dataset(
        documents, tokenizer, sequence_length=6, batch_size=2, seed=0, shuffle=False, repeat=False
    )
    x_spec, y_spec, w_spec = dataset.element_spec
    assert x_spec["token_ids"].shape == x_spec["padding_mask"].shape == [2, 6]
    assert y_spec.shape == w_spec.shape == [2, 6] and y_spec.dtype == tf.int32
    out = epoch(dataset)
    np.testing.assert_array_equal(out["labels"][:, :-1], out["token_ids"][:, 1:])
    assert np.all(out["padding_mask"] == 1) and np.all(out["sample_weight"] == 1.0)
    stream = [t for ids in token_ids for t in [*ids, EOS]]  # 54 tokens: 7 blocks of 7 + 5
    blocks = np.concatenate([out["token_ids"], out["labels"][:, -1:]], axis=1)
    assert blocks.shape == (6, 7)  # the 7th block is dropped with the partial batch
    assert blocks.ravel().tolist() == stream[:42]


def test_clm_shuffles_documents_each_epoch_and_a_seed_repeats(tokenizer):
    documents, token_ids = unique_documents(CLM_DOCS)

    def make(seed):
        return make_clm_dataset(
            documents, tokenizer, 6, batch_size=1, seed=seed, repeat=False, drop_remainder=False
        )

    def document_order(out):
        blocks = np.concatenate([out["token_ids"], out["labels"][:, -1:]], axis=1).ravel()
        real = blocks[blocks != PAD]  # only the last block is padded
        pieces = np.split(real, np.flatnonzero(real == EOS) + 1)[:-1]
        return [token_ids.index(piece[:-1].tolist()) for piece in pieces]

    dataset = make(3)
    first, second = epoch(dataset), epoch(dataset)
    orders = document_order(first), document_order(second)
    assert sorted(orders[0]) == sorted(orders[1]) == list(range(len(documents)))
    assert orders[0] != orders[1]
    assert_same(first, epoch(make(3)))
    assert differs(first, epoch(make(4)), "token_ids")


def test_clm_pads_only_the_last_block_when_asked(tokenizer):
    documents, token_ids = unique_documents(CLM_DOCS)
    stream = [t for ids in token_ids for t in [*ids, EOS]]  # 54 tokens: 6 blocks of 8 + 6
    dataset = make_clm_dataset(
        documents, tokenizer, 7, batch_size=4, shuffle=False, repeat=False, drop_remainder=False
    )
    out = epoch(dataset)
    assert out["token_ids"].shape == (7, 7)
    assert out["padding_mask"][:-1].all() and out["sample_weight"][:-1].all()
    last = stream[48:]
    np.testing.assert_array_equal(out["token_ids"][-1], [*last, PAD])
    np.testing.assert_array_equal(out["labels"][-1], [*last[1:], PAD, PAD])
    np.testing.assert_array_equal(out["padding_mask"][-1], [1, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(out["sample_weight"][-1], [1, 1, 1, 1, 1, 0, 0])


# ---------------------------------------------------------- span corruption


def draw(function, lengths, count, seed=0):
    """``(length, function(length, seed))`` for each length, ``count`` seeds each.

    Runs in one tf.data map, so ``function`` is traced once.
    """
    lengths = tf.data.Dataset.from_tensor_slices(np.repeat(lengths, count).astype(np.int32))
    pairs = tf.data.Dataset.zip(lengths, seeds(None, seed))
    return list(pairs.map(lambda n, s: (n, function(n, s))).as_numpy_iterator())


def runs(mask):
    """``[(value, length), ...]`` of the runs of a boolean array."""
    edges = np.flatnonzero(np.diff(mask.astype(int))) + 1
    return [(bool(piece[0]), len(piece)) for piece in np.split(mask, edges)]


def test_noise_span_mask_follows_t5():
    total_noise, total_tokens, span_lengths = 0, 0, []
    for length, mask in draw(noise_span_mask, [2, 5, 20, 57, 100, 333], 60):
        num_noise = min(max(round(length * 0.15), 1), length - 1)
        num_spans = max(round(num_noise / 3.0), 1)
        assert mask.shape == (length,) and mask.sum() == num_noise
        pieces = runs(mask)
        assert len(pieces) == 2 * num_spans
        assert [value for value, _ in pieces] == [False, True] * num_spans
        if length >= 20:  # rounding dominates in tiny sequences
            span_lengths += [n for value, n in pieces if value]
            total_noise += num_noise
            total_tokens += length
    assert abs(total_noise / total_tokens - 0.15) < 0.005
    assert abs(np.mean(span_lengths) - 3.0) < 0.15
    assert len(set(span_lengths)) > 5  # random segmentation, not fixed spans
    # Lengths and densities beyond T5's usual range stay well-formed.
    mask = noise_span_mask(10, [1, 2], noise_density=0.9, mean_noise_span_length=1.0).numpy()
    assert runs(mask)[0][0] is False and mask.sum() == 9
    assert noise_span_mask(1, [1, 2]).numpy().tolist() == [False]


def merge(inputs, targets):
    """Puts each sentinel's span from the targets back into the inputs."""
    assert inputs[-1] == EOS and targets[-1] == EOS
    spans, current = {}, None
    for token in targets[:-1]:
        if token in SENTINELS:
            current = token
            spans[current] = []
        else:
            spans[current].append(token)
    merged = []
    for token in inputs[:-1]:
        merged.extend(spans[token] if token in SENTINELS else [token])
    return merged, list(spans)


def test_span_corruption_round_trips_and_numbers_sentinels_in_order():
    outputs = draw(
        lambda n, s: span_corruption(tf.range(1000, 1000 + n), SENTINELS, EOS, s),
        [2, 9, 40, 200],
        40,
    )
    for length, (inputs, targets) in outputs:
        merged, used = merge(inputs.tolist(), targets.tolist())
        assert merged == list(range(1000, 1000 + length))
        assert used == SENTINELS[: len(used)]
        assert [t for t in inputs if t in SENTINELS] == used
        assert targets[0] == SENTINELS[0] and targets[-2] not in SENTINELS
        assert EOS not in inputs[:-1] and EOS not in targets[:-1]
    # One token is never noise; as in T5 the targets still hold sentinel 0.
    inputs, targets = span_corruption([1000], SENTINELS, EOS, [1, 2])
    assert inputs.numpy().tolist() == [1000, EOS]
    assert targets.numpy().tolist() == [SENTINELS[0], EOS]


def test_span_corruption_same_seed_same_spans():
    original = tf.range(1000, 1100)
    a = span_corruption(original, SENTINELS, EOS, tf.constant([1, 2]))
    b = span_corruption(original, SENTINELS, EOS, tf.constant([1, 2]))
    c = span_corruption(original, SENTINELS, EOS, tf.constant([1, 3]))
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


def test_span_corruption_with_too_few_sentinels_is_an_error():
    error = tf.errors.InvalidArgumentError
    with pytest.raises(error, match="more noise spans than the 2 sentinel"):
        span_corruption(tf.range(1000, 1100), SENTINELS[:2], EOS, tf.constant([1, 2]))


def t5_random_spans_helper(inputs_length, noise_density, mean_noise_span_length):
    """T5's ``random_spans_helper`` (t5/data/preprocessors.py), one sentinel per span."""

    def lengths(tokens_length):
        num_noise_tokens = int(round(tokens_length * noise_density))
        num_nonnoise_tokens = tokens_length - num_noise_tokens
        num_noise_spans = int(round(num_noise_tokens / mean_noise_span_length))
        return num_nonnoise_tokens + num_noise_spans + 1, num_noise_tokens + num_noise_spans + 1

    tokens_length = inputs_length - 1
    while lengths(tokens_length + 1)[0] <= inputs_length:
        tokens_length += 1
    inputs_length, targets_length = lengths(tokens_length)
    if noise_density == 0.5 and targets_length > inputs_length:
        tokens_length -= 1
        targets_length -= 1
    return tokens_length, targets_length


def test_span_corruption_lengths_match_t5():
    assert span_corruption_lengths(512) == (568, 114)
    for inputs_length in [20, 64, 100, 512, 1024]:
        for density, mean in [(0.15, 3.0), (0.5, 3.0), (0.3, 8.0)]:
            expected = t5_random_spans_helper(inputs_length, density, mean)
            assert span_corruption_lengths(inputs_length, density, mean) == expected


@pytest.mark.parametrize("inputs_length", [3, 4, 9, 30])
def test_span_corruption_chunks_fit(inputs_length):
    tokens_length, targets_length = span_corruption_lengths(inputs_length)

    def corrupted_lengths(length):
        inputs, targets = span_corruption(tf.range(length), SENTINELS, EOS, [0, 0])
        return tf.size(inputs), tf.size(targets)

    lengths = tf.data.Dataset.range(1, tokens_length + 2).map(corrupted_lengths)
    lengths = np.array(list(lengths.as_numpy_iterator()))
    assert np.all(lengths[:-1, 0] <= inputs_length) and lengths[-2, 0] == inputs_length
    assert np.all(lengths[:-1, 1] <= targets_length) and lengths[-2, 1] == targets_length
    assert lengths[-1, 0] > inputs_length  # one more token would not fit


SPAN_DOCS = [[7, 5], [30], [3], [12, 12, 2], [1, 1], [25], [9, 4]]


def test_span_corruption_dataset(tokenizer):
    documents, token_ids = unique_documents(SPAN_DOCS)  # 111 tokens
    stream = [t for ids in token_ids for t in ids]  # T5: no separator between documents

    def make(seed, **kwargs):
        return make_span_corruption_dataset(
            documents, tokenizer, inputs_length=30, targets_length=10, batch_size=2, seed=seed,
            repeat=False, **kwargs
        )

    tokens_length, targets_length = span_corruption_lengths(30)
    assert (tokens_length, targets_length) == (32, 8)  # 5 noise tokens in 2 spans
    dataset = make(1, shuffle=False, drop_remainder=False)
    x_spec, y_spec, _ = dataset.element_spec
    assert x_spec["encoder_token_ids"].shape[1:] == x_spec["encoder_padding_mask"].shape[1:] == [30]
    assert x_spec["decoder_token_ids"].shape[1:] == y_spec.shape[1:] == [10]
    first, second = epoch(dataset), epoch(dataset)
    assert len(first["labels"]) == math.ceil(len(stream) / tokens_length)
    merged = []
    for i in range(len(first["labels"])):
        encoder_length = first["encoder_padding_mask"][i].sum()
        decoder_length = first["decoder_padding_mask"][i].sum()
        np.testing.assert_array_equal(first["encoder_padding_mask"][i, :encoder_length], 1)
        np.testing.assert_array_equal(first["encoder_token_ids"][i, encoder_length:], PAD)
        np.testing.assert_array_equal(first["labels"][i, decoder_length:], PAD)
        np.testing.assert_array_equal(first["sample_weight"][i], first["decoder_padding_mask"][i])
        np.testing.assert_array_equal(
            first["decoder_token_ids"][i], [PAD, *first["labels"][i, :-1]]
        )
        chunk, _ = merge(
            first["encoder_token_ids"][i, :encoder_length].tolist(),
            first["labels"][i, :decoder_length].tolist(),
        )
        merged.extend(chunk)
    assert merged == stream
    assert differs(first, second, "encoder_token_ids")  # new spans each epoch
    assert_same(first, epoch(make(1, shuffle=False, drop_remainder=False)))
    shuffled = make(None)
    assert epoch(shuffled)["labels"].shape == (2, 10)  # 3 full chunks: one full batch


def test_span_corruption_dataset_rejects_bad_lengths(tokenizer):
    documents, _ = unique_documents(SPAN_DOCS)
    with pytest.raises(ValueError, match="targets_length 4 is too short.*targets of 5 tokens"):
        make_span_corruption_dataset(documents, tokenizer, 16, 4, batch_size=2)
    tokenizer = FakeTokenizer()
    tokenizer.sentinel_ids = SENTINELS[:3]
    tokens_length, targets_length = span_corruption_lengths(128)  # 141 tokens: 7 spans
    assert (tokens_length, targets_length) == (141, 29)
    with pytest.raises(ValueError, match="up to 7 noise spans but the tokenizer has only 3"):
        make_span_corruption_dataset(documents, tokenizer, 128, targets_length, batch_size=2)


# ----------------------------------------------------------- text infilling


def infilled_spans(corrupted, n):
    """Checks one infilled row of ids ``1000 .. 1000 + n - 1``; returns span lengths.

    Kept tokens must be the original ones in order and every gap in them must
    be exactly one mask token (no two masks in a row).
    """
    corrupted = np.asarray(corrupted)
    is_mask = corrupted == MASK
    assert not np.any(is_mask[1:] & is_mask[:-1])
    kept = corrupted[~is_mask] - 1000
    assert np.all(np.diff(kept) > 0) and np.all((kept >= 0) & (kept < n))
    previous, spans = -1, []
    for token in corrupted:
        if token == MASK:
            spans.append(None)
            continue
        position = token - 1000
        if spans and spans[-1] is None:
            spans[-1] = position - previous - 1
        else:
            assert position == previous + 1  # a gap without a mask
        previous = position
    if spans and spans[-1] is None:
        spans[-1] = n - 1 - previous
    elif previous != n - 1:
        raise AssertionError("tokens dropped at the end without a mask")
    return spans


def test_text_infilling_spans_and_masked_share():
    masked, total, inner_spans, last_spans = 0, 0, [], []
    outputs = draw(
        lambda n, s: text_infilling(tf.range(1000, 1000 + n), MASK, s), [1, 2, 7, 30, 120, 400], 60
    )
    for n, corrupted in outputs:
        assert len(corrupted) <= n
        spans = infilled_spans(corrupted, n)
        assert sum(spans) == math.ceil(0.3 * n)
        masked += sum(spans)
        total += n
        inner_spans += spans[:-1]
        last_spans.append(spans[-1])
    assert abs(masked / total - 0.3) < 0.01
    inner_spans = np.array(inner_spans)
    assert 2.5 < inner_spans.mean() < 3.3  # Poisson(3), a little short of 3 by the cut
    assert 0.02 < np.mean(inner_spans == 0) < 0.08  # exp(-3) = 0.05: masks inserted
    assert min(last_spans) >= 1


def test_text_infilling_same_seed_same_output_and_rates():
    original = tf.range(1000, 1100)
    a = text_infilling(original, MASK, tf.constant([4, 5]))
    np.testing.assert_array_equal(a, text_infilling(original, MASK, tf.constant([4, 5])))
    assert not np.array_equal(a, text_infilling(original, MASK, tf.constant([4, 6])))
    for ratio in (0.1, 1.0):
        corrupted = text_infilling(original, MASK, tf.constant([1, 1]), mask_ratio=ratio)
        assert sum(infilled_spans(corrupted.numpy(), 100)) == math.ceil(100 * ratio)
    with pytest.raises(ValueError, match="mask_ratio"):
        text_infilling(original, MASK, tf.constant([1, 1]), mask_ratio=0.0)


def test_permute_sentences_keeps_the_sentences():
    sentences = tf.ragged.constant([[1, 2], [3], [4, 5, 6], [7], [8, 9]])
    orders = set()
    for _, permuted in draw(lambda n, s: permute_sentences(sentences, s).to_tensor(-1), [0], 20):
        rows = [tuple(t for t in row if t != -1) for row in permuted.tolist()]
        assert sorted(rows) == sorted(tuple(r) for r in sentences.to_list())
        orders.add(tuple(rows))
    assert len(orders) > 5
    same = [permute_sentences(sentences, tf.constant([3, 3])).to_list() for _ in range(2)]
    assert same[0] == same[1]


INFILL_DOCS = [[3, 4, 2], [20], [5], [4, 4, 4, 4], [6, 1]]


@pytest.mark.parametrize("permute", [False, True])
def test_text_infilling_dataset(tokenizer, permute):
    documents, token_ids = unique_documents(INFILL_DOCS)

    def make(seed, **kwargs):
        return make_text_infilling_dataset(
            documents, tokenizer, max_length=12, batch_size=2, seed=seed, repeat=False,
            permute_sentences=permute, **kwargs
        )

    dataset = make(5, shuffle=False, drop_remainder=False)
    x_spec, y_spec, w_spec = dataset.element_spec
    for spec in [*x_spec.values(), y_spec, w_spec]:
        assert spec.shape[1:] == [12]
    first, second = epoch(dataset), epoch(dataset)
    targets = []
    permuted = 0
    for i in range(len(first["labels"])):
        length = first["decoder_padding_mask"][i].sum()
        target = first["labels"][i, :length]
        assert target[0] == BOS and target[-1] == EOS
        shifted = [EOS, *first["labels"][i, :-1]]
        np.testing.assert_array_equal(first["decoder_token_ids"][i], shifted)
        np.testing.assert_array_equal(first["sample_weight"][i], first["decoder_padding_mask"][i])
        encoder = first["encoder_token_ids"][i, : first["encoder_padding_mask"][i].sum()]
        assert encoder[0] == BOS and encoder[-1] == EOS
        body, original = encoder[1:-1], target[1:-1]
        kept = body[body != MASK]
        assert np.sum(body == MASK) >= 1 and not np.any((body[1:] == MASK) & (body[:-1] == MASK))
        assert len(kept) == len(original) - math.ceil(0.3 * len(original))
        if permute:
            assert set(kept) <= set(original)
            permuted += not np.all(np.diff(kept) > 0)
        else:  # chunk words are consecutive ids: renumber them from 1000
            infilled_spans(np.where(body == MASK, MASK, body - original[0] + 1000), len(original))
        targets.extend(original.tolist())
    assert targets == [t for ids in token_ids for t in ids]  # chunks cover the text in order
    assert not permute or permuted > 0
    assert differs(first, second, "encoder_token_ids")
    assert_same(first, epoch(make(5, shuffle=False, drop_remainder=False)))
    if permute:
        shuffled = make(6)
        assert differs(epoch(shuffled), epoch(shuffled), "labels")  # chunk order changes
