"""Tests for the WordPiece tokenizer, its pre-tokenizer and its trainer."""

import json

import pytest
import tensorflow as tf

from tfptlm.tokenizers import WordPieceTokenizer, train_wordpiece_vocabulary
from tfptlm.tokenizers.normalization import pretokenize

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = SPECIALS + [
    "un",  # 5
    "##aff",  # 6
    "##able",  # 7
    "!",  # 8
    ",",  # 9
    "hello",  # 10
    "world",  # 11
    "Hello",  # 12
    "cafe",  # 13
    "café",  # 14
    "我",  # 15
    "爱",  # 16
    "nl",  # 17
    "##p",  # 18
    "'",  # 19
    "s",  # 20
]


@pytest.fixture(scope="module")
def tokenizer():
    return WordPieceTokenizer(VOCAB)


def ids(tokenizer, text):
    return tokenizer.tokenize(text).numpy().tolist()


# -- pre-tokenization and tokenization with a hand-made vocabulary ----------


def test_word_pieces(tokenizer):
    assert ids(tokenizer, "unaffable") == [5, 6, 7]
    assert tokenizer.vocabulary_size == len(VOCAB)
    assert tokenizer.id_to_token(6) == "##aff"
    assert tokenizer.token_to_id("##able") == 7


def test_unknown_word_becomes_unk(tokenizer):
    assert ids(tokenizer, "hello zzz") == [10, 1]


def test_punctuation_is_split(tokenizer):
    assert ids(tokenizer, "hello,world!") == [10, 9, 11, 8]
    assert ids(tokenizer, "world's") == [11, 19, 20]


def test_lowercasing_on_and_off():
    assert ids(WordPieceTokenizer(VOCAB), "Hello HELLO") == [10, 10]
    cased = WordPieceTokenizer(VOCAB, lowercase=False)
    assert ids(cased, "Hello hello HELLO") == [12, 10, 1]


def test_accent_stripping_on_and_off():
    assert ids(WordPieceTokenizer(VOCAB), "Café") == [13]
    keep_accents = WordPieceTokenizer(VOCAB, strip_accents=False)
    assert ids(keep_accents, "Café") == [14]
    # Decomposed input (e + combining accent) is NFC-normalized first.
    assert ids(keep_accents, "Cafe\u0301") == [14]


def test_cjk_characters_are_single_tokens(tokenizer):
    assert ids(tokenizer, "我爱NLP") == [15, 16, 17, 18]
    words = pretokenize(["我爱NLP，好"]).to_list()[0]
    assert [w.decode() for w in words] == ["我", "爱", "nlp", "，", "好"]


def test_control_characters_and_whitespace():
    words = pretokenize(["a\x00b\u200b c\td\u3000e\n"]).to_list()[0]
    assert words == [b"ab", b"c", b"d", b"e"]


def test_empty_string_gives_empty_row(tokenizer):
    result = tokenizer(["", "hello"])
    assert isinstance(result, tf.RaggedTensor)
    assert result.dtype == tf.int32
    assert result.to_list() == [[], [10]]
    assert ids(tokenizer, "") == []


def test_scalar_list_and_tensor_inputs(tokenizer):
    assert tokenizer("hello").shape.rank == 1
    assert tokenizer(["hello", "world"]).to_list() == [[10], [11]]
    assert tokenizer(tf.constant(["hello"])).to_list() == [[10]]


def test_detokenize(tokenizer):
    text = tokenizer.detokenize(tokenizer("Unaffable, world!")).numpy()
    assert text == b"unaffable , world !"
    padded = tf.constant([[5, 6, 7, 0, 0], [10, 11, 0, 0, 0]])
    assert tokenizer.detokenize(padded).numpy().tolist() == [
        b"unaffable",
        b"hello world",
    ]
    assert tokenizer.detokenize([10, 11]).numpy() == b"hello world"


def test_lookup_errors_name_the_token(tokenizer):
    with pytest.raises(ValueError, match="nope"):
        tokenizer.token_to_id("nope")
    with pytest.raises(ValueError, match="999"):
        tokenizer.id_to_token(999)


