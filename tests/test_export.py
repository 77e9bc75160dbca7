"""SavedModel export: raw strings in, the Keras model's answers out, in a process with only TF."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfptlm.cli import main
from tfptlm.config import FinetuneDataConfig
from tfptlm.export import export_saved_model
from tfptlm.export.saved_model import next_version
from tfptlm.finetuning.run import RECIPES, load_finetuned, save_finetuned
from tfptlm.models.bert import BertBackbone
from tfptlm.tasks import QuestionAnswerer, TextClassifier, TokenClassifier
from tfptlm.tokenizers import WordPieceTokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (
    "the a film was great dull cast sang where does alice live in paris rome . , ? ! "
    "北 京 中 国 bob visited today é"
).split()
LONG = "the film was great " * 25_000  # 100,000 characters
AWKWARD = [
    "the film was great .",
    "",
    "   \t\n ",
    LONG,
    "emoji 🎬🍿 and é accents",
    "control\x00\x07chars\u200b",
    "混合 scripts 北京 中国 Москва",
]
INVALID_UTF8 = b"the film \xff\xfe was \xc3 dull"


def make_task_dir(directory, task, **data):
    keras.utils.set_random_seed(1)
    backbone = BertBackbone(vocabulary_size=len(VOCAB), num_layers=2, num_heads=2, hidden_dim=32,
                            intermediate_dim=64, max_sequence_length=64)
    model = {
        "text_classification": lambda: TextClassifier(backbone, ["negative", "neutral", "positive"]),
        "token_classification": lambda: TokenClassifier(backbone, ["O", "B-PER", "I-PER", "B-LOC"]),
        "question_answering": lambda: QuestionAnswerer(backbone),
    }[task]()
    save_finetuned(model, WordPieceTokenizer(VOCAB), RECIPES[task],
                   FinetuneDataConfig(sequence_length=32, **data), directory)
    return directory


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    base = tmp_path_factory.mktemp("export")
    made = {}
    for name, task, data in [
        ("classifier", "text_classification", {}),
        ("pairs", "text_classification", {"text_pair_column": "b"}),
        ("tagger", "token_classification", {}),
        ("reader", "question_answering", {"doc_stride": 8, "max_question_length": 8}),
    ]:
        model_dir = make_task_dir(base / name, task, **data)
        export = export_saved_model(model_dir, base / f"{name}_export", check=name == "classifier")
        made[name] = (model_dir, export)
    return made


@pytest.fixture(scope="module")
def tensorflow_only_answers(exports):
    """What each export answers in one fresh process that imports only TF and tensorflow_text."""
    requests = {
        "classifier": {"text": AWKWARD + [INVALID_UTF8]},
        "tagger": {"text": TAGGER_TEXTS},
        "reader": {"question": QUESTIONS, "context": CONTEXTS},
    }
    return run_with_tensorflow_only({name: (exports[name][1], inputs) for name, inputs in requests.items()})


TAGGER_TEXTS = ["bob visited paris today .", "", "é北京 bob", LONG[:2000]]
QUESTIONS = ["where does alice live ?", "where ?", "", "where"]
CONTEXTS = ["alice does live in paris . bob visited rome today .", "", "paris", LONG[:3000]]

_SCRIPT = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops, as TF Serving does)

def plain(value):
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value.decode("utf-8") if isinstance(value, bytes) else value

answers = {}
for name, (path, inputs) in json.loads(sys.stdin.read()).items():
    serve = tf.saved_model.load(path).signatures["serving_default"]
    inputs = {k: tf.constant([bytes.fromhex(s) for s in v]) for k, v in inputs.items()}
    answers[name] = {k: plain(v.numpy().tolist()) for k, v in serve(**inputs).items()}
assert not [m for m in sys.modules if m.startswith("tfptlm")], "tfptlm was imported"
print(json.dumps(answers))
"""


