"""TFLite export: a text classifier's .tflite takes raw strings (tokenizer inside) and answers like Keras."""

import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfptlm.cli import main
from tfptlm.config import FinetuneDataConfig
from tfptlm.data.packing import pack_segments
from tfptlm.export.tflite import (
    TFLiteClassifier,
    TokenInputsWarning,
    _float32_model,
    export_tflite,
    pack_inputs,
    run_tflite,
    run_tokens,
)
from tfptlm.export.tflite_tokenizer import _darts_lookup, build_darts_trie, tflite_tokenizer
from tfptlm.finetuning.run import RECIPES, load_finetuned, save_finetuned
from tfptlm.models.bert import BertBackbone
from tfptlm.tasks import TextClassifier, TokenClassifier
from tfptlm.tokenizers import WordPieceTokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (
    "the a film was great dull cast sang bad good movie ##s ##ing ##ed . , ? ! ' ，"
    " 北 京 中 国 好 不 é e ß ss fi ##ne bob"
).split() + list("bcdfhijklmnopqrtuvwxyz")
LONG = "the film was great " * 25_000  # 100,000 characters
STRINGS = [
    "the film was great .",
    "dull , bad movie !",
    "",
    "   \t\n ",
    LONG,
    "emoji 🎬🍿 and é accents, Crème Brûlée",
    "control\x00\x07chars\u200b here",
    "混合 scripts 北京 中国 Москва，好不好",
    "ＦＵＬＬ-width ﬁne Straße don't…",
]


def make_model_dir(directory, task="text_classification", **data):
    keras.utils.set_random_seed(1)
    backbone = BertBackbone(vocabulary_size=len(VOCAB), num_layers=2, num_heads=2, hidden_dim=32,
                            intermediate_dim=64, max_sequence_length=64)
    if task == "text_classification":
        model = TextClassifier(backbone, ["negative", "neutral", "positive"])
        # Spread the logits so that the labels are clear-cut, not near-ties.
        kernel = model.get_layer("logits").kernel
        kernel.assign(kernel * 50.0)
    else:
        model = TokenClassifier(backbone, ["O", "B-PER", "I-PER"])
    save_finetuned(model, WordPieceTokenizer(VOCAB), RECIPES[task],
                   FinetuneDataConfig(sequence_length=32, **data), directory)
    return directory


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    base = tmp_path_factory.mktemp("tflite")
    model_dir = make_model_dir(base / "classifier")
    path = export_tflite(model_dir, base / "export")
    return load_finetuned(model_dir), path


# -- tokenizer -------------------------------------------------------------


def test_darts_trie_round_trip():
    rng = np.random.default_rng(0)
    keys = sorted({chr(int(c)).encode() for c in rng.integers(1, 0x10FFFF, 3000) if not 0xD800 <= c < 0xE000})
    values = [0x40000000 | i for i in range(len(keys))]
    units = build_darts_trie(keys, values)
    assert [_darts_lookup(units, key) for key in keys] == values
    assert _darts_lookup(units, "not a key".encode()) == 0


@pytest.mark.parametrize("lowercase, strip_accents", [(True, True), (False, False)])
def test_tflite_tokenizer_tokenizes_like_wordpiece(lowercase, strip_accents):
    tokenizer = WordPieceTokenizer(
        VOCAB + ["É", "Ｆ", "ﬁ"], lowercase=lowercase, strip_accents=strip_accents
    )
    texts = STRINGS + [
        "\ufffdx\ue000y\u00a0z\u3000w\x85v\u2028u",  # U+FFFD, private use, odd spaces, NEL
        "É é ǅ Ⅻ ＦＵＬＬ ﬁ ß İ Σ",  # NFKC-only changes stay as BERT has them
        "a" * 150,  # longer than max_chars_per_word
    ]
    expected = tokenizer.tokenize(tf.constant(texts)).to_list()
    actual = tflite_tokenizer(tokenizer).tokenize(tf.constant(texts)).to_list()
    assert actual == expected


