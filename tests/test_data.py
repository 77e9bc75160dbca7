"""Tests for tfptlm.data: corpus reading, NSP pairs, MLM masking, the BERT pipeline."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfptlm.data import (
    CorpusError,
    MaskedLMMasker,
    NextSentencePairer,
    TokenizedCorpus,
    count_examples,
    make_bert_pretraining_dataset,
    read_documents,
    split_sentences,
    validate_for_nsp,
)
from tfptlm.data.objectives.nsp import build_pair_inputs, truncate_pair

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIAL_IDS = [PAD, UNK, CLS, SEP, MASK]
MAX_SENTENCES = 100  # sentence index is encoded as id % MAX_SENTENCES


class FakeTokenizer:
    """Whitespace split + vocabulary lookup; satisfies the tokenizer contract."""

    def __init__(self, tokens):
        self.vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *tokens]
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(self.vocabulary), tf.range(len(self.vocabulary), dtype=tf.int32)
            ),
            default_value=UNK,
        )
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = SPECIAL_IDS
        self.special_token_ids = list(SPECIAL_IDS)
        self.vocabulary_size = len(self.vocabulary)

    def tokenize(self, texts):
        return tf.ragged.map_flat_values(self.table.lookup, tf.strings.split(texts))


def coded_tokenizer(num_documents):
    """Token ``d{d}s{s}`` has id ``5 + d * MAX_SENTENCES + s``."""
    tokens = [f"d{d}s{s}" for d in range(num_documents) for s in range(MAX_SENTENCES)]
    return FakeTokenizer(tokens)


def decode(token_id):
    """Returns (document, sentence) encoded in a coded token id."""
    return divmod(int(token_id) - 5, MAX_SENTENCES)


def coded_documents(lengths_per_document):
    """Document d, sentence s is ``d{d}s{s}`` repeated ``lengths[d][s]`` times."""
    return [
        [" ".join([f"d{d}s{s}"] * length) for s, length in enumerate(lengths)]
        for d, lengths in enumerate(lengths_per_document)
    ]


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return str(path)


# ----------------------------------------------------------------- reading


def test_bert_format_reads_documents_and_sentences(tmp_path):
    write(tmp_path / "a.txt", "  First one.  \nSecond one.\n\n \t \n\nOther doc.\nMore.\n")
    write(tmp_path / "b.txt", "Third doc starts.\n\nFourth.\nEnd.")
    documents = read_documents(str(tmp_path / "*.txt"))
    assert documents == [
        ["First one.", "Second one."],
        ["Other doc.", "More."],
        ["Third doc starts."],
        ["Fourth.", "End."],
    ]


def test_documents_never_span_files(tmp_path):
    a = write(tmp_path / "a.txt", "A1.\nA2.")  # no blank line at the end
    b = write(tmp_path / "b.txt", "B1.\nB2.\n")
    assert read_documents([a, b]) == [["A1.", "A2."], ["B1.", "B2."]]


def test_one_document_per_line_splits_sentences(tmp_path):
    text = (
        "Hello world. This is great! Is it?  Yes.\n"
        "\n"
        "今天天气很好。我们去公园吧！你去吗？好\n"
        "Single sentence without a full stop\n"
    )
    path = write(tmp_path / "docs.txt", text)
    assert read_documents(path, one_document_per_line=True) == [
        ["Hello world.", "This is great!", "Is it?", "Yes."],
        ["今天天气很好。", "我们去公园吧！", "你去吗？", "好"],
        ["Single sentence without a full stop"],
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("One. Two.", ["One.", "Two."]),
        ("Wait!! What?! OK", ["Wait!!", "What?!", "OK"]),
        ('He said "Stop." Then left.', ['He said "Stop."', "Then left."]),
        ("See e.g. the lobster , H. americanus .", ["See e.g. the lobster , H. americanus ."]),
        ("他说：“走吧。”我们走了。", ["他说：“走吧。”", "我们走了。"]),
        ("3.14 is pi. Yes", ["3.14 is pi.", "Yes"]),
        ("   ", []),
        ("。。", ["。。"]),
    ],
)
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


def test_bom_and_crlf(tmp_path):
    text = b"\xef\xbb\xbfFirst.\r\nSecond.\r\n\r\nThird.\r\nFourth.\r\n"
    path = write(tmp_path / "bom.txt", text)
    assert read_documents(path) == [["First.", "Second."], ["Third.", "Fourth."]]
    path = write(tmp_path / "bom_docs.txt", b"\xef\xbb\xbfOne. Two.\r\nThree. Four.\r\n")
    assert read_documents(path, one_document_per_line=True) == [
        ["One.", "Two."],
        ["Three.", "Four."],
    ]


def test_missing_file_names_the_path(tmp_path):
    missing = str(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_documents(missing)


def test_empty_glob_names_the_pattern(tmp_path):
    write(tmp_path / "a.txt", "A.\nB.\n\nC.\n")
    pattern = str(tmp_path / "*.jsonl")
    with pytest.raises(FileNotFoundError, match=r"\*\.jsonl"):
        read_documents([str(tmp_path / "a.txt"), pattern])


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = write(tmp_path / "latin1.txt", "Good.\nAlso good.\n\nCafé here.\n", encoding="latin-1")
    with pytest.raises(ValueError, match=r"latin1\.txt, line 4: invalid UTF-8"):
        read_documents(path)


def test_empty_corpus_is_an_error(tmp_path):
    path = write(tmp_path / "blank.txt", "\n  \n\t\n")
    with pytest.raises(CorpusError, match="empty.*blank.txt"):
        read_documents(path)


def test_single_document_is_an_error(tmp_path):
    path = write(tmp_path / "one.txt", "A.\nB.\nC.\n")
    with pytest.raises(CorpusError, match="only 1 document.*one.txt"):
        read_documents(path)
    assert read_documents(path, check_nsp=False) == [["A.", "B.", "C."]]


def test_no_document_with_two_sentences_is_an_error(tmp_path):
    path = write(tmp_path / "short.txt", "A.\n\nB.\n\nC.\n")
    with pytest.raises(CorpusError, match="short.txt.*2 or more sentences"):
        read_documents(path)
    assert issubclass(CorpusError, ValueError)


def test_validate_for_nsp_accepts_a_usable_corpus():
    validate_for_nsp([["A.", "B."], ["C."]])
    with pytest.raises(CorpusError, match="empty"):
        validate_for_nsp([])


def test_count_examples():
    assert count_examples([["a", "b", "c"], ["d"], ["e", "f"]]) == 3


# ---------------------------------------------------------------------- NSP


def draw_pairs(pairer, corpus, repeats, seed=0):
    starts = tf.data.Dataset.from_tensor_slices(corpus.candidate_starts).repeat(repeats)
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    dataset = tf.data.Dataset.zip(starts, seeds).map(
        lambda start, s: pairer(start, s) | {"start": start}
    )
    examples = []
    for batch in dataset.ragged_batch(512).as_numpy_iterator():
        examples.extend({key: batch[key][i] for key in batch} for i in range(len(batch["start"])))
    return examples


def split_pair(example):
    """Checks [CLS] A [SEP] B [SEP] layout; returns A and B token ids."""
    tokens, segments = example["token_ids"], example["segment_ids"]
    assert tokens[0] == CLS and tokens[-1] == SEP
    sep_positions = np.flatnonzero(tokens == SEP)
    assert len(sep_positions) == 2
    first_sep = sep_positions[0]
    np.testing.assert_array_equal(segments[: first_sep + 1], 0)
    np.testing.assert_array_equal(segments[first_sep + 1 :], 1)
    return tokens[1:first_sep], tokens[first_sep + 1 : -1]


def assert_consecutive(decoded):
    """Tokens come from one document, sentences in order without gaps."""
    documents = {d for d, _ in decoded}
    assert len(documents) == 1
    steps = np.diff([s for _, s in decoded])
    assert np.all((steps == 0) | (steps == 1))


@pytest.fixture(scope="module")
def coded_corpus():
    rng = np.random.default_rng(0)
    lengths = [list(rng.integers(1, 7, size=3 + d % 5)) for d in range(12)]
    documents = coded_documents(lengths)
    return TokenizedCorpus.build(documents, coded_tokenizer(12), batch_size=7), lengths


def test_tokenized_corpus_layout(coded_corpus):
    corpus, lengths = coded_corpus
    assert corpus.num_documents == 12
    assert corpus.num_sentences == sum(len(doc) for doc in lengths)
    assert corpus.num_tokens == sum(sum(doc) for doc in lengths)
    assert corpus.num_examples == count_examples(lengths)
    first_of_document_1 = len(lengths[0])
    sentence = corpus.sentence(first_of_document_1 + 1).numpy()
    assert [decode(t) for t in sentence] == [(1, 1)] * lengths[1][1]
    starts = corpus.candidate_starts.numpy()
    last_sentences = corpus.document_bounds.numpy()[:, 1] - 1
    assert not set(starts) & set(last_sentences)


def test_nsp_pairs_are_well_formed(coded_corpus):
    corpus, lengths = coded_corpus
    max_length = 32
    pairer = NextSentencePairer(corpus, max_length, cls_id=CLS, sep_id=SEP)
    examples = draw_pairs(pairer, corpus, repeats=40)
    sentence_document = corpus.sentence_document.numpy()
    first_sentence = corpus.document_bounds.numpy()[:, 0]
    a_sentence_counts = set()
    for example in examples:
        assert len(example["token_ids"]) <= max_length
        a, b = split_pair(example)
        assert len(a) and len(b)
        a_decoded, b_decoded = [decode(t) for t in a], [decode(t) for t in b]
        assert_consecutive(a_decoded)
        assert_consecutive(b_decoded)
        start = int(example["start"])
        document = sentence_document[start]
        local_start = start - first_sentence[document]
        assert a_decoded[-1][0] == document and a_decoded[-1][1] >= local_start
        if example["is_random_next"] == 0:
            # No truncation needed: A starts at the start sentence and B
            # continues A exactly; A + B is the greedy chunk of the document.
            assert a_decoded[0] == (document, local_start)
            assert b_decoded[0] == (document, a_decoded[-1][1] + 1)
            chunk, total = 0, 0
            for length in lengths[document][local_start:]:
                if total + length > max_length - 3:
                    break
                chunk, total = chunk + 1, total + length
            expected = [(document, local_start + i) for i in range(chunk)]
            expected = [x for x in expected for _ in range(lengths[x[0]][x[1]])]
            assert a_decoded + b_decoded == expected
            a_sentence_counts.add(a_decoded[-1][1] - local_start + 1)
        else:
            assert b_decoded[0][0] != document
            # B starts at a full sentence (B is only cut at its end).
            b_doc, b_sentence = b_decoded[0]
            b_head_complete = b_decoded.count(b_decoded[0]) == lengths[b_doc][b_sentence]
            assert b_head_complete or len(a) + len(b) == max_length - 3
    assert len(a_sentence_counts) >= 3  # the split point of A is random


def test_nsp_random_next_rate_is_about_half(coded_corpus):
    corpus, _ = coded_corpus
    pairer = NextSentencePairer(corpus, 32, cls_id=CLS, sep_id=SEP)
    examples = draw_pairs(pairer, corpus, repeats=60, seed=3)
    labels = np.array([example["is_random_next"] for example in examples])
    n = len(labels)
    assert n >= 2000
    assert abs(labels.sum() - n / 2) < 4 * math.sqrt(n / 4)


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_nsp_random_next_rate_extremes(coded_corpus, rate):
    corpus, _ = coded_corpus
    pairer = NextSentencePairer(corpus, 32, cls_id=CLS, sep_id=SEP, random_next_rate=rate)
    labels = [e["is_random_next"] for e in draw_pairs(pairer, corpus, repeats=2)]
    assert set(labels) == {int(rate)}


def test_nsp_same_seed_same_pair(coded_corpus):
    corpus, _ = coded_corpus
    pairer = NextSentencePairer(corpus, 32, cls_id=CLS, sep_id=SEP)
    seed = tf.constant([5, 6], tf.int64)
    first, second = pairer(tf.constant(3), seed), pairer(tf.constant(3), seed)
    np.testing.assert_array_equal(first["token_ids"], second["token_ids"])


def test_nsp_truncates_long_sentences():
    lengths = [[20, 3, 30, 25], [5, 5]]
    corpus = TokenizedCorpus.build(coded_documents(lengths), coded_tokenizer(2))
    pairer = NextSentencePairer(corpus, 16, cls_id=CLS, sep_id=SEP, random_next_rate=0.0)
    seed = tf.constant([1, 2], tf.int64)

    def pair(start):
        a, b = split_pair({k: v.numpy() for k, v in pairer(tf.constant(start), seed).items()})
        return [decode(t) for t in a], [decode(t) for t in b]

    # budget 13: A alone is too long and loses its start; B (3) stays whole.
    a, b = pair(0)
    assert a == [(0, 0)] * 10 and b == [(0, 1)] * 3
    # Short A stays whole; B loses its end.
    a, b = pair(1)
    assert a == [(0, 1)] * 3 and b == [(0, 2)] * 10
    # Both long: about half each (A gets the odd token).
    a, b = pair(2)
    assert a == [(0, 2)] * 7 and b == [(0, 3)] * 6


def test_truncate_pair_and_build_pair_inputs():
    a, b = truncate_pair(tf.range(10), tf.range(100, 103), 8)
    assert a.numpy().tolist() == [5, 6, 7, 8, 9] and b.numpy().tolist() == [100, 101, 102]
    a, b = truncate_pair(tf.range(2), tf.range(100, 103), 8)
    assert a.numpy().tolist() == [0, 1] and b.numpy().tolist() == [100, 101, 102]
    out = build_pair_inputs(tf.constant([7, 8]), tf.constant([9]), CLS, SEP)
    assert out["token_ids"].numpy().tolist() == [CLS, 7, 8, SEP, 9, SEP]
    assert out["segment_ids"].numpy().tolist() == [0, 0, 0, 0, 1, 1]


# ---------------------------------------------------------------------- MLM


def random_batch(rows, vocabulary_size, seed=0):
    """Ragged [CLS] ... [SEP] ... [SEP] rows with some [UNK]s inside."""
    rng = np.random.default_rng(seed)
    batch = []
    for _ in range(rows):
        body = rng.integers(5, vocabulary_size, size=rng.integers(3, 60))
        body[rng.random(len(body)) < 0.05] = UNK
        cut = rng.integers(1, len(body))
        batch.append([CLS, *body[:cut], SEP, *body[cut:], SEP])
    return tf.ragged.constant(batch, dtype=tf.int32)


def expected_prediction_count(row, rate=0.15, max_predictions=20):
    selectable = int(np.sum(~np.isin(row, SPECIAL_IDS)))
    return min(int(np.ceil(np.float32(selectable) * np.float32(rate))), max_predictions)


@pytest.fixture(scope="module")
def masked_sample():
    vocabulary_size = 1000
    batch = random_batch(3000, vocabulary_size)
    masker = MaskedLMMasker(vocabulary_size, MASK, unselectable_ids=SPECIAL_IDS)
    out = tf.function(masker)(batch, seed=tf.constant([1, 2]))  # eager map_fn is slow
    return batch, {k: v.numpy() if isinstance(v, tf.Tensor) else v for k, v in out.items()}


def test_mlm_selects_fifteen_percent_of_real_tokens(masked_sample):
    batch, out = masked_sample
    total_selected, total_selectable = 0, 0
    for i, row in enumerate(batch.numpy()):
        count = int(out["mask_weights"][i].sum())
        assert count == expected_prediction_count(row)
        np.testing.assert_array_equal(out["mask_weights"][i], [1.0] * count + [0.0] * (20 - count))
        np.testing.assert_array_equal(out["mask_positions"][i, count:], 0)
        np.testing.assert_array_equal(out["mask_ids"][i, count:], 0)
        total_selected += count
        total_selectable += int(np.sum(~np.isin(row, SPECIAL_IDS)))
    assert 0.15 <= total_selected / total_selectable < 0.17  # ceil rounds up


def test_mlm_never_selects_special_tokens_and_labels_are_originals(masked_sample):
    batch, out = masked_sample
    masked_rows = out["token_ids"].to_list()
    for i, row in enumerate(batch.numpy()):
        count = int(out["mask_weights"][i].sum())
        positions = out["mask_positions"][i, :count]
        assert len(set(positions)) == count and np.all(positions < len(row))
        assert not np.isin(row[positions], SPECIAL_IDS).any()
        np.testing.assert_array_equal(out["mask_ids"][i, :count], row[positions])
        unselected = np.setdiff1d(np.arange(len(row)), positions)
        np.testing.assert_array_equal(np.array(masked_rows[i])[unselected], row[unselected])


def test_mlm_replacements_are_80_10_10(masked_sample):
    batch, out = masked_sample
    masked_rows = out["token_ids"].to_list()
    new_values, originals = [], []
    for i in range(len(masked_rows)):
        count = int(out["mask_weights"][i].sum())
        new_values.extend(np.array(masked_rows[i])[out["mask_positions"][i, :count]])
        originals.extend(out["mask_ids"][i, :count])
    new_values, originals = np.array(new_values), np.array(originals)
    n = len(new_values)
    assert n > 10000
    masked = np.mean(new_values == MASK)
    unchanged = np.mean(new_values == originals)
    replaced = 1 - masked - unchanged
    tolerance = 4 * math.sqrt(0.8 * 0.2 / n)
    assert abs(masked - 0.8) < tolerance
    assert abs(unchanged - 0.1) < tolerance
    assert abs(replaced - 0.1) < tolerance


def test_mlm_seeded_masks_repeat_and_unseeded_masks_change():
    batch = random_batch(50, 500, seed=1)
    masker = tf.function(MaskedLMMasker(500, MASK, unselectable_ids=SPECIAL_IDS))
    seed = tf.constant([7, 7])
    seeded = [masker(batch, seed=seed)["mask_positions"].numpy() for _ in range(2)]
    np.testing.assert_array_equal(*seeded)
    unseeded = [masker(batch)["mask_positions"].numpy() for _ in range(2)]
    assert not np.array_equal(*unseeded)
    assert not np.array_equal(seeded[0], masker(batch, seed=seed + 1)["mask_positions"])


def test_mlm_respects_max_predictions_and_rejects_bad_rates():
    batch = tf.ragged.constant([[CLS] + list(range(5, 105)) + [SEP]], dtype=tf.int32)
    masker = MaskedLMMasker(200, MASK, SPECIAL_IDS, max_predictions=4)
    out = masker(batch, seed=tf.constant([0, 1]))
    assert out["mask_weights"].numpy().tolist() == [[1.0] * 4]
    with pytest.raises(ValueError, match="sum to <= 1"):
        MaskedLMMasker(200, MASK, SPECIAL_IDS, mask_token_rate=0.9, random_token_rate=0.2)


# ----------------------------------------------------------------- pipeline

BATCH, LENGTH, PREDICTIONS = 8, 32, 6


@pytest.fixture(scope="module")
def pipeline_inputs():
    rng = np.random.default_rng(1)
    lengths = [list(rng.integers(2, 9, size=2 + d % 6)) for d in range(20)]
    return coded_documents(lengths), coded_tokenizer(20)


def make(pipeline_inputs, **kwargs):
    documents, tokenizer = pipeline_inputs
    options = dict(batch_size=BATCH, max_sequence_length=LENGTH, max_predictions=PREDICTIONS)
    return make_bert_pretraining_dataset(documents, tokenizer, **(options | kwargs))


def batches(dataset, count=None):
    iterator = dataset.as_numpy_iterator()
    return [next(iterator) for _ in range(count)] if count else list(iterator)


def assert_same_batches(first, second):
    for batch_a, batch_b in zip(first, second, strict=True):
        for part_a, part_b in zip(batch_a, batch_b):
            for key in part_a:
                np.testing.assert_array_equal(part_a[key], part_b[key])


@pytest.fixture(scope="module")
def seeded_dataset(pipeline_inputs):
    return make(pipeline_inputs, seed=0)


def test_pipeline_shapes_and_dtypes(seeded_dataset):
    x, y, sample_weight = seeded_dataset.element_spec
    for key in ("token_ids", "segment_ids", "padding_mask"):
        assert x[key].shape == (BATCH, LENGTH) and x[key].dtype == tf.int32
    assert x["mask_positions"].shape == (BATCH, PREDICTIONS)
    assert x["mask_positions"].dtype == tf.int32
    assert y["mlm"].shape == (BATCH, PREDICTIONS) and y["mlm"].dtype == tf.int32
    assert y["nsp"].shape == (BATCH,) and y["nsp"].dtype == tf.int32
    assert sample_weight["mlm"].shape == (BATCH, PREDICTIONS)
    assert sample_weight["mlm"].dtype == tf.float32
    assert sample_weight["nsp"].shape == (BATCH,) and sample_weight["nsp"].dtype == tf.float32


def test_pipeline_batches_are_consistent(seeded_dataset):
    for x, y, sample_weight in batches(seeded_dataset, count=30):
        lengths = x["padding_mask"].sum(axis=1)
        np.testing.assert_array_equal(x["padding_mask"], np.arange(LENGTH) < lengths[:, None])
        assert np.all(x["token_ids"][x["padding_mask"] == 0] == PAD)
        assert np.all(x["segment_ids"][x["padding_mask"] == 0] == 0)
        assert np.all(x["token_ids"][:, 0] == CLS)
        np.testing.assert_array_equal(sample_weight["nsp"], 1.0)
        assert set(y["nsp"]) <= {0, 1}
        real = sample_weight["mlm"] == 1.0
        assert np.all(real | (sample_weight["mlm"] == 0.0))
        np.testing.assert_array_equal(real.sum(axis=1) >= 1, True)
        positions = x["mask_positions"]
        rows = np.repeat(np.arange(BATCH)[:, None], PREDICTIONS, axis=1)
        assert np.all(x["padding_mask"][rows[real], positions[real]] == 1)
        assert not np.isin(y["mlm"][real], SPECIAL_IDS).any()
        # A [SEP] ends segment A and B; masking never touches [CLS]/[SEP].
        for i in range(BATCH):
            segments = x["segment_ids"][i, : lengths[i]]
            first_sep = np.flatnonzero(segments == 1)[0] - 1
            assert x["token_ids"][i, first_sep] == SEP and x["token_ids"][i, lengths[i] - 1] == SEP
            assert first_sep not in positions[i][real[i]]


def test_pipeline_masks_change_between_epochs(pipeline_inputs):
    dataset = make(pipeline_inputs, seed=3, shuffle=False, repeat=False)
    first, second = batches(dataset, count=3), batches(dataset, count=3)
    positions = [(a[0]["mask_positions"], b[0]["mask_positions"]) for a, b in zip(first, second)]
    assert not all(np.array_equal(*pair) for pair in positions)


def test_pipeline_same_seed_same_first_batches(pipeline_inputs, seeded_dataset):
    # A fresh dataset built with the same seed, here from a prebuilt corpus,
    # yields the same batches.
    documents, tokenizer = pipeline_inputs
    corpus = TokenizedCorpus.build(documents, tokenizer)
    first = batches(make(pipeline_inputs, seed=11), count=3)
    second = batches(make((corpus, tokenizer), seed=11), count=3)
    assert_same_batches(first, second)
    other = batches(seeded_dataset, count=1)
    assert not np.array_equal(first[0][0]["token_ids"], other[0][0]["token_ids"])


@pytest.mark.parametrize("seed", [None, 5])
def test_pipeline_deterministic_eval_repeats_exactly(pipeline_inputs, seed):
    documents, _ = pipeline_inputs
    dataset = make(pipeline_inputs, seed=seed, deterministic_eval=True)
    first, second = batches(dataset), batches(dataset)
    assert len(first) == count_examples(documents) // BATCH
    assert_same_batches(first, second)


def restore_start_sentences(batch):
    """Global (document, sentence) of A's first token, after undoing the masks."""
    x, y, sample_weight = batch
    tokens = x["token_ids"].copy()
    for i in range(len(tokens)):
        real = sample_weight["mlm"][i] == 1.0
        tokens[i, x["mask_positions"][i][real]] = y["mlm"][i][real]
    return [decode(t) for t in tokens[:, 1]]


def test_pipeline_epoch_visits_every_start_sentence_once_in_new_order(pipeline_inputs):
    documents, _ = pipeline_inputs
    dataset = make(
        pipeline_inputs, seed=2, repeat=False, drop_remainder=False, random_next_rate=0.0
    )
    assert dataset.element_spec[0]["token_ids"].shape.as_list() == [None, LENGTH]
    expected = sorted((d, s) for d, doc in enumerate(documents) for s in range(len(doc) - 1))
    epochs = []
    for _ in range(2):
        starts = [start for batch in batches(dataset) for start in restore_start_sentences(batch)]
        assert sorted(starts) == expected
        epochs.append(starts)
    assert epochs[0] != epochs[1]


def test_pipeline_rejects_a_corpus_without_nsp_pairs():
    tokenizer = coded_tokenizer(2)
    with pytest.raises(CorpusError):
        make_bert_pretraining_dataset([["d0s0"], ["d1s0"]], tokenizer, batch_size=2)