def run_with_tensorflow_only(requests):
    """Runs serving_default of each export in a fresh process with only tensorflow and tensorflow_text."""
    encoded = {
        name: (str(path), {k: [s.encode("utf-8").hex() if isinstance(s, str) else s.hex() for s in v]
                           for k, v in inputs.items()})
        for name, (path, inputs) in requests.items()
    }
    result = subprocess.run([sys.executable, "-c", _SCRIPT], input=json.dumps(encoded),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_classifier_answers_like_keras_in_a_tensorflow_only_process(exports, tensorflow_only_answers):
    model_dir, export_path = exports["classifier"]
    assert export_path.name == "1" and (export_path / "assets" / "vocab.txt").is_file()
    assert (export_path / "assets.extra" / "task.json").is_file()
    texts = AWKWARD + [INVALID_UTF8]
    out = tensorflow_only_answers["classifier"]
    model = load_finetuned(model_dir)
    cleaned = [t if isinstance(t, str) else t.decode("utf-8", errors="replace") for t in texts]
    expected = model.predict_probabilities(cleaned)
    np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
    assert out["label"] == [model.label_names[i] for i in expected.argmax(-1)]
    np.testing.assert_allclose(out["score"], expected.max(-1), atol=1e-5)


def test_pair_classifier_takes_text_and_text_pair(exports):
    model_dir, export_path = exports["pairs"]
    serve = tf.saved_model.load(str(export_path)).signatures["serving_default"]
    assert set(serve.structured_input_signature[1]) == {"text", "text_pair"}
    out = serve(text=tf.constant(["the film", ""]), text_pair=tf.constant(["was great", "dull"]))
    expected = load_finetuned(model_dir).predict_probabilities(["the film", ""], ["was great", "dull"])
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)


def test_token_signature_matches_the_string_signature(exports):
    model_dir, export_path = exports["classifier"]
    loaded = tf.saved_model.load(str(export_path))
    model = load_finetuned(model_dir)
    inputs = model.preprocessor(tf.constant(["the film was great ."]))
    by_tokens = loaded.signatures["serve_tokens"](**inputs)
    by_text = loaded.signatures["serving_default"](text=tf.constant(["the film was great ."]))
    np.testing.assert_allclose(by_tokens["probabilities"], by_text["probabilities"], atol=1e-6)
    tokenized = loaded.signatures["tokenize"](text=tf.constant(["the film was great ."]))
    np.testing.assert_array_equal(tokenized["token_ids"], inputs["token_ids"])
    assert [t.decode() for t in tokenized["tokens"].numpy()[0][:7]] == [
        "[CLS]", "the", "film", "was", "great", ".", "[SEP]"]
    with pytest.raises((TypeError, ValueError)):
        loaded.signatures["serving_default"](sentence=tf.constant(["x"]))
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        loaded.signatures["serving_default"](text=tf.constant([1, 2]))


def test_tagger_returns_word_tags_with_character_offsets(exports, tensorflow_only_answers):
    model_dir, _ = exports["tagger"]
    texts = TAGGER_TEXTS
    out = tensorflow_only_answers["tagger"]
    model = load_finetuned(model_dir)
    for text, words, tags, starts, ends in zip(texts, out["words"], out["tags"], out["starts"], out["ends"]):
        count = sum(1 for w in words if w)
        assert [text[s:e] for s, e in zip(starts[:count], ends[:count])] == words[:count]
        keras_tags = model.tag_words([words[:count]])[0]
        assert tags[:count] == keras_tags
    assert out["words"][2][:3] == ["é", "北", "京"] and out["starts"][2][:3] == [0, 1, 2]


