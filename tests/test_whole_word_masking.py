"""Tests for whole-word / n-gram MLM masking, word-start flags and jieba word flags."""

import random
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfptlm.data import MaskedLMMasker, TokenizedCorpus
from tfptlm.data.objectives.whole_word import (
    WholeWordMasker,
    flag_continuations,
    remove_continuation_flags,
)
from tfptlm.tokenizers import WordPieceTokenizer, train_byte_bpe, train_sentencepiece

VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",  # 0-4
    "the", "play", "##ing", "##s", "un", "##believ", "##able",  # 5-11
    "cat", "dog", "run", "##ner", "##ers", "a",  # 12-17
]
PAD, UNK, CLS, SEP, MASK = range(5)
V = len(VOCAB)
SPECIALS = [PAD, UNK, CLS, SEP, MASK]
STARTS = np.array([not token.startswith("##") for token in VOCAB])
CHINESE = ["我", "爱", "北", "京", "天", "安", "门", "是", "的"]


def make_masker(**options):
    options = {"mask_rate": 0.15, "max_predictions": 20, **options}
    return WholeWordMasker(V, MASK, SPECIALS, STARTS, **options)


def compiled(masker):
    """The masker as a tf.function taking (ragged ids, [2] seed): fast over many seeds."""

    @tf.function(
        input_signature=[
            tf.RaggedTensorSpec([None, None], tf.int32),
            tf.TensorSpec([2], tf.int64),
        ]
    )
    def call(token_ids, seed):
        return masker(token_ids, seed=seed)

    return call


def word_index(row, starts=STARTS, vocabulary_size=V, unselectable=SPECIALS):
    """Reference word segmentation: the word number of each token (-1 for specials)."""
    words, word, previous_selectable = [], -1, False
    for i, token in enumerate(row):
        flagged = token >= vocabulary_size
        real = token - vocabulary_size if flagged else token
        selectable = real not in unselectable
        if selectable and ((starts[real] and not flagged) or not previous_selectable or i == 0):
            word += 1
        words.append(word if selectable else -1)
        previous_selectable = selectable
    return words


def random_rows(rng, count, max_words=12):
    """Rows of [CLS] words [SEP] words [SEP] from the vocabulary's words."""
    words = [[5], [6], [6, 7], [6, 8], [9, 10, 11], [12], [12, 16], [13], [14, 15], [14, 15, 16],
             [17], [UNK]]
    rows = []
    for _ in range(count):
        row = [CLS]
        for segment in range(2):
            for _ in range(rng.randint(0 if segment else 1, max_words)):
                row += rng.choice(words)
            row.append(SEP)
        rows.append(row)
    return rows


def selected_sets(out):
    """Per row: the set of selected positions."""
    positions = out["mask_positions"].numpy()
    weights = out["mask_weights"].numpy()
    return [set(p[w > 0].tolist()) for p, w in zip(positions, weights)]


def check_never_splits_words(rows, out, budgets, greedy=True):
    for row, chosen, budget in zip(rows, selected_sets(out), budgets):
        words = word_index(row)
        lengths = np.bincount([w for w in words if w >= 0], minlength=max(words) + 1)
        assert all(words[p] >= 0 for p in chosen), "a special token was selected"
        chosen_words = {words[p] for p in chosen}
        whole = {p for p, w in enumerate(words) if w in chosen_words}
        assert chosen == whole, f"a word was split: {row} {sorted(chosen)}"
        assert len(chosen) <= budget
        if greedy:  # units are words: every word left out was too long for what remained
            left_out = set(range(len(lengths))) - chosen_words
            assert all(lengths[w] > budget - len(chosen) for w in left_out)


def budget(row, mask_rate, max_predictions):
    count = sum(token not in SPECIALS for token in row)
    return 0 if count == 0 else min(max_predictions, max(1, round(mask_rate * count)))


# -- word-start flags ---------------------------------------------------------


