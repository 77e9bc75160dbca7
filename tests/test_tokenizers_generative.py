"""Tests for the SentencePiece and byte-level BPE tokenizers and the common loader."""

import json
import random

import pytest
import tensorflow as tf

from tfptlm.tokenizers import (
    BytePairTokenizer,
    SentencePieceTokenizer,
    WordPieceTokenizer,
    load_tokenizer,
    train_byte_bpe,
    train_sentencepiece,
    train_tokenizer,
)

SPECIALS = ["<pad>", "</s>", "<unk>", "<s>", "<mask>"]
NUM_SENTINELS = 10
WORDS = (
    "the a quick brown fox jumps over lazy dog cat runs walks fast slow red blue "
    "green model data learning language text token piece sentence word reads "
    "writes small big house tree river city night day"
).split()
CHINESE = "我爱自然语言处理今天天气很好学习机器模型数据中文分词测试句子我们他们"
ENGLISH_TEXTS = ["the quick brown fox jumps over the lazy dog.", "Small models read text, fast!"]
# No full-width forms: SentencePiece's default NFKC normalization would fold them.
CHINESE_TEXTS = ["我爱自然语言处理。", "今天天气很好、我们学习中文分词。"]


def write_corpus(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """An English file and a Chinese file: a few hundred short generated lines."""
    rng = random.Random(0)
    folder = tmp_path_factory.mktemp("corpus")
    english = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 10))).capitalize()
        + rng.choice([".", "!", "?", ","])
        for _ in range(300)
    ] + ENGLISH_TEXTS
    def clause():
        return "".join(rng.choice(CHINESE) for _ in range(rng.randint(3, 8)))

    chinese = [clause() + rng.choice("，、") + clause() + "。" for _ in range(200)]
    write_corpus(folder / "english.txt", english)
    write_corpus(folder / "chinese.txt", chinese)
    return folder


@pytest.fixture(scope="module")
def spm_tokenizer(corpus):
    return train_sentencepiece(str(corpus / "*.txt"), 300, num_sentinels=NUM_SENTINELS)


@pytest.fixture(scope="module")
def bpe_tokenizer(corpus):
    files = [str(corpus / "english.txt"), str(corpus / "chinese.txt")]
    return train_byte_bpe(files, 400, num_sentinels=NUM_SENTINELS, show_progress=False)


@pytest.fixture(params=["sentencepiece", "byte_bpe"])
def tokenizer(request, spm_tokenizer, bpe_tokenizer):
    return {"sentencepiece": spm_tokenizer, "byte_bpe": bpe_tokenizer}[request.param]


def round_trip(tokenizer, texts):
    return [t.decode("utf-8") for t in tokenizer.detokenize(tokenizer.tokenize(texts)).numpy()]


# -- special ids and vocabulary ----------------------------------------------


def test_special_id_layout(tokenizer):
    assert [tokenizer.id_to_token(i) for i in range(5)] == SPECIALS
    assert (tokenizer.pad_id, tokenizer.eos_id, tokenizer.unk_id) == (0, 1, 2)
    assert (tokenizer.bos_id, tokenizer.mask_id) == (3, 4)
    assert tokenizer.sentinel_ids == list(range(5, 5 + NUM_SENTINELS))
    assert tokenizer.id_to_token(5) == "<extra_id_0>"
    assert tokenizer.token_to_id(f"<extra_id_{NUM_SENTINELS - 1}>") == 4 + NUM_SENTINELS
    assert tokenizer.special_token_ids == list(range(5 + NUM_SENTINELS))
    assert 100 < tokenizer.vocabulary_size <= 400


def test_lookup_errors(tokenizer):
    with pytest.raises(ValueError, match="out of range"):
        tokenizer.id_to_token(tokenizer.vocabulary_size)
    with pytest.raises(ValueError, match="'no such token'"):
        tokenizer.token_to_id("no such token")


# -- tokenization and round trips ---------------------------------------------


def test_round_trip_english_and_chinese(tokenizer):
    texts = ENGLISH_TEXTS + CHINESE_TEXTS + ["我爱 data 学习", ""]
    ids = tokenizer.tokenize(texts)
    assert isinstance(ids, tf.RaggedTensor) and ids.dtype == tf.int32
    assert ids.to_list()[-1] == []
    assert round_trip(tokenizer, texts) == texts


def test_single_string_and_one_dimensional_ids(tokenizer):
    ids = tokenizer.tokenize(ENGLISH_TEXTS[0])
    assert ids.shape.rank == 1 and ids.dtype == tf.int32
    assert ids.numpy().tolist() == tokenizer.tokenize(ENGLISH_TEXTS[:1]).to_list()[0]
    assert tokenizer.detokenize(ids).numpy().decode() == ENGLISH_TEXTS[0]
    assert tokenizer.detokenize(ids.numpy().tolist()).numpy().decode() == ENGLISH_TEXTS[0]


