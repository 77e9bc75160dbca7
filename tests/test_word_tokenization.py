"""Word-level tokenization (`tokenize_words`, `tokenize_with_offsets`) with
SentencePiece and byte-level BPE, and NER / QA fine-tuning with them."""

import json
import random

import pytest
import tensorflow as tf

from tfptlm.cli import main
from tfptlm.tokenizers import train_byte_bpe, train_sentencepiece
from tfptlm.tokenizers.normalization import split_words_with_offsets

WORDS = "new york city paris rome visited alice bob the a quick fox café über naïve".split()
CHINESE = "我爱自然语言处理今天天气很好"
TEXTS = [
    "New York!",
    "  Café über, naïve  fox.",
    "我爱自然语言处理。",
    "Bob visited 天气 :-)",
    "",
]
SPACE = {"sentencepiece": "\u2581", "byte_bpe": "\u0120"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = random.Random(0)
    lines = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))).capitalize() + rng.choice(".!,")
        for _ in range(200)
    ]
    lines += ["".join(rng.choice(CHINESE) for _ in range(6)) + "。" for _ in range(60)]
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def tokenizers(corpus):
    return {
        "sentencepiece": train_sentencepiece(corpus, 200, num_sentinels=2),
        "byte_bpe": train_byte_bpe(corpus, 400, num_sentinels=2, show_progress=False),
    }


@pytest.fixture(params=["sentencepiece", "byte_bpe"])
def kind(request):
    return request.param


def single_word_ids(tokenizer, kind, word):
    """The reference: a word tokenized alone, after a space for byte-level BPE."""
    text = " " + word if kind == "byte_bpe" and word else word
    return tokenizer.tokenize(text).numpy().tolist()


def decode(tokenizer, kind, ids):
    """Text of `ids`, without the word's leading space (byte-level BPE)."""
    text = tokenizer.detokenize(tf.constant(ids, tf.int32)).numpy().decode("utf-8")
    if kind == "byte_bpe":
        assert text.startswith(" "), text
        return text[1:]
    return text


# -- tokenize_words ------------------------------------------------------------


def test_tokenize_words_shapes_and_empty_row(tokenizers, kind):
    tokenizer = tokenizers[kind]
    pieces = tokenizer.tokenize_words([["New", "York", "!"], []])
    assert isinstance(pieces, tf.RaggedTensor) and pieces.dtype == tf.int32
    assert pieces.ragged_rank == 2 and pieces.shape[0] == 2
    assert pieces.row_lengths().numpy().tolist() == [3, 0]
    expected = [single_word_ids(tokenizer, kind, w) for w in ["New", "York", "!"]]
    assert pieces.to_list() == [expected, []]
    # Every word starts with the space piece, the first one too.
    for word in pieces.to_list()[0]:
        assert tokenizer.id_to_token(word[0]).startswith(SPACE[kind])
    ragged = tokenizer.tokenize_words(tf.ragged.constant([["New", "York", "!"], []]))
    assert ragged.to_list() == pieces.to_list()
    assert tokenizer.tokenize_words([[]]).to_list() == [[]]


def test_tokenize_words_matches_single_words_and_fills_empty_words(tokenizers, kind):
    tokenizer = tokenizers[kind]
    words = [["😀", "我爱", "", "Café", "naïve"], ["\u200b", "U.S.", "天气"]]
    pieces = tokenizer.tokenize_words(words).to_list()
    assert [len(row) for row in pieces] == [5, 3]
    assert all(len(word) >= 1 for row in pieces for word in row)
    assert pieces[0][2] == [tokenizer.unk_id]  # "" -> one <unk>
    for row_words, row_pieces in zip(words, pieces):
        for word, word_pieces in zip(row_words, row_pieces):
            if word_pieces != [tokenizer.unk_id]:
                assert word_pieces == single_word_ids(tokenizer, kind, word), word


def test_word_pieces_decode_back_to_the_word(tokenizers, kind):
    tokenizer = tokenizers[kind]
    # Byte-level BPE covers every byte; the SentencePiece model only its corpus's characters.
    words = ["New", "York", "!", "café", "über", "naïve", "我爱", "自然语言", "fox."]
    if kind == "byte_bpe":
        words += ["😀", "Ωmega", "x\u200by"]
    for word, word_pieces in zip(words, tokenizer.tokenize_words([words]).to_list()[0]):
        assert decode(tokenizer, kind, word_pieces) == word


def test_byte_bpe_gives_a_lone_word_the_mid_sentence_pieces(tokenizers):
    tokenizer = tokenizers["byte_bpe"]
    sentence = tokenizer.tokenize("bob visited rome").numpy().tolist()
    first, *rest = tokenizer.tokenize_words([["bob", "visited", "rome"]]).to_list()[0]
    # "visited" and "rome" come after a space in the sentence: same pieces.
    rest = sum(rest, [])
    assert sentence[-len(rest):] == rest
    # The first word too gets its pieces after a space, unlike at the start of a text.
    assert first == tokenizer.tokenize(" bob").numpy().tolist()
    assert first != sentence[: len(sentence) - len(rest)]


# -- tokenize_with_offsets -----------------------------------------------------


