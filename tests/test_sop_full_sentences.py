"""Tests for ALBERT sentence-order pairs, RoBERTa full-sentence packs and make_masked_lm_dataset."""

import math

import numpy as np
import pytest
import tensorflow as tf

from test_data import (
    CLS,
    PAD,
    SEP,
    SPECIAL_IDS,
    assert_same_batches,
    coded_documents,
    coded_tokenizer,
    decode,
    draw_pairs,
    split_pair,
)
from tfptlm.data import (
    CorpusError,
    FullSentencePacker,
    MaskedLMMasker,
    SentenceOrderPairer,
    TokenizedCorpus,
    make_bert_pretraining_dataset,
    make_masked_lm_dataset,
)
from tfptlm.data.objectives import pack_full_sentences


@pytest.fixture(scope="module")
def coded_corpus():
    rng = np.random.default_rng(0)
    lengths = [list(rng.integers(1, 7, size=2 + d % 5)) for d in range(10)]
    corpus = TokenizedCorpus.build(coded_documents(lengths), coded_tokenizer(10))
    return corpus, lengths


def order_pair(example):
    """Returns (A, B) decoded in document order, undoing a swap."""
    first, second = split_pair(example)
    if example["is_swapped"]:
        first, second = second, first
    return [decode(t) for t in first], [decode(t) for t in second]


# ---------------------------------------------------------------------- SOP


def test_sop_pairs_are_consecutive_halves_of_one_chunk(coded_corpus):
    corpus, lengths = coded_corpus
    max_length = 24
    pairer = SentenceOrderPairer(corpus, max_length, cls_id=CLS, sep_id=SEP)
    sentence_document = corpus.sentence_document.numpy()
    first_sentence = corpus.document_bounds.numpy()[:, 0]
    a_sentence_counts, swapped_seen = set(), set()
    for example in draw_pairs(pairer, corpus, repeats=20):
        assert len(example["token_ids"]) <= max_length
        a, b = order_pair(example)
        start = int(example["start"])
        document = sentence_document[start]
        local_start = start - first_sentence[document]
        # Sentences are at most 6 tokens, so the chunk always holds >= 2 whole
        # sentences and nothing is truncated: A + B is exactly the chunk.
        chunk, total = 0, 0
        for length in lengths[document][local_start:]:
            if total + length > max_length - 3:
                break
            chunk, total = chunk + 1, total + length
        expected = [(document, local_start + i) for i in range(chunk)]
        expected = [x for x in expected for _ in range(lengths[x[0]][x[1]])]
        assert len(a) and len(b)
        assert a + b == expected
        assert b[0][1] == a[-1][1] + 1  # B starts with the sentence after A
        a_sentence_counts.add(a[-1][1] - local_start + 1)
        swapped_seen.add(int(example["is_swapped"]))
    assert len(a_sentence_counts) >= 3  # the split point of A is random
    assert swapped_seen == {0, 1}


def test_sop_swap_rate_is_about_half(coded_corpus):
    corpus, _ = coded_corpus
    pairer = SentenceOrderPairer(corpus, 24, cls_id=CLS, sep_id=SEP)
    labels = np.array([e["is_swapped"] for e in draw_pairs(pairer, corpus, repeats=100, seed=3)])
    n = len(labels)
    assert n >= 2000
    assert abs(labels.sum() - n / 2) < 4 * math.sqrt(n / 4)


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_sop_swap_rate_extremes(coded_corpus, rate):
    corpus, _ = coded_corpus
    pairer = SentenceOrderPairer(corpus, 24, cls_id=CLS, sep_id=SEP, swap_rate=rate)
    labels = [e["is_swapped"] for e in draw_pairs(pairer, corpus, repeats=2)]
    assert set(labels) == {int(rate)}


def test_sop_same_seed_same_pair(coded_corpus):
    corpus, _ = coded_corpus
    pairer = SentenceOrderPairer(corpus, 24, cls_id=CLS, sep_id=SEP)
    start = corpus.candidate_starts[4]
    draws = [
        {k: v.numpy() for k, v in pairer(start, tf.constant([s, 9], tf.int64)).items()}
        for s in (5, 5, *range(20))
    ]
    for key in draws[0]:
        np.testing.assert_array_equal(draws[0][key], draws[1][key])
    assert len({d["token_ids"].tobytes() for d in draws}) > 2  # seeds matter


