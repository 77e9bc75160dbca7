"""CausalLM and Seq2SeqLM: outputs, weighted token loss vs NumPy, saving, and living next to other tasks."""

import keras
import numpy as np
import pytest

from tfptlm.models.bart import BartBackbone
from tfptlm.models.bert import BertBackbone
from tfptlm.models.gpt import GPTBackbone
from tfptlm.finetuning.generative import token_loss_and_accuracy
from tfptlm.tasks import BertPretrainer, CausalLM, Seq2SeqLM

VOCAB = 30
SIZES = dict(num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, dropout=0.0)


def causal_batch(rng):
    token_ids = rng.integers(2, VOCAB, (2, 6)).astype("int32")
    padding_mask = np.array([[1] * 6, [1] * 4 + [0] * 2], "int32")
    labels = rng.integers(2, VOCAB, (2, 6)).astype("int32")
    return {"token_ids": token_ids, "padding_mask": padding_mask}, labels, padding_mask.astype("float32")


def seq2seq_batch(rng):
    features = {
        "encoder_token_ids": rng.integers(2, VOCAB, (2, 5)).astype("int32"),
        "encoder_padding_mask": np.array([[1] * 5, [1] * 3 + [0] * 2], "int32"),
        "decoder_token_ids": rng.integers(2, VOCAB, (2, 4)).astype("int32"),
        "decoder_padding_mask": np.array([[1] * 4, [1] * 2 + [0] * 2], "int32"),
    }
    labels = rng.integers(2, VOCAB, (2, 4)).astype("int32")
    return features, labels, features["decoder_padding_mask"].astype("float32")


def numpy_token_loss(logits, labels, weights):
    logits = logits - logits.max(-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    return -(picked * weights).sum() / weights.sum()


def make(kind):
    if kind == "causal":
        return CausalLM(GPTBackbone(VOCAB, max_sequence_length=16, **SIZES)), causal_batch
    backbone = BartBackbone(VOCAB, max_sequence_length=16, **SIZES)
    return Seq2SeqLM(backbone, decoder_start_id=1), seq2seq_batch


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_loss_is_the_mean_cross_entropy_over_real_tokens(kind):
    # A functional BERT task first: Keras rewires a Model subclass's bases when it is
    # built functionally, which once broke tasks created after it in the same process.
    BertPretrainer(BertBackbone(VOCAB, **SIZES))
    model, batch = make(kind)
    features, labels, weights = batch(np.random.default_rng(0))
    model.compile(optimizer="sgd")
    logits = keras.ops.convert_to_numpy(model(features))
    assert logits.shape == labels.shape + (VOCAB,) and logits.dtype == np.float32
    results = model.evaluate(features, labels, sample_weight=weights, return_dict=True, verbose=0)
    assert results["loss"] == pytest.approx(numpy_token_loss(logits, labels, weights), rel=1e-5)


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
def test_keras_round_trip(tmp_path, kind):
    model, batch = make(kind)
    features, _, _ = batch(np.random.default_rng(1))
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    assert type(restored) is type(model)
    np.testing.assert_allclose(model(features), restored(features), atol=1e-6)
    if kind == "seq2seq":
        assert restored.decoder_start_id == 1


def test_held_out_loss_is_exact_per_token_across_uneven_batches():
    model, batch = make("causal")
    rng = np.random.default_rng(2)
    batches = [batch(rng), batch(rng)]
    batches[1][2][:, 1:] = 0.0  # the second batch has far fewer real tokens
    loss, accuracy = token_loss_and_accuracy(model, batches)
    losses, hits, tokens = 0.0, 0.0, 0.0
    for features, labels, weights in batches:
        logits = keras.ops.convert_to_numpy(model(features))
        losses += numpy_token_loss(logits, labels, weights) * weights.sum()
        hits += ((logits.argmax(-1) == labels) * weights).sum()
        tokens += weights.sum()
    assert loss == pytest.approx(losses / tokens, rel=1e-5)
    assert accuracy == pytest.approx(hits / tokens)
