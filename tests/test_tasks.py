"""Tests for the fine-tuning task models: heads, losses, raw-string answers, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfptlm.data.classification_inputs import TextClassificationPreprocessor
from tfptlm.data.token_classification_inputs import TokenClassificationPreprocessor
from tfptlm.models.bert import BertBackbone
from tfptlm.models.loading import load_keras_model
from tfptlm.tasks.question_answerer import QuestionAnswerer, answer_text, best_spans
from tfptlm.tasks.text_classifier import TextClassifier
from tfptlm.tasks.token_classifier import TokenClassifier
from tfptlm.tokenizers import WordPieceTokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + "the cat sat on mat angela merkel spoke in paris . re ##jects".split()


@pytest.fixture(scope="module")
def tokenizer():
    return WordPieceTokenizer(VOCAB)


def tiny_backbone(seed=0):
    keras.utils.set_random_seed(seed)
    return BertBackbone(
        vocabulary_size=len(VOCAB), num_layers=2, num_heads=2, hidden_dim=32,
        intermediate_dim=64, max_sequence_length=32, dropout=0.0,
    )


def inputs_for(tokenizer, texts, length=16):
    return TextClassificationPreprocessor(tokenizer, length)(texts, pad_to_batch=False)


def test_text_classifier_shapes_labels_and_round_trip(tokenizer, tmp_path):
    classifier = TextClassifier(tiny_backbone(), ["neg", "neutral", "pos"])
    classifier.preprocessor = TextClassificationPreprocessor(tokenizer, 16)
    inputs = inputs_for(tokenizer, ["the cat sat", "angela spoke in paris ."])
    logits = classifier(inputs)
    assert logits.shape == (2, 3) and logits.dtype == "float32"
    results = classifier.classify(["the cat sat", "angela spoke in paris ."])
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    for result, row in zip(results, probabilities):
        assert result["label"] == ["neg", "neutral", "pos"][row.argmax()]
        assert result["score"] == pytest.approx(row.max(), abs=1e-6)
        assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    classifier.save(tmp_path / "model.keras")
    restored = load_keras_model(tmp_path / "model.keras")
    assert restored.label_names == ["neg", "neutral", "pos"]
    np.testing.assert_allclose(restored(inputs), logits, atol=1e-6)


def test_text_classifier_needs_two_labels():
    with pytest.raises(ValueError, match="at least 2 labels"):
        TextClassifier(tiny_backbone(), ["only"])


def test_raw_text_needs_a_preprocessor():
    with pytest.raises(ValueError, match="preprocessor"):
        TextClassifier(tiny_backbone(), ["a", "b"]).classify(["x"])


def test_token_classifier_loss_counts_only_first_pieces(tokenizer):
    tagger = TokenClassifier(tiny_backbone(), ["O", "B-PER", "I-PER", "B-LOC"], dropout=0.0)
    tagger.compile(optimizer="sgd")
    features = TokenClassificationPreprocessor(tokenizer, 16)(
        tf.ragged.constant([["angela", "merkel", "rejects"], ["paris"]]),
        tf.ragged.constant([[1, 2, 0], [3]]),
    )
    x = {k: features[k] for k in ("token_ids", "segment_ids", "padding_mask")}
    labels, weights = features["labels"].numpy(), features["first_piece"].numpy()
    logits = keras.ops.convert_to_numpy(tagger(x))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    expected = -(picked * weights).sum() / weights.sum()  # 4 words, 4 first pieces
    assert weights.sum() == 4
    loss = tagger.evaluate(x, labels, sample_weight=weights, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(expected, rel=1e-5)


def test_token_classifier_tags_words_and_finds_entities(tokenizer):
    tagger = TokenClassifier(tiny_backbone(), ["O", "B-PER", "I-PER"])
    tagger.preprocessor = TokenClassificationPreprocessor(tokenizer, 16)
    tags = tagger.tag_words([["angela", "merkel", "spoke"], []])
    assert [len(t) for t in tags] == [3, 0]
    assert {tag for t in tags for tag in t} <= {"O", "B-PER", "I-PER"}
    # Force a known answer: a head that always says B-PER, then I-PER never.
    kernel, bias = tagger.output_dense.get_weights()
    tagger.output_dense.set_weights([np.zeros_like(kernel), np.array([0.0, 5.0, 0.0], "float32")])
    entities = tagger.find_entities(["Ängela  Merkel!"])
    assert entities == [[
        {"type": "PER", "text": "Ängela", "start": 0, "end": 6},
        {"type": "PER", "text": "Merkel", "start": 8, "end": 14},
        {"type": "PER", "text": "!", "start": 14, "end": 15},
    ]]


def test_question_answerer_masks_padding_and_round_trips(tokenizer, tmp_path):
    reader = QuestionAnswerer(tiny_backbone())
    inputs = inputs_for(tokenizer, ["the cat", "the cat sat on the mat"])
    outputs = reader(inputs)
    padding = inputs["padding_mask"].numpy() == 0
    assert outputs["start"].shape == (2, 16)
    assert np.all(keras.ops.convert_to_numpy(outputs["start"])[padding] <= -1e8)
    assert np.all(keras.ops.convert_to_numpy(outputs["end"])[~padding] > -1e8)
    reader.save(tmp_path / "reader.keras")
    restored = load_keras_model(tmp_path / "reader.keras")
    np.testing.assert_allclose(restored(inputs)["end"], outputs["end"], atol=1e-6)


def test_best_spans_picks_the_best_allowed_context_span():
    starts = np.array([[-1, -1, 0, 4, 9, 13]])
    ends = np.array([[-1, -1, 3, 8, 12, 16]])
    start_logits = np.array([[9.0, 0.0, 1.0, 3.0, 0.0, 0.0]])  # position 0 is not context
    end_logits = np.array([[9.0, 0.0, 2.0, 0.0, 0.0, 4.0]])
    # context positions 2-5; best: start 3 (3.0) + end 5 (4.0) = 7, bytes 4..16
    assert best_spans(start_logits, end_logits, starts, ends, 30) == [(7.0, 4, 16)]
    # at most 2 tokens: (2,2)=3, (2,3)=1, (3,3)=3, (3,4)=3, (4,4)=0, (4,5)=4, (5,5)=4 -> first best (4, 5)
    assert best_spans(start_logits, end_logits, starts, ends, 2) == [(4.0, 9, 16)]
    nothing = best_spans(start_logits, end_logits, -np.ones_like(starts), ends, 30)
    assert nothing[0][0] == -np.inf


def test_answer_text_converts_bytes_to_characters():
    context = "Ünïcode café in Paris"
    start = len("Ünïcode café in ".encode())
    answer = answer_text(context, 3.5, start, start + len(b"Paris"))
    assert answer == {"text": "Paris", "start": 16, "end": 21, "score": 3.5}
    assert context[answer["start"] : answer["end"]] == "Paris"


def test_a_keras_hub_backbone_stands_in_for_bert(tokenizer, tmp_path):
    from tfptlm.models.hub import hub_backbone_from_config

    backbone = hub_backbone_from_config(
        "roberta", vocabulary_size=len(VOCAB), num_layers=2, num_heads=2,
        hidden_dim=32, intermediate_dim=64, max_sequence_length=32,
    )
    classifier = TextClassifier(backbone, ["a", "b"])
    inputs = inputs_for(tokenizer, ["the cat sat"])
    logits = classifier(inputs)
    classifier.save(tmp_path / "hub.keras")
    np.testing.assert_allclose(load_keras_model(tmp_path / "hub.keras")(inputs), logits, atol=1e-6)


def test_classifier_handles_no_texts_and_traces_its_preprocessor_once(tokenizer):
    classifier = TextClassifier(tiny_backbone(), ["a", "b"])
    classifier.preprocessor = TextClassificationPreprocessor(tokenizer, 16)
    assert classifier.predict_probabilities([]).shape == (0, 2)
    classifier.predict_probabilities(["the cat", "sat on the mat"], batch_size=1)
    pack = classifier._packing_function(1)
    classifier.predict_probabilities(["angela spoke"] * 5, batch_size=2)
    assert classifier._packing_function(1) is pack
    assert pack.experimental_get_tracing_count() == 1
