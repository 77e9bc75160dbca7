"""Explanations: integrated gradients (completeness, a known answer), attention maps, the HTML page, the CLI."""

import json
import random
import re

import keras
import numpy as np
import pytest

from tfptlm.analysis.attention_maps import attention_maps
from tfptlm.analysis.embedding_path import classifier_logits, word_vectors
from tfptlm.analysis.explain_report import write_explanation
from tfptlm.analysis.explanation import explain, word_groups
from tfptlm.analysis.integrated_gradients import integrated_gradients, quadrature
from tfptlm.cli import main
from tfptlm.config import FinetuneDataConfig
from tfptlm.data.classification_inputs import TextClassificationPreprocessor
from tfptlm.finetuning.run import RECIPES, load_finetuned, save_finetuned
from tfptlm.models.albert import AlbertBackbone
from tfptlm.models.bert import BertBackbone
from tfptlm.models.roberta import RobertaBackbone
from tfptlm.tasks import TextClassifier
from tfptlm.tasks.token_classifier import TokenClassifier
from tfptlm.tokenizers import WordPieceTokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (
    "the film was great superb awful dull and cast sang ran , ##s".split()
)
TEXT = "the film was awful, and the casts ran"


def tiny(backbone_class=BertBackbone, **options):
    keras.utils.set_random_seed(0)
    backbone = backbone_class(vocabulary_size=len(VOCAB), num_layers=2, num_heads=2, hidden_dim=16,
                              intermediate_dim=32, max_sequence_length=32, **options)
    classifier = TextClassifier(backbone, ["neg", "pos"])
    classifier.preprocessor = TextClassificationPreprocessor(WordPieceTokenizer(VOCAB), 16)
    return classifier


def packed(classifier, texts, pairs=None):
    return {name: np.asarray(value) for name, value in classifier.preprocessor(texts, pairs).items()}


@pytest.fixture(scope="module")
def trained():
    """A tiny BERT classifier that learned 'awful'/'dull' = neg, 'great'/'superb' = pos (a few seconds)."""
    classifier = tiny()
    rng = random.Random(0)
    texts = [f"the film was {rng.choice([['awful', 'dull'], ['great', 'superb']][i % 2])}, and the cast "
             f"{rng.choice(['sang', 'ran'])}" for i in range(64)]
    classifier.compile(optimizer=keras.optimizers.Adam(0.003))
    classifier.fit(packed(classifier, texts), np.arange(64) % 2, epochs=10, batch_size=16, verbose=0)
    assert classifier.predict_probabilities([TEXT])[0, 0] > 0.5
    return classifier


@pytest.fixture(scope="module")
def model_dir(trained, tmp_path_factory):
    folder = tmp_path_factory.mktemp("explain") / "classifier"
    save_finetuned(trained, trained.preprocessor.tokenizer, RECIPES["text_classification"],
                   FinetuneDataConfig(sequence_length=16), folder)
    return folder


@pytest.mark.parametrize("backbone_class, options", [
    (BertBackbone, {}), (BertBackbone, {"norm_first": True}), (RobertaBackbone, {}),
    (AlbertBackbone, {"embedding_dim": 8}),
])
def test_the_word_vector_path_gives_the_classifiers_own_logits(backbone_class, options):
    classifier = tiny(backbone_class, **options)
    inputs = packed(classifier, [TEXT, "great"], ["the cast sang", "dull"])
    expected = keras.ops.convert_to_numpy(classifier(inputs))
    vectors = word_vectors(classifier.backbone, inputs["token_ids"])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(classifier_logits(classifier, vectors, inputs)),
                               expected, atol=1e-6)


def test_quadrature_weights_integrate_polynomials():
    for method, steps, exact_degree in (("gauss_legendre", 3, 5), ("riemann_midpoint", 4, 1)):
        points, weights = quadrature(steps, method)
        assert weights.sum() == pytest.approx(1.0)
        assert (weights * points**exact_degree).sum() == pytest.approx(1 / (exact_degree + 1))
    with pytest.raises(ValueError, match="steps must be >= 1"):
        quadrature(0)


@pytest.mark.parametrize("score, method", [("probability", "riemann_midpoint"), ("logit", "riemann_midpoint"),
                                           ("probability", "gauss_legendre")])
def test_attributions_sum_to_the_score_change_and_tighten_with_steps(trained, score, method):
    inputs = packed(trained, [TEXT])
    errors = {steps: integrated_gradients(trained, inputs, steps=steps, score=score, method=method)
              for steps in (8, 32, 128)}
    change = errors[128].score - errors[128].baseline_score
    assert abs(change) > 0.3  # the text is far from the baseline: a real test of completeness
    error = {steps: result.completeness_error for steps, result in errors.items()}
    assert error[128] < 1e-3 * max(1.0, abs(change))
    assert error[128] < error[32] < error[8]
    assert errors[128].attributions.sum() == pytest.approx(change, abs=1e-3)


def test_the_sentiment_word_gets_almost_all_the_attribution(trained):
    result = explain(trained, TEXT, steps=128)
    assert result.label_names[result.target] == "neg" and result.predicted == result.target
    change = result.score - result.baseline_score
    by_word = {w["text"]: w["attribution"] for w in result.words}
    assert by_word["awful"] > 0.9 * change
    special = [i for i, token in enumerate(result.tokens) if token in ("[CLS]", "[SEP]")]
    assert [result.token_attributions[i] for i in special] == [0.0, 0.0]  # kept in the baseline
    assert [w["text"] for w in result.words] == ["[CLS]", "the", "film", "was", "awful", ",", "and", "the",
                                                 "casts", "ran", "[SEP]"]
    casts = next(w for w in result.words if w["text"] == "casts")
    assert [result.tokens[i] for i in casts["tokens"]] == ["cast", "##s"]
    assert casts["attribution"] == pytest.approx(sum(result.token_attributions[i] for i in casts["tokens"]))
    assert sum(result.probabilities) == pytest.approx(1.0)