def test_wordpiece_word_start_flags():
    flags = WordPieceTokenizer(VOCAB).word_start_flags()
    assert flags.dtype == bool and flags.shape == (V,)
    np.testing.assert_array_equal(np.flatnonzero(~flags), [7, 8, 10, 11, 15, 16])


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    rng = random.Random(0)
    words = "the a quick brown fox jumps over lazy dog playing unbelievable reading".split()
    lines = [" ".join(rng.choice(words) for _ in range(8)) for _ in range(200)]
    path = tmp_path_factory.mktemp("corpus") / "english.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_sentencepiece_word_start_flags(corpus_file):
    tokenizer = train_sentencepiece(corpus_file, 60, num_sentinels=2)
    flags = tokenizer.word_start_flags()
    assert flags.shape == (tokenizer.vocabulary_size,) and flags[tokenizer.special_token_ids].all()
    assert (tokenizer.cls_id, tokenizer.sep_id) == (tokenizer.bos_id, tokenizer.eos_id)
    some_split = False
    for word in ["the", "quick", "playing", "unbelievable", "dogfox", "lazyreading"]:
        ids = tokenizer.tokenize(word).numpy()
        assert flags[ids].tolist() == [True] + [False] * (len(ids) - 1), word
        some_split |= len(ids) > 1
    assert some_split  # the vocabulary is small enough to split some words


def test_byte_bpe_word_start_flags(corpus_file):
    tokenizer = train_byte_bpe(corpus_file, 300, num_sentinels=2, show_progress=False)
    flags = tokenizer.word_start_flags()
    assert flags.shape == (tokenizer.vocabulary_size,) and flags[tokenizer.special_token_ids].all()
    assert (tokenizer.cls_id, tokenizer.sep_id) == (tokenizer.bos_id, tokenizer.eos_id)
    assert (tokenizer.cls_id, tokenizer.sep_id) == (3, 1)
    some_split = False
    for word in ["the", "quick", "brown", "jumps", "playing", "unbelievable", "xylophone"]:
        ids = tokenizer.tokenize(" " + word).numpy()
        assert flags[ids].tolist() == [True] + [False] * (len(ids) - 1), word
        some_split |= len(ids) > 1
    assert some_split
    # A text's first word has no leading space, so no word start.
    assert not flags[tokenizer.tokenize("the").numpy()[0]]


# -- whole-word masking -------------------------------------------------------


def test_word_index_reference_on_a_hand_worked_row():
    row = [CLS, 5, 6, 7, 9, 10, 11, SEP, 6, 8, 12, SEP]
    assert word_index(row) == [-1, 0, 1, 1, 2, 2, 2, -1, 3, 3, 4, -1]
    # A continuation piece right after a special token starts a word.
    assert word_index([CLS, 7, 8, SEP]) == [-1, 0, 0, -1]


@pytest.mark.parametrize("max_ngram", [1, 3])
def test_never_splits_words_and_respects_budget(max_ngram):
    rng = random.Random(1)
    rows = random_rows(rng, 16)
    for mask_rate, max_predictions in [(0.15, 20), (0.5, 4)]:
        masker = compiled(make_masker(mask_rate=mask_rate, max_predictions=max_predictions,
                                      max_ngram=max_ngram))
        budgets = [budget(row, mask_rate, max_predictions) for row in rows]
        for seed in range(40):
            out = masker(tf.ragged.constant(rows, tf.int32), tf.constant([seed, 0], tf.int64))
            check_never_splits_words(rows, out, budgets, greedy=max_ngram == 1)
            positions, weights = out["mask_positions"].numpy(), out["mask_weights"].numpy()
            mask_ids, masked = out["mask_ids"].numpy(), out["token_ids"].to_list()
            for row, new, p, w, ids in zip(rows, masked, positions, weights, mask_ids):
                n = int(w.sum())
                assert (w[:n] == 1).all() and (w[n:] == 0).all()
                assert (p[n:] == 0).all() and (ids[n:] == 0).all()
                assert (np.diff(p[:n]) > 0).all()  # ascending
                assert ids[:n].tolist() == [row[i] for i in p[:n]]
                assert [t for i, t in enumerate(new) if i not in p[:n]] == [
                    t for i, t in enumerate(row) if i not in p[:n]
                ]


