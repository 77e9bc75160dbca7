"""BERT backbone and MLM + NSP pretrainer: sizes, masking, loss formula, tying, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfptlm.models.bert import BERT_SIZES, BertBackbone
from tfptlm.tasks.bert_pretrainer import BertPretrainer

VOCABULARY = 50


def tiny_backbone(**overrides):
    settings = dict(num_layers=2, hidden_dim=32, num_heads=2, intermediate_dim=64,
                    max_sequence_length=16, dropout=0.0)
    settings.update(overrides)
    return BertBackbone(vocabulary_size=VOCABULARY, **settings)


def batch(seed=0, batch_size=3, length=8, predictions=3):
    rng = np.random.default_rng(seed)
    lengths = np.array([8, 6, 4])[:batch_size]
    padding_mask = (np.arange(length)[None, :] < lengths[:, None]).astype("int32")
    token_ids = rng.integers(5, VOCABULARY, (batch_size, length)).astype("int32") * padding_mask
    segment_ids = ((np.arange(length)[None, :] >= lengths[:, None] // 2) * padding_mask).astype("int32")
    x = {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "padding_mask": padding_mask,
        "mask_positions": np.array([[1, 2, 5], [1, 3, 0], [2, 0, 0]], "int32")[:batch_size, :predictions],
    }
    y = {"mlm": rng.integers(5, VOCABULARY, (batch_size, predictions)).astype("int32"),
         "nsp": np.array([0, 1, 1], "int32")[:batch_size]}
    weights = {"mlm": np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0]], "float32")[:batch_size, :predictions],
               "nsp": np.ones(batch_size, "float32")}
    return x, y, weights


def backbone_inputs(x):
    return {k: x[k] for k in ("token_ids", "segment_ids", "padding_mask")}


def test_named_sizes_and_overrides():
    assert BERT_SIZES["tiny"] == dict(num_layers=2, hidden_dim=128, num_heads=2, intermediate_dim=512)
    assert (BERT_SIZES["base"]["num_layers"], BERT_SIZES["base"]["hidden_dim"]) == (12, 768)
    backbone = BertBackbone.from_size("mini", vocabulary_size=VOCABULARY, num_layers=1, hidden_dim=None)
    assert (backbone.num_layers, backbone.hidden_dim, backbone.num_heads) == (1, 256, 4)
    with pytest.raises(ValueError, match="unknown BERT size 'huge'"):
        BertBackbone.from_size("huge", vocabulary_size=VOCABULARY)


def test_backbone_output_shapes_and_pooler():
    backbone = tiny_backbone()
    x, _, _ = batch()
    outputs = backbone(backbone_inputs(x))
    assert outputs["sequence_output"].shape == (3, 8, 32)
    expected_pooled = np.tanh(
        outputs["sequence_output"].numpy()[:, 0] @ backbone.pooler.kernel.numpy()
        + backbone.pooler.bias.numpy()
    )
    np.testing.assert_allclose(outputs["pooled_output"], expected_pooled, atol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_padding_tokens_do_not_change_real_positions(norm_first):
    backbone = tiny_backbone(norm_first=norm_first)
    x, _, _ = batch()
    inputs = backbone_inputs(x)
    changed = dict(inputs, token_ids=np.where(x["padding_mask"] == 1, x["token_ids"], 7))
    before = backbone(inputs)["sequence_output"].numpy()
    after = backbone(changed)["sequence_output"].numpy()
    real = x["padding_mask"].astype(bool)
    np.testing.assert_allclose(before[real], after[real], atol=1e-5)


def test_mlm_head_is_tied_to_the_token_embeddings():
    pretrainer = BertPretrainer(tiny_backbone())
    embedding = pretrainer.backbone.token_embedding.embeddings
    tied = [v for v in pretrainer.weights if v is embedding]
    assert len(tied) == 1  # one shared variable, not a copy
    names = [v.path for v in pretrainer.weights]
    assert not any("output_kernel" in name for name in names)
    # Changing the embedding matrix changes the MLM logits through the output projection.
    x, _, _ = batch()
    before = pretrainer(x)["mlm"].numpy()
    embedding.assign(embedding.numpy() * 2.0)
    assert not np.allclose(before, pretrainer(x)["mlm"].numpy())


def test_loss_is_masked_mlm_mean_plus_nsp_mean():
    pretrainer = BertPretrainer(tiny_backbone())
    pretrainer.compile(optimizer="sgd")
    x, y, weights = batch()
    outputs = pretrainer(x)

    def cross_entropy(logits, labels):
        logits = logits - logits.max(-1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        return -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]

    mlm_ce = cross_entropy(outputs["mlm"].numpy(), y["mlm"])
    mlm_loss = (mlm_ce * weights["mlm"]).sum() / weights["mlm"].sum()
    nsp_loss = cross_entropy(outputs["nsp"].numpy(), y["nsp"]).mean()
    mlm_hits = (outputs["mlm"].numpy().argmax(-1) == y["mlm"]) * weights["mlm"]
    results = pretrainer.evaluate(x, y, sample_weight=weights, return_dict=True, verbose=0)
    assert results["mlm_loss"] == pytest.approx(mlm_loss, rel=1e-5)
    assert results["nsp_loss"] == pytest.approx(nsp_loss, rel=1e-5)
    assert results["loss"] == pytest.approx(mlm_loss + nsp_loss, rel=1e-5)
    assert results["mlm_accuracy"] == pytest.approx(mlm_hits.sum() / weights["mlm"].sum())


def test_padded_predictions_do_not_affect_the_loss():
    pretrainer = BertPretrainer(tiny_backbone())
    pretrainer.compile(optimizer="sgd")
    x, y, weights = batch()
    other_labels = dict(y, mlm=np.where(weights["mlm"] > 0, y["mlm"], 9))
    first = pretrainer.evaluate(x, y, sample_weight=weights, return_dict=True, verbose=0)
    second = pretrainer.evaluate(x, other_labels, sample_weight=weights, return_dict=True, verbose=0)
    assert first["mlm_loss"] == pytest.approx(second["mlm_loss"], rel=1e-6)


def test_pretrainer_learns_a_fixed_batch():
    keras.utils.set_random_seed(0)
    pretrainer = BertPretrainer(tiny_backbone())
    pretrainer.compile(optimizer=keras.optimizers.Adam(3e-3))
    x, y, weights = batch()
    data = tf.data.Dataset.from_tensors((x, y, weights)).repeat()
    history = pretrainer.fit(data, steps_per_epoch=30, epochs=2, shuffle=False, verbose=0).history
    assert history["mlm_loss"][-1] < 0.2 * history["mlm_loss"][0]
    assert history["mlm_accuracy"][-1] == 1.0 and history["nsp_accuracy"][-1] == 1.0


def test_mixed_bfloat16_pretrainer_trains_with_float32_logits():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    pretrainer = BertPretrainer(tiny_backbone())
    pretrainer.compile(optimizer="adam")
    x, y, weights = batch()
    outputs = pretrainer(x)
    assert outputs["mlm"].dtype == "float32" and outputs["nsp"].dtype == "float32"
    assert pretrainer.backbone(backbone_inputs(x))["sequence_output"].dtype == "bfloat16"
    history = pretrainer.fit(x, y, sample_weight=weights, epochs=2, verbose=0).history
    assert np.isfinite(history["loss"]).all()


@pytest.mark.parametrize("norm_first", [False, True])
def test_keras_save_and_load_round_trip(tmp_path, norm_first):
    pretrainer = BertPretrainer(tiny_backbone(norm_first=norm_first))
    x, _, _ = batch()
    pretrainer.save(tmp_path / "pretrainer.keras")
    restored = keras.saving.load_model(tmp_path / "pretrainer.keras")
    for key in ("mlm", "nsp"):
        np.testing.assert_allclose(pretrainer(x)[key], restored(x)[key], atol=1e-6)
    # The reloaded head is still tied to the reloaded backbone's embeddings.
    assert any(v is restored.backbone.token_embedding.embeddings for v in restored.mlm_head.weights)
    clone = BertBackbone.from_config(pretrainer.backbone.get_config())
    assert clone.get_config() == pretrainer.backbone.get_config()


@pytest.mark.parametrize("native_bfloat16, head_dtype", [(False, "float32"), (True, "bfloat16")])
def test_mlm_head_dtype_under_mixed_precision(monkeypatch, native_bfloat16, head_dtype):
    from tfptlm.training import runtime

    monkeypatch.setattr(runtime, "native_bfloat16_matmul", lambda: native_bfloat16)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    pretrainer = BertPretrainer(tiny_backbone())
    assert pretrainer.mlm_head.compute_dtype == head_dtype
    assert pretrainer.backbone.encoder_blocks[0].compute_dtype == "bfloat16"
    x, _, _ = batch()
    assert pretrainer(x)["mlm"].dtype == "float32"
    keras.mixed_precision.set_global_policy("float32")
    assert BertPretrainer(tiny_backbone()).mlm_head.compute_dtype == "float32"


def test_native_bfloat16_matmul_reads_cpu_flags(monkeypatch, tmp_path):
    import builtins

    from tfptlm.training import runtime

    monkeypatch.setattr(runtime, "accelerator_available", lambda: False)
    real_open = builtins.open
    for flags, expected in [("fpu sse avx512f", False), ("fpu amx_bf16 amx_tile", True), ("avx512_bf16", True)]:
        (tmp_path / "cpuinfo").write_text(f"flags\t: {flags}\n")
        monkeypatch.setattr(
            builtins, "open", lambda path, *a, **k: real_open(tmp_path / "cpuinfo", *a, **k)
        )
        assert runtime.native_bfloat16_matmul() is expected
    monkeypatch.setattr(runtime, "accelerator_available", lambda: True)
    assert runtime.native_bfloat16_matmul() is True


def test_jit_compile_auto_follows_device(monkeypatch):
    from tfptlm.training import runtime

    monkeypatch.setattr(runtime, "accelerator_available", lambda: False)
    assert runtime.resolve_jit_compile("auto") is False
    assert runtime.resolve_jit_compile(True) is True
    monkeypatch.setattr(runtime, "accelerator_available", lambda: True)
    assert runtime.resolve_jit_compile("auto") is True
    assert runtime.resolve_jit_compile(False) is False
    with pytest.raises(ValueError, match="auto, true or false"):
        runtime.resolve_jit_compile("sometimes")