def test_reader_returns_the_same_span_as_keras(exports, tensorflow_only_answers):
    model_dir, _ = exports["reader"]
    questions, contexts = QUESTIONS, CONTEXTS
    out = tensorflow_only_answers["reader"]
    model = load_finetuned(model_dir)
    expected = model.answer(questions, contexts, max_answer_length=model.data_config.max_answer_length)
    assert out["answer"] == [a["text"] for a in expected]
    assert out["start"] == [a["start"] for a in expected]
    for context, answer, start, end in zip(contexts, out["answer"], out["start"], out["end"]):
        assert context[start:end] == answer


def test_versions_and_cli(exports, tmp_path, capsys):
    model_dir, _ = exports["classifier"]
    assert main(["export", "--model", str(model_dir), "--output", str(tmp_path)]) == 0
    assert (tmp_path / "1" / "saved_model.pb").is_file()
    with pytest.raises(FileExistsError):
        export_saved_model(model_dir, tmp_path, version=1)
    (tmp_path / "7").mkdir()
    (tmp_path / "notes").mkdir()
    assert next_version(tmp_path) == 8
    assert main(["export", "--model", str(tmp_path / "missing"), "--output", str(tmp_path)]) == 1
    assert "missing" in capsys.readouterr().err


def test_saved_model_cli_runs_the_export_with_tensorflow_text_loaded(exports):
    _, export_path = exports["classifier"]
    script = ("import sys, tensorflow_text; from tensorflow.python.tools.saved_model_cli import main; "
              "sys.argv = ['saved_model_cli'] + sys.argv[1:]; main()")
    result = subprocess.run(
        [sys.executable, "-c", script, "run", "--dir", str(export_path), "--tag_set", "serve",
         "--signature_def", "serving_default", "--input_exprs", 'text=["the film was great", ""]'],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Result for output key label" in result.stdout and "Result for output key probabilities" in result.stdout


def test_pretrained_bert_exports_masked_word_fill_in(tmp_path):
    from test_pretrain_cli import pretrain_args, write_corpus

    from tfptlm.models.loading import load_keras_model

    run = tmp_path / "pretrained"
    assert main(pretrain_args(write_corpus(tmp_path / "corpus.txt"), run, 2)) == 0
    export_path = export_saved_model(run, tmp_path / "exports")
    serve = tf.saved_model.load(str(export_path)).signatures["serving_default"]
    out = serve(text=tf.constant(["alpha [MASK] gamma [MASK]", "no marks here"]))
    assert out["tokens"].shape == (2, 2, 5)
    assert not any(out["tokens"].numpy()[1].ravel()) and not out["scores"].numpy()[1].any()

    tokenizer = WordPieceTokenizer.load(run / "tokenizer")
    ids = ([tokenizer.cls_id] + tokenizer.tokenize("alpha").numpy().tolist() + [tokenizer.mask_id]
           + tokenizer.tokenize("gamma").numpy().tolist() + [tokenizer.mask_id, tokenizer.sep_id])
    positions = [i for i, t in enumerate(ids) if t == tokenizer.mask_id]
    logits = load_keras_model(run / "pretrainer.keras")({
        "token_ids": np.array([ids], "int32"), "segment_ids": np.zeros((1, len(ids)), "int32"),
        "padding_mask": np.ones((1, len(ids)), "int32"), "mask_positions": np.array([positions], "int32"),
    })["mlm"]
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits))[0]
    for mark in range(2):
        best = np.argsort(-probabilities[mark])[:5]
        assert [t.decode() for t in out["tokens"].numpy()[0, mark]] == [tokenizer.vocabulary[i] for i in best]
        np.testing.assert_allclose(out["scores"].numpy()[0, mark], probabilities[mark][best], atol=1e-5)


def test_weights_are_stored_once(exports):
    model_dir, export_path = exports["classifier"]
    weights = sum(int(np.prod(w.shape)) for w in load_finetuned(model_dir).weights)
    stored = tf.train.load_checkpoint(str(export_path / "variables" / "variables"))
    values = sum(int(np.prod(s)) for s in stored.get_variable_to_shape_map().values())
    assert weights <= values < weights * 1.01