def test_single_piece_words_fill_the_budget_exactly():
    rows = [[CLS] + [5, 12, 13, 17] * k + [SEP] for k in (1, 2, 5, 10)] + [[CLS, SEP], []]
    for mask_rate, max_predictions in [(0.15, 20), (0.5, 20), (0.5, 7), (1.0, 3)]:
        for max_ngram in (1, 3):
            masker = make_masker(mask_rate=mask_rate, max_predictions=max_predictions,
                                 max_ngram=max_ngram)
            out = masker(tf.ragged.constant(rows, tf.int32), seed=tf.constant([4, 2]))
            counts = out["mask_weights"].numpy().sum(axis=1).astype(int).tolist()
            if max_ngram == 1:  # every unit is one token: the budget is always filled
                assert counts == [budget(r, mask_rate, max_predictions) for r in rows]
            assert counts[-2:] == [0, 0]
            assert out["mask_positions"].shape == (len(rows), max_predictions)


def test_seeded_calls_repeat_and_seeds_differ():
    rows = tf.ragged.constant(random_rows(random.Random(2), 8), tf.int32)
    for max_ngram in (1, 3):
        masker = make_masker(max_ngram=max_ngram)
        first = masker(rows, seed=tf.constant([7, 7]))
        again = masker(rows, seed=tf.constant([7, 7]))
        other = masker(rows, seed=tf.constant([8, 7]))
        for name in ("mask_positions", "mask_ids", "mask_weights"):
            np.testing.assert_array_equal(first[name], again[name])
        assert first["token_ids"].to_list() == again["token_ids"].to_list()
        assert not np.array_equal(first["mask_positions"], other["mask_positions"])
        # Unseeded calls are stateful: new masks each call.
        draws = {tuple(masker(rows)["mask_positions"].numpy().ravel()) for _ in range(4)}
        assert len(draws) > 1


@pytest.mark.parametrize("seeded", [True, False])
def test_replacement_proportions_80_10_10(seeded):
    rows = random_rows(random.Random(3), 32, max_words=20)
    masker = make_masker(mask_rate=0.5, max_predictions=40)
    call = compiled(masker) if seeded else tf.function(masker.__call__)
    counts = np.zeros(3)
    for seed in range(30):
        token_ids = tf.ragged.constant(rows, tf.int32)
        out = call(token_ids, tf.constant([seed, 1], tf.int64)) if seeded else call(token_ids)
        masked = out["token_ids"].to_tensor(-1).numpy()
        positions, weights = out["mask_positions"].numpy(), out["mask_weights"].numpy() > 0
        new = np.take_along_axis(masked, positions, axis=1)[weights]
        original = out["mask_ids"].numpy()[weights]
        counts += [(new == MASK).sum(), (new == original).sum(), 0]
        counts[2] += ((new != MASK) & (new != original)).sum()
    fractions = counts / counts.sum()
    assert counts.sum() > 3000
    # Random ids may hit MASK or the original id (1/V each).
    np.testing.assert_allclose(fractions, [0.8 + 0.1 / V, 0.1 + 0.1 / V, 0.1 - 0.2 / V],
                               atol=0.025)


def test_ngram_chunks_follow_runs_and_have_one_over_n_lengths():
    masker = make_masker(max_ngram=3)
    rng = np.random.default_rng(4)
    # 4000 one-token words; 3950 are selectable (the gaps are special tokens)
    # and a new row starts at every 700th token: both end runs of words.
    selectable_words = np.sort(rng.choice(4000, 3950, replace=False))
    position = np.where(np.arange(4000) % 700 == 0, 0, 1)
    run_start = np.concatenate([[True], np.diff(selectable_words) > 1])
    run_start |= position[selectable_words] == 0
    run = np.cumsum(run_start)
    full_chunk_sizes = []
    for seed in range(3):
        units = masker._units(
            tf.constant(selectable_words, tf.int64),
            tf.range(4000, dtype=tf.int64),
            tf.constant(position, tf.int64),
            tf.constant([seed, 3], tf.int64),
        ).numpy()
        assert units[0] == 0 and set(np.diff(units)) <= {0, 1}  # consecutive chunks
        assert not np.any((np.diff(units) == 0) & (np.diff(run) != 0))  # within a run
        sizes = np.bincount(units)
        assert sizes.min() >= 1 and sizes.max() <= 3
        last_word = np.cumsum(sizes) - 1
        ends_run = np.append(run[last_word[:-1] + 1] != run[last_word[:-1]], True)
        full_chunk_sizes += sizes[~ends_run].tolist()
    frequencies = np.bincount(full_chunk_sizes, minlength=4)[1:] / len(full_chunk_sizes)
    np.testing.assert_allclose(frequencies, np.array([6, 3, 2]) / 11, atol=0.03)