def test_tokenize_with_offsets_hand_example(tokenizers, kind):
    tokenizer = tokenizers[kind]
    ids, starts, ends = tokenizer.tokenize_with_offsets(["Café 我爱😀!", ""])
    assert ids.dtype == tf.int32 and starts.dtype == tf.int64 and ends.dtype == tf.int64
    assert ids.row_lengths().numpy().tolist() == starts.row_lengths().numpy().tolist()
    assert ids.row_lengths().numpy().tolist() == ends.row_lengths().numpy().tolist()
    assert ids.to_list()[1] == []
    # Words: Café (5 bytes), 我, 爱, 😀 (4 bytes), ! ; each piece carries its word's span.
    spans = [(0, 5), (6, 9), (9, 12), (12, 16), (16, 17)]
    words = ["Café", "我", "爱", "😀", "!"]
    expected_ids, expected_spans = [], []
    for word, span in zip(words, spans):
        word_ids = single_word_ids(tokenizer, kind, word)
        expected_ids += word_ids
        expected_spans += [span] * len(word_ids)
    assert ids.to_list()[0] == expected_ids
    assert list(zip(starts.to_list()[0], ends.to_list()[0])) == expected_spans


def test_offsets_slice_the_original_text_back_to_each_word(tokenizers, kind):
    tokenizer = tokenizers[kind]
    ids, starts, ends = tokenizer.tokenize_with_offsets(TEXTS)
    words, _, _ = split_words_with_offsets(TEXTS)
    for text, row_words, row_ids, row_starts, row_ends in zip(
        TEXTS, words.to_list(), ids.to_list(), starts.to_list(), ends.to_list()
    ):
        encoded = text.encode("utf-8")
        groups = {}  # (start, end) -> ids of that word's pieces, in order
        for token, start, end in zip(row_ids, row_starts, row_ends):
            groups.setdefault((start, end), []).append(token)
        assert [encoded[s:e] for s, e in groups] == row_words
        assert list(groups) == sorted(groups)
        for (start, end), word_ids in groups.items():
            word = encoded[start:end].decode("utf-8")
            assert word_ids == single_word_ids(tokenizer, kind, word)
            if tokenizer.unk_id not in word_ids:
                assert decode(tokenizer, kind, word_ids) == word


def test_both_methods_run_in_tf_data_map(tokenizers, kind):
    tokenizer = tokenizers[kind]
    words = tf.ragged.constant([["New", "York", "!"], [], ["我爱", ""], ["Café"]])
    dataset = tf.data.Dataset.from_tensor_slices(words).ragged_batch(2)
    batches = list(dataset.map(tokenizer.tokenize_words))
    assert [b.to_list() for b in batches] == [
        tokenizer.tokenize_words(words[:2]).to_list(),
        tokenizer.tokenize_words(words[2:]).to_list(),
    ]
    texts = tf.data.Dataset.from_tensor_slices(TEXTS).batch(3)
    mapped = list(texts.map(tokenizer.tokenize_with_offsets))
    eager = [tokenizer.tokenize_with_offsets(TEXTS[:3]), tokenizer.tokenize_with_offsets(TEXTS[3:])]
    for got, want in zip(mapped, eager):
        assert [part.to_list() for part in got] == [part.to_list() for part in want]


# -- fine-tuning end to end ----------------------------------------------------

TINY = [
    "--set", "backbone.config={num_layers: 1, hidden_dim: 32, num_heads: 2, intermediate_dim: 64}",
    "--set", "data.sequence_length=32", "--set", "training.batch_size=16",
    "--set", "training.learning_rate=0.002", "--set", "training.epochs=1",
]


def last_json_line(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_ner_with_byte_bpe_and_roberta(tmp_path, capsys):
    from test_finetune_cli import write_conll

    train, dev = write_conll(tmp_path / "train.txt", 40, 0), write_conll(tmp_path / "dev.txt", 8, 1)
    out = tmp_path / "ner"
    assert main([
        "finetune", *TINY, "--set", "task=token_classification", "--set", "data.tag_scheme=iob1",
        "--set", "tokenizer.type=byte_bpe", "--set", "tokenizer.vocab_size=400",
        "--set", "backbone.family=roberta", "--train-file", str(train), "--eval-file", str(dev),
        "--output-dir", str(out),
    ]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert "entity_f1" in metrics
    assert json.loads((out / "tokenizer" / "tokenizer.json").read_text())["type"] == "byte_bpe"
    capsys.readouterr()
    text = "Bob visited Rome . Alice visited Paris ."
    assert main(["predict", "--model", str(out), text]) == 0
    entities = last_json_line(capsys)["entities"]
    assert entities and {entity["type"] for entity in entities} <= {"PER", "LOC"}
    for entity in entities:
        assert text[entity["start"] : entity["end"]] == entity["text"] != ""


def test_question_answering_with_sentencepiece(tmp_path, capsys):
    from test_finetune_cli import write_squad

    train, dev = write_squad(tmp_path / "train.json", 24, 0), write_squad(tmp_path / "dev.json", 4, 1)
    out = tmp_path / "qa"
    assert main([
        "finetune", *TINY, "--set", "task=question_answering", "--set", "tokenizer.type=sentencepiece",
        "--set", "tokenizer.vocab_size=200", "--train-file", str(train), "--eval-file", str(dev),
        "--set", "data.doc_stride=16", "--set", "data.max_question_length=10", "--output-dir", str(out),
    ]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["questions"] == 4 and metrics["training_windows"] >= 24
    assert json.loads((out / "tokenizer" / "tokenizer.json").read_text())["type"] == "sentencepiece"
    capsys.readouterr()
    context = "Carol lives in Oslo. The weather there is nice and people walk a lot every day."
    assert main(["predict", "--model", str(out), "--question", "Where does the person live?",
                 "--context", context]) == 0
    answer = last_json_line(capsys)
    assert answer["text"] and context[answer["start"] : answer["end"]] == answer["text"]