def test_sop_single_document_long_sentence_both_orders():
    # One document is enough. Budget 13: sentence 0 (20 tokens) alone is the
    # chunk, so B is sentence 1; A keeps its last 10 tokens, B stays whole.
    corpus = TokenizedCorpus.build(coded_documents([[20, 3, 30]]), coded_tokenizer(1))
    assert corpus.num_documents == 1
    seed = tf.constant([1, 2], tf.int64)
    a, b = [(0, 0)] * 10, [(0, 1)] * 3
    for rate in (0.0, 1.0):
        pairer = SentenceOrderPairer(corpus, 16, cls_id=CLS, sep_id=SEP, swap_rate=rate)
        example = {k: v.numpy() for k, v in pairer(tf.constant(0), seed).items()}
        first, second = split_pair(example)
        expected = (b, a) if rate else (a, b)
        assert ([decode(t) for t in first], [decode(t) for t in second]) == expected
        assert example["is_swapped"] == int(rate)


def test_sop_pairer_rejects_bad_arguments():
    corpus = TokenizedCorpus.build(coded_documents([[2], [3]]), coded_tokenizer(2))
    with pytest.raises(ValueError, match="at least 2 sentences"):
        SentenceOrderPairer(corpus, 16, cls_id=CLS, sep_id=SEP)
    corpus = TokenizedCorpus.build(coded_documents([[2, 2]]), coded_tokenizer(1))
    with pytest.raises(ValueError, match="swap_rate"):
        SentenceOrderPairer(corpus, 16, cls_id=CLS, sep_id=SEP, swap_rate=1.5)


# ----------------------------------------------------------- full sentences


@pytest.mark.parametrize(
    "lengths, documents, budget, expected",
    [
        # 3 + 2 fit; 4 would need 6 + 1 (separator) + 4 > 6.
        ([3, 2, 4, 1], [0, 0, 1, 1], 6, [[0, 2], [2, 4]]),
        # Exactly full with the separator: 3 + 2 + 1 + 1.
        ([3, 2, 1], [0, 0, 1], 7, [[0, 3]]),
        # Without the separator cost 3 + 2 + 1 would fit 6; with it, it does not.
        ([3, 2, 1], [0, 0, 1], 6, [[0, 2], [2, 3]]),
        # A sentence longer than the budget gets a pack of its own.
        ([2, 9, 1, 1], [0, 0, 0, 1], 5, [[0, 1], [1, 2], [2, 4]]),
        ([9], [0], 5, [[0, 1]]),
        # Empty sentences cost nothing (but a new document still costs 1).
        ([0, 5, 0], [0, 0, 1], 5, [[0, 2], [2, 3]]),
        ([], [], 5, []),
    ],
)
def test_pack_full_sentences_hand_worked(lengths, documents, budget, expected):
    packs = pack_full_sentences(lengths, documents, budget)
    assert packs.shape == (len(expected), 2)
    assert packs.tolist() == expected


def test_full_sentence_packing_rejects_bad_arguments():
    with pytest.raises(ValueError, match="sentence_lengths"):
        pack_full_sentences([1, 2], [0], budget=4)
    corpus = TokenizedCorpus.build(coded_documents([[2]]), coded_tokenizer(1))
    with pytest.raises(ValueError, match="max_sequence_length"):
        FullSentencePacker(corpus, 2, cls_id=CLS, sep_id=SEP)


def unpack(token_ids):
    """Checks <s> ... </s>; returns the body split at document separators, decoded."""
    assert token_ids[0] == CLS and token_ids[-1] == SEP
    body = list(token_ids[1:-1])
    parts, current = [], []
    for token in body:
        if token == SEP:
            parts.append(current)
            current = []
        else:
            current.append(decode(token))
    return parts + [current]


def check_packs(pack_bodies, lengths, max_length):
    """Packs hold every sentence once, whole (unless over budget), in corpus order."""
    budget = max_length - 2
    sentences = [(d, s) for d, document in enumerate(lengths) for s in range(len(document))]
    expected_tokens = {(d, s): min(lengths[d][s], budget) for d, s in sentences}
    seen = []
    for parts in pack_bodies:
        assert sum(map(len, parts)) + len(parts) - 1 <= budget
        for part in parts:
            assert part and len({d for d, _ in part}) == 1  # one document per part
        documents = [part[0][0] for part in parts]
        assert documents == list(range(documents[0], documents[0] + len(parts)))
        pack_sentences = list(dict.fromkeys(token for part in parts for token in part))
        for sentence in pack_sentences:  # never split (or truncated when over budget)
            count = sum(part.count(sentence) for part in parts)
            assert count == expected_tokens[sentence]
            assert len(pack_sentences) == 1 or lengths[sentence[0]][sentence[1]] <= budget
        first = sentences.index(pack_sentences[0])
        assert pack_sentences == sentences[first : first + len(pack_sentences)]  # consecutive
        seen.append(pack_sentences)
    flat = [sentence for pack in seen for sentence in pack]
    assert sorted(flat) == sentences  # every sentence exactly once
    return seen