def test_ngram_mode_adds_multi_word_units_on_long_rows():
    row = [CLS] + [5, 12, 13, 17] * 10 + [SEP]

    def mean_adjacent(max_ngram):
        masker = compiled(make_masker(max_ngram=max_ngram))
        total = 0
        for seed in range(100):
            out = masker(tf.ragged.constant([row], tf.int32), tf.constant([seed, 9], tf.int64))
            chosen = sorted(selected_sets(out)[0])
            assert len(chosen) == 6  # round(0.15 * 40)
            total += sum(b - a == 1 for a, b in zip(chosen, chosen[1:]))
        return total / 100

    assert mean_adjacent(3) > mean_adjacent(1) + 1.0


# -- continuation flags ---------------------------------------------------------


def test_flag_helpers_round_trip():
    ids = tf.ragged.constant([[5, 6, 7], [8]], tf.int32)
    starts = tf.ragged.constant([[True, False, True], [False]])
    flagged = flag_continuations(ids, starts, 100)
    assert flagged.to_list() == [[5, 106, 7], [108]]
    assert remove_continuation_flags(flagged, 100).to_list() == ids.to_list()
    dense = flag_continuations(tf.constant([5, 6]), tf.constant([False, True]), 10)
    assert dense.numpy().tolist() == [15, 6]


def test_flagged_ids_define_words_and_come_back_as_real_ids():
    vocabulary = VOCAB + CHINESE
    size = len(vocabulary)
    ids = {c: vocabulary.index(c) for c in CHINESE}
    # 我 / 爱 / 北京 / 天安门 / 是 / 的: every character is a word start in the vocabulary.
    row = [CLS, ids["我"], ids["爱"], ids["北"], ids["京"] + size, ids["天"], ids["安"] + size,
           ids["门"] + size, SEP, ids["是"], ids["的"], SEP]
    words = [{1}, {2}, {3, 4}, {5, 6, 7}, {9}, {10}]
    starts = np.ones(size, bool)
    masker = compiled(WholeWordMasker(size, MASK, SPECIALS, starts, mask_rate=0.5,
                                      max_predictions=4))
    real = remove_continuation_flags(tf.constant(row), size).numpy()
    seen = set()
    for seed in range(60):
        out = masker(tf.ragged.constant([row], tf.int32), tf.constant([seed, 2], tf.int64))
        (chosen,) = selected_sets(out)
        assert len(chosen) <= 4
        assert chosen == set().union(*(w for w in words if w & chosen)), chosen
        assert max(out["token_ids"].flat_values.numpy()) < size
        n = len(chosen)
        assert out["mask_ids"].numpy()[0, :n].tolist() == real[sorted(chosen)].tolist()
        seen |= {frozenset(w) for w in words if w <= chosen}
    assert frozenset({5, 6, 7}) in seen and frozenset({3, 4}) in seen