def test_word_groups_keep_special_tokens_apart():
    tokenizer = WordPieceTokenizer(VOCAB)
    ids = [tokenizer.token_to_id(t) for t in "[CLS] cast ##s [SEP] ##s ran [SEP]".split()]
    assert word_groups(ids, tokenizer) == [[0], [1, 2], [3], [4], [5], [6]]


def reference_attention(x, attention, padding_mask, heads):
    """softmax(Q K^T / sqrt(d)) with padding keys masked, in NumPy from the layer's kernels."""
    def project(dense):
        return (x @ dense.kernel.numpy() + dense.bias.numpy()).reshape(*x.shape[:2], heads, -1).transpose(0, 2, 1, 3)
    q, k = project(attention.query_dense), project(attention.key_dense)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1])
    scores = np.where(padding_mask[:, None, None, :] == 1, scores, -np.inf)
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    return scores / scores.sum(-1, keepdims=True)


def layer_norm(x, layer):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + layer.epsilon) * layer.gamma.numpy() + layer.beta.numpy()


@pytest.mark.parametrize("norm_first", [False, True])
def test_attention_maps_match_a_numpy_softmax_and_ignore_padding(norm_first):
    classifier = tiny(norm_first=norm_first)
    backbone = classifier.backbone
    inputs = packed(classifier, [TEXT, "great"])  # the second row is padded
    maps = attention_maps(backbone, inputs)
    assert maps.shape == (2, 2, 2, 16, 16)  # [layers, batch, heads, query, key]
    x = keras.ops.convert_to_numpy(backbone._embed(inputs))
    for layer, block in enumerate(backbone.encoder_blocks):
        queries = layer_norm(x, block.self_attention_layer_norm) if norm_first else x
        expected = reference_attention(queries, block.self_attention, inputs["padding_mask"], 2)
        np.testing.assert_allclose(maps[layer], expected, atol=1e-5)
        x = keras.ops.convert_to_numpy(block(x, padding_mask=inputs["padding_mask"]))
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-5)
    padding = inputs["padding_mask"] == 0
    assert padding.sum(1).tolist() == [4, 13]
    for row in range(2):
        assert (maps[:, row, :, :, padding[row]] == 0).all()


def test_the_html_page_is_self_contained_and_shows_every_token(trained, tmp_path):
    result = explain(trained, TEXT + " <b>", text_pair="great", steps=16)
    paths = write_explanation(result, tmp_path)
    assert [p.name for p in paths] == ["explanation.json", "attention_layer_1.png", "attention_layer_2.png",
                                       "explanation.html"]
    assert paths[1].read_bytes()[:4] == b"\x89PNG"
    page = paths[-1].read_text(encoding="utf-8")
    assert re.findall(r'src="([^"]{0,22})', page) == ["data:image/png;base64,"] * 2
    markup = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert not re.search(r"https?:|//[a-z]|url\(|<link|<script|@import", markup)
    assert page.count("<b>") == 2 and "awful, and the casts ran &lt;b&gt;" in page  # the text is escaped
    for token in result.tokens:
        assert f">{token}</span>" in page
    assert result.tokens.count("[SEP]") == 2 and "neg" in page and "pos" in page


def test_cli_explain_end_to_end_and_its_errors(model_dir, tmp_path, capsys):
    out = tmp_path / "explanations"
    assert main(["explain", "--model", str(model_dir), TEXT, "--steps", "64", "--output", str(out)]) == 0
    report = json.loads((out / "explanation.json").read_text(encoding="utf-8"))
    assert report["target_label"] == report["predicted_label"] == "neg"
    assert report["completeness_error"] < 1e-2
    assert np.asarray(report["attention"]).shape == (2, 2, 12, 12)
    printed = capsys.readouterr().out
    assert "prediction: neg" in printed and "explanation.html" in printed

    assert main(["explain", "--model", str(model_dir), TEXT, "--target", "pos", "--output", str(out)]) == 0
    assert json.loads((out / "explanation.json").read_text())["target_label"] == "pos"

    capsys.readouterr()
    assert main(["explain", "--model", str(model_dir), TEXT, "--target", "happy", "--output", str(out)]) == 1
    assert "--target 'happy' is not one of the model's labels: neg, pos" in capsys.readouterr().err

    assert main(["explain", "--model", str(tmp_path), TEXT]) == 1
    assert "is not a fine-tuned model directory" in capsys.readouterr().err

    tagger_dir = tmp_path / "tagger"
    tokenizer = WordPieceTokenizer(VOCAB)
    save_finetuned(TokenClassifier(tiny().backbone, ["O", "B-X"]), tokenizer, RECIPES["token_classification"],
                   FinetuneDataConfig(sequence_length=16), tagger_dir)
    loaded = load_finetuned(tagger_dir)
    with pytest.raises(ValueError, match="explanations are for text classifiers.*TokenClassifier"):
        explain(loaded, TEXT)
    assert main(["explain", "--model", str(tagger_dir), TEXT, "--output", str(out)]) == 1
    assert "explanations are for text classifiers" in capsys.readouterr().err