def test_tflite_tokenizer_known_differences():
    """Rules that look at neighbouring characters cannot be a per-character table (see the docs)."""
    vocab = VOCAB + ["σ", "ς", "##σ", "##ς", "ο", "##ο", "\u0301", "É"]
    for options, text in [((True, True), "ΟΣ"), ((False, False), "e\u0301")]:
        tokenizer = WordPieceTokenizer(vocab, *options)
        expected = tokenizer.tokenize(tf.constant([text])).to_list()
        assert tflite_tokenizer(tokenizer).tokenize(tf.constant([text])).to_list() != expected


# -- packing ----------------------------------------------------------------


@pytest.mark.parametrize("segments", [1, 2])
def test_pack_inputs_matches_pack_segments(segments):
    rng = np.random.default_rng(segments)
    for sequence_length in (8, 13, 32):
        ragged = [
            tf.ragged.constant([list(rng.integers(5, 50, n)) for n in rng.integers(0, 40, 12)], tf.int32)
            for _ in range(segments)
        ]
        expected = pack_segments(ragged, sequence_length, cls_id=2, sep_id=3, pad_id=0, pad_to_batch=True)
        actual = pack_inputs(ragged, sequence_length, cls_id=2, sep_id=3, pad_id=0)
        for name, value in expected.items():
            np.testing.assert_array_equal(actual[name], value, err_msg=f"{name}, length {sequence_length}")


# -- export and runner ---------------------------------------------------------


def test_classifier_takes_raw_strings_and_answers_like_keras(classifier):
    model, path = classifier
    assert path.name == "model.tflite" and path.parent.name == "1"
    assert (path.parent / "labels.txt").read_text().split() == model.label_names
    assert (path.parent / "task.json").is_file() and (path.parent / "tokenizer" / "vocab.txt").is_file()
    metadata = json.loads((path.parent / "tflite.json").read_text())
    assert metadata["raw_strings"] and metadata["inputs"] == ["text"]
    assert metadata["parity"]["label_differences"] == 0
    assert metadata["parity"]["max_abs_difference"] <= 1e-4

    expected = model.predict_probabilities(STRINGS)
    lite = TFLiteClassifier(path.parent)
    actual = lite.predict_probabilities(STRINGS)
    assert actual.shape == (len(STRINGS), 3)
    np.testing.assert_array_equal(actual.argmax(-1), expected.argmax(-1))
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    # One at a time (as a phone runs it) gives the same answers as a batch.
    np.testing.assert_allclose(np.concatenate([run_tflite(path, [s]) for s in STRINGS]), actual, atol=1e-6)
    answers = lite.classify(STRINGS[:2])
    assert [a["label"] for a in answers] == [model.label_names[i] for i in expected[:2].argmax(-1)]
    # The label and score outputs come straight from the .tflite too.
    outputs = lite._runner(text=np.array([s.encode() for s in STRINGS[:2]], dtype=object))
    assert [label.decode() for label in outputs["label"]] == [a["label"] for a in answers]


def test_runner_handles_awkward_input(classifier):
    model, path = classifier
    lite = TFLiteClassifier(path)
    assert lite.predict_probabilities([]).shape == (0, 3)
    # Invalid UTF-8 and lone surrogates are replaced, as the SavedModel export does.
    probabilities = lite.predict_probabilities([b"the film \xff was \xc3 dull", "bad \ud800 film"])
    np.testing.assert_allclose(
        probabilities, model.predict_probabilities(["the film  was  dull", "bad \ufffd film"]), atol=1e-5
    )
    with pytest.raises(ValueError, match="single texts"):
        lite.predict_probabilities(["a"], ["b"])
    with pytest.raises(TypeError):
        lite.predict_probabilities("one string")