def test_same_output_structure_as_masked_lm_masker():
    rows = tf.ragged.constant([[CLS, 5, 6, 7, SEP], [CLS, 12, SEP], []], tf.int32)
    plain = MaskedLMMasker(V, MASK, SPECIALS, max_predictions=6)
    whole = make_masker(max_predictions=6, max_ngram=2)
    for seed in (None, tf.constant([1, 2], tf.int64)):
        a, b = plain(rows, seed=seed), whole(rows, seed=seed)
        assert sorted(a) == sorted(b)
        for name in a:
            assert type(a[name]) is type(b[name]) and a[name].dtype == b[name].dtype, name
            assert a[name].shape.as_list() == b[name].shape.as_list(), name
        assert a["token_ids"].row_lengths().numpy().tolist() == [5, 3, 0]
        assert b["token_ids"].row_lengths().numpy().tolist() == [5, 3, 0]
    # Inside tf.data on a batch, as the pretraining pipeline uses it. Budget 1
    # per row: "play ##ing" never fits, "the" and "cat" always do.
    whole = make_masker(max_predictions=6)
    dataset = tf.data.Dataset.from_tensors(rows).repeat(3)
    datasets = [
        dataset.map(lambda x: masker(x, seed=tf.constant([3, 4]))) for masker in (plain, whole)
    ]
    assert datasets[0].element_spec == datasets[1].element_spec
    for out in datasets[1]:
        assert out["mask_positions"].numpy()[:, :2].tolist() == [[1, 0], [1, 0], [0, 0]]
        assert out["mask_ids"].numpy()[:, 0].tolist() == [5, 12, 0]


def test_bad_arguments():
    with pytest.raises(ValueError, match="word_starts"):
        WholeWordMasker(V, MASK, SPECIALS, STARTS[:-1])
    with pytest.raises(ValueError, match="max_ngram"):
        make_masker(max_ngram=0)
    with pytest.raises(ValueError, match="unselectable_ids"):
        WholeWordMasker(V, MASK, SPECIALS + [V], STARTS)
    with pytest.raises(ValueError, match="mask_rate"):
        make_masker(mask_rate=0.0)


# -- jieba-segmented corpora -----------------------------------------------------


def chinese_tokenizer():
    return WordPieceTokenizer(VOCAB + CHINESE)


def test_jieba_corpus_flags_word_continuations_and_masking_keeps_words():
    jieba = pytest.importorskip("jieba")
    tokenizer = chinese_tokenizer()
    size = tokenizer.vocabulary_size
    sentence = "我爱北京天安门"
    words = jieba.lcut(sentence)
    assert "北京" in words and "天安门" in words
    corpus = TokenizedCorpus.build([[sentence, "playing the cat"]], tokenizer,
                                   word_segmenter="jieba")
    expected = [
        tokenizer.token_to_id(c) + (size if i else 0) for word in words for i, c in enumerate(word)
    ]
    assert corpus.sentence(0).numpy().tolist() == expected
    # English: jieba words are whitespace words, so only ## pieces are flagged.
    play, ing, the, cat = (tokenizer.token_to_id(t) for t in ("play", "##ing", "the", "cat"))
    assert corpus.sentence(1).numpy().tolist() == [play, ing + size, the, cat]
    assert corpus.num_examples == 1 and corpus.num_sentences == 2

    masker = compiled(WholeWordMasker(size, tokenizer.mask_id, tokenizer.special_token_ids,
                                      tokenizer.word_start_flags(), mask_rate=0.5,
                                      max_predictions=5))
    row = [tokenizer.cls_id] + expected + [tokenizer.sep_id]
    spans, start = [], 1
    for word in words:
        spans.append(set(range(start, start + len(word))))
        start += len(word)
    for seed in range(40):
        out = masker(tf.ragged.constant([row], tf.int32), tf.constant([seed, 0], tf.int64))
        (chosen,) = selected_sets(out)
        assert chosen == set().union(*(s for s in spans if s & chosen))
        assert max(out["token_ids"].flat_values.numpy()) < size


def test_word_segmenter_errors(monkeypatch):
    tokenizer = chinese_tokenizer()
    with pytest.raises(ValueError, match="word_segmenter"):
        TokenizedCorpus.build([["我爱北京"]], tokenizer, word_segmenter="pkuseg")
    monkeypatch.setitem(sys.modules, "jieba", None)  # import jieba -> ImportError
    with pytest.raises(ImportError, match=r"tfptlm\[chinese\]"):
        TokenizedCorpus.build([["我爱北京"]], tokenizer, word_segmenter="jieba")