def test_special_token_ids(tokenizer):
    assert tokenizer.special_token_ids == [0, 1, 2, 3, 4]
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.mask_id) == (0, 1, 4)


# -- graphs -------------------------------------------------------------------


def test_inside_tf_data_map(tokenizer):
    dataset = tf.data.Dataset.from_tensor_slices(["unaffable!", "我爱NLP", ""])
    dataset = dataset.batch(3).map(tokenizer)
    (batch,) = list(dataset)
    assert batch.to_list() == [[5, 6, 7, 8], [15, 16, 17, 18], []]
    # Unbatched elements (scalars) work too.
    single = tf.data.Dataset.from_tensor_slices(["hello world"]).map(tokenizer)
    assert [x.numpy().tolist() for x in single] == [[10, 11]]


def test_inside_tf_function(tokenizer):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize_and_pad(texts):
        return tokenizer(texts).to_tensor(default_value=tokenizer.pad_id)

    result = tokenize_and_pad(tf.constant(["unaffable", "hello world !"]))
    assert result.numpy().tolist() == [[5, 6, 7], [10, 11, 8]]


def test_saved_model_round_trip(tokenizer, tmp_path):
    module = tf.Module()
    module.tokenizer = tokenizer
    module.tokenize = tf.function(
        lambda texts: tokenizer(texts).to_tensor(),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    tf.saved_model.save(module, str(tmp_path / "saved"))
    restored = tf.saved_model.load(str(tmp_path / "saved"))
    result = restored.tokenize(tf.constant(["unaffable", "我爱NLP"]))
    assert result.numpy().tolist() == [[5, 6, 7, 0], [15, 16, 17, 18]]


# -- training -----------------------------------------------------------------

ENGLISH = (
    "The quick brown fox jumps over the lazy dog.\n"
    "The dog sleeps, the fox runs quickly!\n"
    "A quick brown dog and a lazy fox.\n"
) * 30


@pytest.fixture(scope="module")
def english_corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "english.txt"
    path.write_text(ENGLISH, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained_vocab(english_corpus):
    return train_wordpiece_vocabulary(
        str(english_corpus), vocab_size=200, show_progress=False
    )


def test_trained_vocab_starts_with_specials_and_has_frequent_words(trained_vocab):
    assert trained_vocab[:5] == SPECIALS
    assert len(trained_vocab) <= 200
    assert len(set(trained_vocab)) == len(trained_vocab)
    for word in ["the", "fox", "dog", "quick", "lazy", "."]:
        assert word in trained_vocab


def test_trained_tokenizer_round_trips(trained_vocab):
    tokenizer = WordPieceTokenizer(trained_vocab)
    text = "The lazy fox, the quick dog!"
    token_ids = tokenizer(text)
    assert tokenizer.unk_id not in token_ids.numpy().tolist()
    words = pretokenize(text).numpy().tolist()
    assert tokenizer.detokenize(token_ids).numpy() == b" ".join(words)


def test_training_on_a_glob_and_a_list(english_corpus, tmp_path):
    (tmp_path / "a.txt").write_text("alpha beta\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("gamma beta\n", encoding="utf-8")
    vocab = train_wordpiece_vocabulary(
        str(tmp_path / "*.txt"), vocab_size=100, show_progress=False
    )
    assert {"alpha", "beta", "gamma"} <= set(vocab)
    vocab = train_wordpiece_vocabulary(
        [tmp_path / "a.txt", english_corpus], 100, show_progress=False  # Paths
    )
    assert {"alpha", "the"} <= set(vocab)


def test_training_chinese_gives_single_characters(tmp_path):
    path = tmp_path / "zh.txt"
    path.write_text("我爱自然语言处理。\n自然语言很有趣！\n" * 5, encoding="utf-8")
    vocab = train_wordpiece_vocabulary(str(path), 100, show_progress=False)
    assert vocab[:5] == SPECIALS
    assert {"我", "爱", "自", "然", "语", "言", "。"} <= set(vocab)
    assert "自然" not in vocab  # every CJK ideograph is its own word
    tokenizer = WordPieceTokenizer(vocab)
    assert tokenizer.id_to_token(int(tokenizer("我")[0])) == "我"
    assert len(tokenizer("自然语言").numpy()) == 4


def test_training_cased_keeps_case(tmp_path):
    path = tmp_path / "cased.txt"
    path.write_text("Paris Paris Paris paris Café\n", encoding="utf-8")
    vocab = train_wordpiece_vocabulary(
        str(path), 60, lowercase=False, strip_accents=False, show_progress=False
    )
    assert {"Paris", "paris", "é"} <= set(vocab)


# -- save / load --------------------------------------------------------------


def test_save_load_round_trip(tmp_path):
    original = WordPieceTokenizer(VOCAB, lowercase=False, strip_accents=False)
    original.save(tmp_path / "tok")  # a pathlib.Path works too
    config = json.loads((tmp_path / "tok" / "tokenizer.json").read_text())
    assert config["type"] == "wordpiece" and config["lowercase"] is False
    vocab_lines = (tmp_path / "tok" / "vocab.txt").read_text("utf-8").splitlines()
    assert vocab_lines == VOCAB

    restored = WordPieceTokenizer.load(str(tmp_path / "tok"))
    texts = ["Hello Café, unaffable!", "我爱NLP", ""]
    assert restored(texts).to_list() == original(texts).to_list()
    assert restored.get_config() == original.get_config()


def hf_vocab():
    """A Hugging Face BERT style vocabulary: [PAD]=0, [UNK]=100, ..."""
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)]
    vocab += ["[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "Hello"]
    return vocab


def test_hugging_face_vocab_special_ids(tmp_path):
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(hf_vocab()) + "\n", "utf-8")
    tokenizer = WordPieceTokenizer.load(str(folder))
    assert tokenizer.special_token_ids == [0, 100, 101, 102, 103]
    assert (tokenizer.cls_id, tokenizer.sep_id) == (101, 102)
    assert tokenizer("Hello world zzz").numpy().tolist() == [104, 105, 100]
    # do_lower_case from a Hugging Face tokenizer_config.json is honoured.
    (folder / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    cased = WordPieceTokenizer.load(str(folder))
    assert cased.lowercase is False and cased.strip_accents is False
    assert cased("Hello").numpy().tolist() == [106]


def test_hugging_face_tokenizer_json_is_not_mistaken_for_ours(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(hf_vocab()) + "\n", "utf-8")
    hf_json = {
        "version": "1.0",
        "normalizer": {"type": "BertNormalizer", "lowercase": False},
        "model": {"type": "WordPiece"},
    }
    (tmp_path / "tokenizer.json").write_text(json.dumps(hf_json))
    assert WordPieceTokenizer.load(str(tmp_path)).lowercase is False


def test_load_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        WordPieceTokenizer.load(str(tmp_path))


# -- errors -------------------------------------------------------------------


def test_missing_file_and_unmatched_glob_are_named(tmp_path):
    pattern = str(tmp_path / "nothing_*.txt")
    with pytest.raises(FileNotFoundError, match="nothing_"):
        train_wordpiece_vocabulary(pattern, 100, show_progress=False)
    missing = str(tmp_path / "missing.txt")
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        train_wordpiece_vocabulary([missing], 100, show_progress=False)


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"good line\nanother\nbad \xff\xfe byte\n")
    with pytest.raises(ValueError, match=r"bad\.txt, line 3"):
        train_wordpiece_vocabulary(str(path), 100, show_progress=False)


def test_empty_corpus(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n   \n\t\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no text"):
        train_wordpiece_vocabulary(str(path), 100, show_progress=False)


def test_vocab_missing_mask_token():
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        WordPieceTokenizer(SPECIALS[:4] + ["hello"])


def test_duplicate_token_names_token_and_lines(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(SPECIALS + ["hello", "world", "hello"]) + "\n")
    with pytest.raises(ValueError, match=r"'hello'.*lines 6 and 8"):
        WordPieceTokenizer(str(path))