def test_detokenize_skips_pad_bos_eos_in_dense_and_ragged_ids(tokenizer):
    ids = tokenizer.tokenize(CHINESE_TEXTS)
    framed = tf.concat(
        [tf.fill([2, 1], tokenizer.bos_id), ids, tf.fill([2, 1], tokenizer.eos_id)], axis=1
    )
    dense = framed.to_tensor(default_value=tokenizer.pad_id)
    for batch in (framed, dense, dense.numpy().tolist()):
        assert [t.decode() for t in tokenizer.detokenize(batch).numpy()] == CHINESE_TEXTS


def test_sentencepiece_chinese_has_no_unknowns(spm_tokenizer):
    ids = spm_tokenizer.tokenize(CHINESE_TEXTS).flat_values.numpy().tolist()
    assert spm_tokenizer.unk_id not in ids


def test_sentencepiece_normalization(corpus):
    text = "今天，我们学习"
    default = train_sentencepiece(str(corpus / "chinese.txt"), 150, num_sentinels=0)
    assert round_trip(default, [text]) == ["今天,我们学习"]
    identity = train_sentencepiece(
        str(corpus / "chinese.txt"), 150, num_sentinels=0, normalization="identity"
    )
    assert round_trip(identity, [text]) == [text]
    with pytest.raises(ValueError, match="lowercase"):
        train_sentencepiece(str(corpus / "chinese.txt"), 150, normalization="identity",
                            lowercase=True)


def test_sentencepiece_bpe_model_lowercased(corpus):
    tokenizer = train_sentencepiece(
        str(corpus / "english.txt"), 200, model_type="bpe", num_sentinels=0, lowercase=True
    )
    assert tokenizer.get_config()["model_type"] == "bpe"
    assert tokenizer.sentinel_ids == []
    assert round_trip(tokenizer, ["The Quick Fox"]) == ["the quick fox"]


def test_byte_bpe_round_trips_any_utf8(bpe_tokenizer):
    texts = ["emoji 😀👍🏽 ok", "  spaces\tand\nnewlines  ", "ünïcödé ½ 𝔘 \u200b", "日本語テキスト"]
    ids = bpe_tokenizer.tokenize(texts)
    assert bpe_tokenizer.unk_id not in ids.flat_values.numpy().tolist()
    assert round_trip(bpe_tokenizer, texts) == texts


def test_byte_bpe_matches_hugging_face(corpus, bpe_tokenizer, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    bpe_tokenizer.save(tmp_path)
    reference = Tokenizer(
        models.BPE.from_file(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    )
    reference.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    lines = (corpus / "english.txt").read_text(encoding="utf-8").splitlines()[:50]
    texts = lines + CHINESE_TEXTS + ["it's 2024, isn't it?  Yes!!", "emoji 😀"]
    expected = [encoding.ids for encoding in reference.encode_batch(texts)]
    assert bpe_tokenizer.tokenize(texts).to_list() == expected


# -- graphs ----------------------------------------------------------------------


def test_inside_tf_data_map(tokenizer):
    texts = ENGLISH_TEXTS + CHINESE_TEXTS
    expected = tokenizer.tokenize(texts).to_list()
    batched = tf.data.Dataset.from_tensor_slices(texts).batch(4).map(tokenizer.tokenize)
    assert next(iter(batched)).to_list() == expected
    single = tf.data.Dataset.from_tensor_slices(texts).map(tokenizer.tokenize)
    assert [x.numpy().tolist() for x in single] == expected


def test_saved_model_round_trip(tokenizer, tmp_path):
    def round_trip_ids(texts):
        ids = tokenizer.tokenize(texts).to_tensor(default_value=tokenizer.pad_id)
        return ids, tokenizer.detokenize(ids)

    module = tf.Module()
    module.tokenizer = tokenizer
    module.round_trip = tf.function(
        round_trip_ids, input_signature=[tf.TensorSpec([None], tf.string)]
    )
    tf.saved_model.save(module, str(tmp_path / "saved"))
    restored = tf.saved_model.load(str(tmp_path / "saved"))
    texts = ENGLISH_TEXTS + CHINESE_TEXTS
    ids, detokenized = restored.round_trip(tf.constant(texts))
    expected = tokenizer.tokenize(texts).to_tensor(default_value=tokenizer.pad_id)
    assert ids.numpy().tolist() == expected.numpy().tolist()
    assert [t.decode() for t in detokenized.numpy()] == texts


# -- save / load -----------------------------------------------------------------


def test_sentencepiece_save_load(spm_tokenizer, tmp_path):
    spm_tokenizer.save(tmp_path / "tok")
    config = json.loads((tmp_path / "tok" / "tokenizer.json").read_text())
    assert config["type"] == "sentencepiece"
    assert config["num_sentinels"] == NUM_SENTINELS and config["model_type"] == "unigram"
    assert (tmp_path / "tok" / "spm.model").is_file()
    texts = ENGLISH_TEXTS + CHINESE_TEXTS
    for restored in (
        SentencePieceTokenizer.load(tmp_path / "tok"),
        load_tokenizer(tmp_path / "tok"),
    ):
        assert isinstance(restored, SentencePieceTokenizer)
        assert restored.tokenize(texts).to_list() == spm_tokenizer.tokenize(texts).to_list()
        assert restored.get_config() == spm_tokenizer.get_config()


def test_byte_bpe_save_load(bpe_tokenizer, tmp_path):
    bpe_tokenizer.save(tmp_path / "tok")
    config = json.loads((tmp_path / "tok" / "tokenizer.json").read_text())
    assert config["type"] == "byte_bpe"
    texts = ENGLISH_TEXTS + CHINESE_TEXTS
    restored = BytePairTokenizer.load(tmp_path / "tok")
    assert restored.tokenize(texts).to_list() == bpe_tokenizer.tokenize(texts).to_list()
    # Without tokenizer.json the kind is guessed from vocab.json + merges.txt.
    (tmp_path / "tok" / "tokenizer.json").unlink()
    guessed = load_tokenizer(tmp_path / "tok")
    assert isinstance(guessed, BytePairTokenizer)
    assert guessed.special_token_ids == bpe_tokenizer.special_token_ids


def test_load_tokenizer_dispatches_wordpiece(tmp_path):
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world"]
    WordPieceTokenizer(vocabulary).save(tmp_path / "saved")
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "vocab.txt").write_text("\n".join(vocabulary) + "\n")
    for folder in ("saved", "bare"):
        tokenizer = load_tokenizer(tmp_path / folder)
        assert isinstance(tokenizer, WordPieceTokenizer)
        assert tokenizer.tokenize("hello world").numpy().tolist() == [5, 6]
        assert (tokenizer.bos_id, tokenizer.eos_id) == (tokenizer.cls_id, tokenizer.sep_id)
        assert tokenizer.sentinel_ids == []


def test_load_tokenizer_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="empty_dir"):
        (tmp_path / "empty_dir").mkdir()
        load_tokenizer(tmp_path / "empty_dir")
    with pytest.raises(FileNotFoundError, match="not_there"):
        load_tokenizer(tmp_path / "not_there")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "tokenizer.json").write_text('{"type": "morse"}')
    with pytest.raises(ValueError, match="'morse'"):
        load_tokenizer(tmp_path / "odd")
    with pytest.raises(FileNotFoundError, match="spm.model"):
        SentencePieceTokenizer.load(tmp_path / "empty_dir")
    with pytest.raises(FileNotFoundError, match="vocab.json or merges.txt"):
        BytePairTokenizer.load(tmp_path / "empty_dir")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "spm.model").write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"broken/spm\.model is not a valid"):
        load_tokenizer(tmp_path / "broken")