def test_quantized_export_is_smaller_through_the_cli(classifier, tmp_path, capsys):
    model, path = classifier
    assert main(["export", "--model", str(path.parents[2] / "classifier"), "--format", "tflite",
                 "--output", str(path.parents[1]), "--quantize", "dynamic_int8"]) == 0
    quantized = path.parents[1] / "2" / "model.tflite"
    assert str(quantized) in capsys.readouterr().out
    assert quantized.stat().st_size < path.stat().st_size
    metadata = json.loads((quantized.parent / "tflite.json").read_text())
    assert metadata["quantize"] == "dynamic_int8"
    assert metadata["parity"]["max_abs_difference"] < 0.1
    probabilities = run_tflite(quantized, STRINGS)
    np.testing.assert_allclose(probabilities, model.predict_probabilities(STRINGS), atol=0.1)
    with pytest.raises(FileExistsError):
        export_tflite(path.parents[2] / "classifier", path.parents[1], version=2)
    with pytest.raises(ValueError, match="quantize"):
        export_tflite(path.parents[2] / "classifier", tmp_path, quantize="int4")


def test_pair_classifier_takes_text_and_text_pair_in_float16(tmp_path):
    model_dir = make_model_dir(tmp_path / "pair", text_pair_column="hypothesis")
    path = export_tflite(model_dir, tmp_path / "export", quantize="float16")
    model = load_finetuned(model_dir)
    assert json.loads((path.parent / "tflite.json").read_text())["inputs"] == ["text", "text_pair"]
    pairs = STRINGS[::-1]
    expected = model.predict_probabilities(STRINGS, pairs)
    actual = run_tflite(path, STRINGS, pairs)
    np.testing.assert_array_equal(actual.argmax(-1), expected.argmax(-1))
    np.testing.assert_allclose(actual, expected, atol=1e-2)
    with pytest.raises(ValueError, match="text pairs"):
        run_tflite(path, STRINGS)


def test_tagger_falls_back_to_token_ids_with_a_clear_message(tmp_path):
    model_dir = make_model_dir(tmp_path / "tagger", task="token_classification")
    with pytest.warns(TokenInputsWarning, match="takes token ids, not raw strings"):
        path = export_tflite(model_dir, tmp_path / "export")
    metadata = json.loads((path.parent / "tflite.json").read_text())
    assert not metadata["raw_strings"] and "tagger" in metadata["token_inputs_reason"]
    assert (path.parent / "labels.txt").read_text().split() == ["O", "B-PER", "I-PER"]
    with pytest.raises(ValueError, match="takes token ids"):
        TFLiteClassifier(path)
    model = load_finetuned(model_dir)
    tokenizer = model.preprocessor.tokenizer
    inputs = pack_segments([tokenizer.tokenize(tf.constant(STRINGS))], 32, tokenizer.cls_id,
                           tokenizer.sep_id, tokenizer.pad_id)
    inputs = {name: value.numpy() for name, value in inputs.items()}
    real = inputs["padding_mask"] > 0
    np.testing.assert_array_equal(
        run_tokens(path, inputs)["tag_ids"][real], np.asarray(model.predict_on_batch(inputs)).argmax(-1)[real]
    )


def test_mixed_precision_models_are_exported_in_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    backbone = BertBackbone(vocabulary_size=len(VOCAB), num_layers=1, num_heads=2, hidden_dim=16,
                            intermediate_dim=32, max_sequence_length=16)
    model = TextClassifier(backbone, ["a", "b"])
    keras.mixed_precision.set_global_policy("float32")
    model.preprocessor = model.recipe = model.data_config = None
    copy = _float32_model(model)
    assert {layer.compute_dtype for layer in copy._flatten_layers()} == {"float32"}
    inputs = {"token_ids": np.array([[2, 7, 3]]), "segment_ids": np.zeros((1, 3), "int32"),
              "padding_mask": np.ones((1, 3), "int32")}
    np.testing.assert_allclose(copy(inputs), model(inputs), atol=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _float32_model(copy) is copy