def test_full_sentence_packer_covers_the_corpus_in_order():
    # Sentence lengths 1..8 with a few over the 14-token budget.
    rng = np.random.default_rng(2)
    lengths = [list(rng.integers(1, 9, size=1 + d % 4)) for d in range(12)]
    lengths[3][0], lengths[7][-1] = 20, 15
    corpus = TokenizedCorpus.build(coded_documents(lengths), coded_tokenizer(12))
    packer = FullSentencePacker(corpus, 16, cls_id=CLS, sep_id=SEP)
    packs = tf.data.Dataset.range(packer.num_packs).map(packer)
    bodies = []
    for example in packs.as_numpy_iterator():
        assert len(example["token_ids"]) <= 16
        np.testing.assert_array_equal(example["segment_ids"], 0)
        bodies.append(unpack(example["token_ids"]))
    in_pack_order = check_packs(bodies, lengths, 16)
    flat = [sentence for pack in in_pack_order for sentence in pack]
    assert flat == sorted(flat)  # pack i holds the sentences right before pack i + 1's
    assert any(len(parts) >= 2 for parts in bodies)  # packs do cross documents
    for long_sentence in [(3, 0), (7, len(lengths[7]) - 1)]:
        assert [long_sentence] in in_pack_order  # alone, truncated to 14 tokens
    # Greedy: the next pack's first sentence would not have fitted.
    splits, documents = corpus.row_splits.numpy(), corpus.sentence_document.numpy()
    for first, end in packer.packs.numpy()[:-1]:
        used = splits[end] - splits[first] + len(set(documents[first:end])) - 1
        cost = splits[end + 1] - splits[end] + int(documents[end] != documents[end - 1])
        assert used + cost > 14


# ------------------------------------------------------------------ pipeline

BATCH, LENGTH, PREDICTIONS = 4, 24, 5


@pytest.fixture(scope="module")
def pipeline_inputs():
    rng = np.random.default_rng(1)
    lengths = [list(rng.integers(2, 9, size=1 + d % 4)) for d in range(10)]
    return coded_documents(lengths), coded_tokenizer(10), lengths


def make(pipeline_inputs, **kwargs):
    documents, tokenizer, _ = pipeline_inputs
    options = dict(batch_size=BATCH, max_sequence_length=LENGTH, max_predictions=PREDICTIONS)
    return make_masked_lm_dataset(documents, tokenizer, **(options | kwargs))


def restore_tokens(batch):
    """The unmasked token ids of each example, without padding."""
    x, y, sample_weight = batch
    tokens = x["token_ids"].copy()
    for i in range(len(tokens)):
        real = sample_weight["mlm"][i] == 1.0
        tokens[i, x["mask_positions"][i][real]] = y["mlm"][i][real]
    return [row[: length] for row, length in zip(tokens, x["padding_mask"].sum(axis=1))]


@pytest.mark.parametrize("objective", ["nsp", "sop", None])
def test_masked_lm_dataset_shapes_keys_and_dtypes(pipeline_inputs, objective):
    dataset = make(pipeline_inputs, sentence_objective=objective, seed=0)
    x, y, sample_weight = dataset.element_spec
    for key in ("token_ids", "segment_ids", "padding_mask"):
        assert x[key].shape == (BATCH, LENGTH) and x[key].dtype == tf.int32
    assert x["mask_positions"].shape == (BATCH, PREDICTIONS)
    labels = ["mlm"] if objective is None else ["mlm", objective]
    assert sorted(y) == sorted(sample_weight) == labels
    assert y["mlm"].shape == (BATCH, PREDICTIONS) and y["mlm"].dtype == tf.int32
    assert sample_weight["mlm"].dtype == tf.float32
    if objective:
        assert y[objective].shape == (BATCH,) and y[objective].dtype == tf.int32
        assert sample_weight[objective].shape == (BATCH,)
    x, y, sample_weight = next(dataset.as_numpy_iterator())
    assert np.all(x["token_ids"][x["padding_mask"] == 0] == PAD)
    assert np.all(x["token_ids"][:, 0] == CLS)
    real = sample_weight["mlm"] == 1.0
    assert real.sum(axis=1).min() >= 1 and not np.isin(y["mlm"][real], SPECIAL_IDS).any()
    if objective is None:
        np.testing.assert_array_equal(x["segment_ids"], 0)