# -- train_tokenizer and errors --------------------------------------------------


def test_train_tokenizer_kinds(corpus):
    files = str(corpus / "english.txt")
    wordpiece = train_tokenizer("wordpiece", files, 150, lowercase=False, show_progress=False)
    assert isinstance(wordpiece, WordPieceTokenizer) and wordpiece.lowercase is False
    spm = train_tokenizer("sentencepiece", files, 120, num_sentinels=2)
    assert isinstance(spm, SentencePieceTokenizer) and spm.sentinel_ids == [5, 6]
    with pytest.raises(ValueError, match="'unigramm'"):
        train_tokenizer("sentencepiece", files, 150, model_type="unigramm")
    with pytest.raises(ValueError, match="Unknown tokenizer kind 'bpe'"):
        train_tokenizer("bpe", files, 150)
    with pytest.raises(TypeError, match="num_sentinels"):
        train_tokenizer("wordpiece", files, 150, num_sentinels=3)


@pytest.mark.parametrize("kind", ["sentencepiece", "byte_bpe"])
def test_training_errors_name_the_files(kind, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        train_tokenizer(kind, str(tmp_path / "missing.txt"), 400, num_sentinels=0)
    with pytest.raises(FileNotFoundError, match="nothing_"):
        train_tokenizer(kind, str(tmp_path / "nothing_*.txt"), 400, num_sentinels=0)
    empty = write_corpus(tmp_path / "empty.txt", ["", "   ", "\t"])
    with pytest.raises(ValueError, match="no text"):
        train_tokenizer(kind, empty, 400, num_sentinels=0)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"good line\nbad \xff byte\n")
    with pytest.raises(ValueError, match=r"bad\.txt, line 2"):
        train_tokenizer(kind, str(bad), 400, num_sentinels=0)
    with pytest.raises(ValueError, match="vocab_size=100"):
        train_tokenizer(kind, empty, 100, num_sentinels=100)


def test_sentencepiece_vocabulary_too_large_for_corpus_gives_fewer_pieces(tmp_path):
    path = write_corpus(tmp_path / "tiny.txt", ["a b c", "b c d"])
    tokenizer = train_sentencepiece(path, 5000, num_sentinels=0)
    assert 5 < tokenizer.vocabulary_size < 50
    assert tokenizer.detokenize(tokenizer.tokenize(["b c d"])).numpy()[0] == b"b c d"


def test_byte_bpe_vocabulary_without_special_tokens():
    with pytest.raises(ValueError, match="'<pad>'"):
        BytePairTokenizer({"a": 0, "b": 1, "ab": 2}, ["a b"])
