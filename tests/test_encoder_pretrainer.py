"""BertPretrainer on every encoder: NSP (BERT), SOP (ALBERT) or MLM alone (RoBERTa), keras-hub too."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfptlm.models import AlbertBackbone, BertBackbone, RobertaBackbone
from tfptlm.tasks.bert_pretrainer import BertPretrainer

V, H, E = 60, 32, 16
TINY = dict(num_layers=2, num_heads=2, hidden_dim=H, intermediate_dim=64, max_sequence_length=16,
            dropout=0.0)


def backbone(family, seed=0):
    keras.utils.set_random_seed(seed)
    if family == "bert":
        return BertBackbone(vocabulary_size=V, **TINY)
    if family == "albert":
        return AlbertBackbone(vocabulary_size=V, embedding_dim=E, **TINY)
    if family == "roberta":
        return RobertaBackbone(vocabulary_size=V, **TINY)
    from tfptlm.models.hub import hub_backbone_from_config

    extra = dict(embedding_dim=E) if family == "hub_albert" else {}
    return hub_backbone_from_config(family.removeprefix("hub_"), vocabulary_size=V, **TINY, **extra)


def batch(objective, seed=0):
    """Inputs, labels and weights of 3 examples with 3, 2 and 1 real predictions."""
    rng = np.random.default_rng(seed)
    lengths = np.array([8, 6, 4])
    padding_mask = (np.arange(8)[None, :] < lengths[:, None]).astype("int32")
    token_ids = rng.integers(5, V, (3, 8)).astype("int32") * padding_mask
    segment_ids = ((np.arange(8)[None, :] >= lengths[:, None] // 2) * padding_mask).astype("int32")
    x = {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask,
         "mask_positions": np.array([[1, 2, 5], [1, 3, 0], [2, 0, 0]], "int32")}
    y = {"mlm": rng.integers(5, V, (3, 3)).astype("int32")}
    weights = {"mlm": np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0]], "float32")}
    if objective is not None:
        y[objective] = np.array([0, 1, 1], "int32")
        weights[objective] = np.ones(3, "float32")
    return x, y, weights


def cross_entropy(logits, labels):
    logits = logits - logits.max(-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]


def numpy_outputs(model, x):
    return {k: keras.ops.convert_to_numpy(v) for k, v in model(x).items()}


@pytest.mark.parametrize("family, objective", [("bert", "nsp"), ("albert", "sop"), ("roberta", None)])
def test_outputs_losses_and_metric_names(family, objective):
    pretrainer = BertPretrainer(backbone(family), sentence_objective=objective)
    pretrainer.compile(optimizer="sgd")
    x, y, weights = batch(objective)
    outputs = numpy_outputs(pretrainer, x)
    assert set(outputs) == {"mlm"} | ({objective} if objective else set())
    assert outputs["mlm"].shape == (3, 3, V) and outputs["mlm"].dtype == "float32"

    mlm_loss = (cross_entropy(outputs["mlm"], y["mlm"]) * weights["mlm"]).sum() / weights["mlm"].sum()
    hits = (outputs["mlm"].argmax(-1) == y["mlm"]) * weights["mlm"]
    results = pretrainer.evaluate(x, y, sample_weight=weights, return_dict=True, verbose=0)
    expected_names = {"loss", "mlm_loss", "mlm_accuracy"}
    sentence_loss = 0.0
    if objective is not None:
        assert outputs[objective].shape == (3, 2)
        sentence_loss = cross_entropy(outputs[objective], y[objective]).mean()
        expected_names |= {f"{objective}_loss", f"{objective}_accuracy"}
        assert results[f"{objective}_loss"] == pytest.approx(sentence_loss, rel=1e-5)
    assert set(results) == expected_names
    assert results["mlm_loss"] == pytest.approx(mlm_loss, rel=1e-5)
    assert results["loss"] == pytest.approx(mlm_loss + sentence_loss, rel=1e-5)
    assert results["mlm_accuracy"] == pytest.approx(hits.sum() / weights["mlm"].sum())


def test_albert_mlm_head_ties_the_narrow_embedding():
    pretrainer = BertPretrainer(backbone("albert"), sentence_objective="sop")
    embedding = pretrainer.backbone.token_embedding.embeddings
    assert tuple(embedding.shape) == (V, E)
    assert tuple(pretrainer.mlm_head.transform_dense.kernel.shape) == (H, E)  # H -> E, then E @ W^T
    assert len([v for v in pretrainer.weights if v is embedding]) == 1
    assert not any("output_kernel" in v.path for v in pretrainer.weights)
    assert pretrainer.sentence_head.name == "sop_head"


def test_mlm_only_pretrainer_has_no_sentence_head_and_ignores_segments():
    pretrainer = BertPretrainer(backbone("roberta"), sentence_objective=None)
    assert pretrainer.sentence_head is None
    x, _, _ = batch(None)
    other = dict(x, segment_ids=np.ones_like(x["segment_ids"]))
    np.testing.assert_array_equal(numpy_outputs(pretrainer, x)["mlm"], numpy_outputs(pretrainer, other)["mlm"])


def test_bad_sentence_objective_is_refused():
    with pytest.raises(ValueError, match="sentence_objective must be one of"):
        BertPretrainer(backbone("bert"), sentence_objective="next_sentence")


def test_configs_saved_before_sentence_objectives_mean_nsp():
    pretrainer = BertPretrainer(backbone("bert"))
    config = pretrainer.get_config()
    assert config["sentence_objective"] == "nsp"
    del config["sentence_objective"]  # what a pretrainer saved before this option holds
    restored = BertPretrainer.from_config(config)
    assert restored.sentence_objective == "nsp" and set(restored.output) == {"mlm", "nsp"}
    assert restored.sentence_head.name == "nsp_head"


@pytest.mark.parametrize("family, objective", [("bert", "nsp"), ("albert", "sop"), ("roberta", None)])
def test_keras_round_trip(family, objective, tmp_path):
    pretrainer = BertPretrainer(backbone(family), sentence_objective=objective)
    x, _, _ = batch(objective)
    pretrainer.save(tmp_path / "pretrainer.keras")
    restored = keras.saving.load_model(tmp_path / "pretrainer.keras")
    assert restored.sentence_objective == objective
    expected = numpy_outputs(pretrainer, x)
    for key, value in numpy_outputs(restored, x).items():
        np.testing.assert_allclose(value, expected[key], atol=1e-6)
    assert any(v is restored.backbone.token_embedding.embeddings for v in restored.mlm_head.weights)


def first_and_last_loss(pretrainer, objective, steps=30):
    """Metrics on the fixed batch before and after `steps` Adam steps on it."""
    x, y, weights = batch(objective)
    pretrainer.compile(optimizer=keras.optimizers.Adam(1e-2))
    first = pretrainer.evaluate(x, y, sample_weight=weights, return_dict=True, verbose=0)
    data = tf.data.Dataset.from_tensors((x, y, weights)).repeat()
    pretrainer.fit(data, steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0)
    last = pretrainer.evaluate(x, y, sample_weight=weights, return_dict=True, verbose=0)
    return first, last


@pytest.mark.parametrize("family, objective", [("albert", "sop"), ("roberta", None)])
def test_tfptlm_backbones_learn_a_fixed_batch(family, objective):
    pretrainer = BertPretrainer(backbone(family), sentence_objective=objective)
    first, last = first_and_last_loss(pretrainer, objective)
    assert last["mlm_loss"] < 0.2 * first["mlm_loss"]
    assert last["mlm_accuracy"] == 1.0
    if objective is not None:
        assert last[f"{objective}_accuracy"] == 1.0


@pytest.mark.parametrize("family, objective", [
    ("hub_albert", "sop"), ("hub_bert", "nsp"), ("hub_roberta", None),
])
def test_keras_hub_backbones_pretrain(family, objective):
    hub = backbone(family)
    pretrainer = BertPretrainer(hub, sentence_objective=objective)
    # The MLM head is tied to the keras-hub token embedding ([V, E] for ALBERT).
    embedding = hub.token_embedding.embeddings
    assert tuple(embedding.shape) == (V, E if family == "hub_albert" else H)
    assert len([v for v in pretrainer.weights if v is embedding]) == 1
    first, last = first_and_last_loss(pretrainer, objective)
    assert last["mlm_loss"] < 0.2 * first["mlm_loss"]
    if objective is not None:
        assert last[f"{objective}_accuracy"] == 1.0


def test_keras_hub_pretrainer_round_trip(tmp_path):
    pretrainer = BertPretrainer(backbone("hub_albert"), sentence_objective="sop")
    x, _, _ = batch("sop")
    pretrainer.save(tmp_path / "pretrainer.keras")
    restored = keras.saving.load_model(tmp_path / "pretrainer.keras")
    expected = numpy_outputs(pretrainer, x)
    for key, value in numpy_outputs(restored, x).items():
        np.testing.assert_allclose(value, expected[key], atol=1e-6)