def test_nsp_objective_equals_bert_pretraining_dataset(pipeline_inputs):
    documents, tokenizer, _ = pipeline_inputs
    options = dict(batch_size=BATCH, max_sequence_length=LENGTH, max_predictions=PREDICTIONS)
    first = make(pipeline_inputs, sentence_objective="nsp", seed=7).take(3)
    second = make_bert_pretraining_dataset(documents, tokenizer, seed=7, **options).take(3)
    assert_same_batches(first.as_numpy_iterator(), second.as_numpy_iterator())


def test_sop_labels_match_the_sentence_order(pipeline_inputs):
    dataset = make(pipeline_inputs, sentence_objective="sop", seed=4)
    labels = []
    for batch in dataset.take(10).as_numpy_iterator():
        for i, tokens in enumerate(restore_tokens(batch)):
            segments = batch[0]["segment_ids"][i, : len(tokens)]
            example = {"token_ids": tokens, "segment_ids": segments}
            first, second = split_pair(example)
            first, second = [decode(t) for t in first], [decode(t) for t in second]
            assert first[0][0] == second[0][0]  # one document
            swapped = batch[1]["sop"][i]
            earlier, later = (second, first) if swapped else (first, second)
            assert later[0][1] == earlier[-1][1] + 1
            labels.append(swapped)
    assert set(labels) == {0, 1}


def test_full_sentence_epochs_hold_every_sentence_once(pipeline_inputs):
    _, _, lengths = pipeline_inputs
    dataset = make(pipeline_inputs, sentence_objective=None, seed=2, repeat=False,
                   drop_remainder=False)
    epochs = []
    for _ in range(2):
        batches = dataset.as_numpy_iterator()
        bodies = [unpack(tokens) for batch in batches for tokens in restore_tokens(batch)]
        epochs.append(check_packs(bodies, lengths, LENGTH))
    assert sorted(epochs[0]) == sorted(epochs[1]) and epochs[0] != epochs[1]  # new order


def test_masked_lm_dataset_uses_the_given_masker(pipeline_inputs):
    documents, tokenizer, _ = pipeline_inputs
    masker = MaskedLMMasker(tokenizer.vocabulary_size, tokenizer.mask_id, SPECIAL_IDS,
                            mask_rate=1.0, max_predictions=3)
    dataset = make(pipeline_inputs, sentence_objective=None, masker=masker, seed=1)
    assert dataset.element_spec[0]["mask_positions"].shape == (BATCH, 3)
    _, _, sample_weight = next(dataset.as_numpy_iterator())
    np.testing.assert_array_equal(sample_weight["mlm"], 1.0)  # rate 1: always 3 picks


def test_masked_lm_dataset_corpus_errors():
    tokenizer = coded_tokenizer(2)
    one_sentence_each = [["d0s0 d0s0"], ["d1s0"]]
    with pytest.raises(CorpusError, match="2 or more sentences.*sentence-order"):
        make_masked_lm_dataset(one_sentence_each, tokenizer, 2, sentence_objective="sop")
    with pytest.raises(CorpusError, match="only 1 document"):
        make_masked_lm_dataset([["d0s0", "d0s1"]], tokenizer, 2, sentence_objective="nsp")
    with pytest.raises(CorpusError, match="no text"):
        make_masked_lm_dataset([[], ["  "]], tokenizer, 2, sentence_objective=None)
    with pytest.raises(ValueError, match="set whole_word_masking=True"):
        make_masked_lm_dataset([["d0s0"]], tokenizer, 2, sentence_objective=None,
                               word_segmenter="jieba")
    with pytest.raises(ValueError, match="sentence_objective"):
        make_masked_lm_dataset(one_sentence_each, tokenizer, 2, sentence_objective="mlm")
    # What each objective does accept: SOP one document, packing one sentence.
    make_masked_lm_dataset([["d0s0", "d0s1"]], tokenizer, 2, sentence_objective="sop")
    make_masked_lm_dataset([["d0s0"]], tokenizer, 2, sentence_objective=None)
