"""XLNet: relative attention vs NumPy, two-stream masking, backbone, pretrainer, saving."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_data import coded_documents, coded_tokenizer

from tfptlm.data.objectives.plm import make_plm_dataset, permutation_mask
from tfptlm.layers.relative_attention import (
    RelativeAttention,
    RelativeAttentionBlock,
    RelativePositionEncoding,
)
from tfptlm.models.xlnet import XLNET_SIZES, XLNetBackbone
from tfptlm.tasks import TextClassifier, TokenClassifier
from tfptlm.tasks.xlnet_pretrainer import XLNetPretrainer

VOCABULARY = 60
BACKBONE_KEYS = ("token_ids", "segment_ids", "padding_mask")


def tiny_backbone(**overrides):
    settings = dict(num_layers=2, hidden_dim=32, num_heads=2, intermediate_dim=64,
                    max_sequence_length=16, dropout=0.0)
    settings.update(overrides)
    return XLNetBackbone(vocabulary_size=VOCABULARY, **settings)


def padded_batch(seed=0, length=8):
    """Three rows of 8, 6 and 4 real tokens, two segments each."""
    rng = np.random.default_rng(seed)
    lengths = np.array([8, 6, 4])
    padding_mask = (np.arange(length)[None, :] < lengths[:, None]).astype("int32")
    token_ids = rng.integers(5, VOCABULARY, (3, length)).astype("int32") * padding_mask
    segment_ids = ((np.arange(length)[None, :] >= lengths[:, None] // 2) * padding_mask).astype("int32")
    return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}


# --------------------------------------------------------- NumPy reference


def sinusoids(length, dim):
    distances = np.arange(length - 1, -length, -1, dtype="float64")
    frequencies = 1.0 / 10000 ** (np.arange(0, dim, 2) / dim)
    angles = distances[:, None] * frequencies[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=-1)


def reference_attention(layer, stream, content, positions, segment_ids, allowed):
    """Loops over every (batch, head, query, key): XLNet's score, masked softmax, output."""
    heads, size = layer.num_heads, layer.key_dim
    weights = {name: getattr(layer, name).numpy().astype("float64")
               for name in ("r_w_bias", "r_r_bias", "r_s_bias", "seg_embed")}

    def project(dense, x):
        return (x @ dense.kernel.numpy()).reshape(x.shape[:-1] + (heads, size))

    length = content.shape[1]
    q = project(layer.query_dense, stream)
    k = project(layer.key_dense, content)
    v = project(layer.value_dense, content)
    r = project(layer.position_dense, sinusoids(length, content.shape[-1]))
    out = np.zeros(q.shape)
    for b in range(q.shape[0]):
        for h in range(heads):
            for p, i in enumerate(positions[b]):
                scores = np.full(length, -np.inf)
                for j in range(length):
                    if not allowed[b, p, j]:
                        continue
                    different = int(segment_ids[b, i] != segment_ids[b, j])
                    scores[j] = (
                        (q[b, p, h] + weights["r_w_bias"][h]) @ k[b, j, h]
                        + (q[b, p, h] + weights["r_r_bias"][h]) @ r[length - 1 - (i - j), h]
                        + (q[b, p, h] + weights["r_s_bias"][h]) @ weights["seg_embed"][different, h]
                    ) / math.sqrt(size)
                probabilities = np.exp(scores - scores.max())
                out[b, p, h] = (probabilities / probabilities.sum()) @ v[b, :, h]
    return out.reshape(out.shape[:2] + (heads * size,)) @ layer.output_dense.kernel.numpy()


def test_relative_attention_matches_numpy_for_both_streams():
    rng = np.random.default_rng(0)
    batch, length, hidden = 2, 6, 16
    layer = RelativeAttention(num_heads=2, key_dim=8)
    content = rng.normal(size=(batch, length, hidden)).astype("float32")
    encoding = RelativePositionEncoding(hidden)(content)
    np.testing.assert_allclose(encoding, sinusoids(length, hidden), atol=1e-5)
    segment_ids = np.array([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 0, 0]], "int32")
    padding_mask = np.array([[1] * 6, [1, 1, 1, 1, 0, 0]], "int32")
    layer(content, encoding, segment_ids)  # builds
    for weight in layer.weights:  # large enough that every term matters
        weight.assign(rng.normal(scale=0.5, size=weight.shape))

    # Content stream, bidirectional: every real key.
    output = layer(content, encoding, segment_ids, padding_mask=padding_mask).numpy()
    allowed = np.broadcast_to(padding_mask[:, None, :] == 1, (batch, length, length))
    expected = reference_attention(layer, content, content, np.tile(np.arange(length), (batch, 1)),
                                   segment_ids, allowed)
    real = padding_mask == 1
    np.testing.assert_allclose(output[real], expected[real], atol=1e-5)

    # Both streams with a permutation mask; query rows at positions 4, 1 and 3, 2.
    attention_mask = rng.integers(0, 2, (batch, length, length)).astype("int32")
    attention_mask[:, np.arange(length), np.arange(length)] = 1
    query = rng.normal(size=(batch, 2, hidden)).astype("float32")
    query_positions = np.array([[4, 1], [3, 2]], "int32")
    content_out, query_out = layer(content, encoding, segment_ids, padding_mask=padding_mask,
                                   attention_mask=attention_mask, query=query,
                                   query_positions=query_positions)
    allowed = (attention_mask == 1) & (padding_mask[:, None, :] == 1)
    expected = reference_attention(layer, content, content, np.tile(np.arange(length), (batch, 1)),
                                   segment_ids, allowed)
    np.testing.assert_allclose(content_out.numpy()[real], expected[real], atol=1e-5)
    query_allowed = np.take_along_axis(allowed, query_positions[..., None], axis=1).copy()
    for b, p in np.ndindex(query_positions.shape):
        query_allowed[b, p, query_positions[b, p]] = False  # never its own token
    expected = reference_attention(layer, query, content, query_positions, segment_ids, query_allowed)
    np.testing.assert_allclose(query_out.numpy(), expected, atol=1e-5)


def test_layer_configs_round_trip_and_bad_arguments():
    for layer in (RelativeAttention(2, 8, dropout=0.2), RelativeAttentionBlock(2, 64),
                  RelativePositionEncoding(16, 32)):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
    assert RelativeAttention(2, 8).use_bias is False
    with pytest.raises(ValueError, match="post-LN"):
        RelativeAttentionBlock(2, 64, norm_first=True)
    with pytest.raises(ValueError, match="even"):
        RelativePositionEncoding(15)


# ---------------------------------------------------------------- backbone


def test_named_sizes_and_overrides():
    assert XLNET_SIZES["base"] == dict(num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072)
    backbone = XLNetBackbone.from_size("tiny", vocabulary_size=VOCABULARY, num_layers=1, hidden_dim=None)
    assert (backbone.num_layers, backbone.hidden_dim, backbone.num_heads) == (1, 128, 2)
    assert backbone.token_embedding.embeddings.shape == (VOCABULARY, 128)
    with pytest.raises(ValueError, match="unknown XLNet size 'huge'"):
        XLNetBackbone.from_size("huge", vocabulary_size=VOCABULARY)
    clone = XLNetBackbone.from_config(backbone.get_config())
    assert clone.get_config() == backbone.get_config()


def test_backbone_outputs_pooler_and_length_limit():
    backbone = tiny_backbone()
    outputs = backbone(padded_batch())
    assert outputs["sequence_output"].shape == (3, 8, 32)
    expected_pooled = np.tanh(outputs["sequence_output"].numpy()[:, 0] @ backbone.pooler.kernel.numpy()
                              + backbone.pooler.bias.numpy())
    np.testing.assert_allclose(outputs["pooled_output"], expected_pooled, atol=1e-5)
    too_long = {key: np.zeros((1, 17), "int32") for key in BACKBONE_KEYS}
    with pytest.raises(ValueError, match="longer than max_sequence_length=16"):
        backbone(too_long)


def test_padding_never_changes_real_tokens():
    backbone = tiny_backbone()
    inputs = padded_batch()
    real = inputs["padding_mask"] == 1
    changed = dict(inputs, token_ids=np.where(real, inputs["token_ids"], 7),
                   segment_ids=np.where(real, inputs["segment_ids"], 1))
    before = backbone(inputs)["sequence_output"].numpy()
    np.testing.assert_allclose(before[real], backbone(changed)["sequence_output"].numpy()[real], atol=1e-5)
    # Positions are relative only: padding on the left instead gives the same outputs.
    shift = 8 - inputs["padding_mask"].sum(1)
    left = {key: np.stack([np.roll(row, s) for row, s in zip(value, shift)]) for key, value in inputs.items()}
    after = backbone(left)["sequence_output"].numpy()
    for row, s in enumerate(shift):
        np.testing.assert_allclose(after[row, s:], before[row, : 8 - s], atol=1e-5)


def two_stream_inputs():
    """One row of 8 real tokens; targets 5, 2, 6 in that order."""
    rank = np.array([-1, -1, 1, -1, -1, 0, 2, -1])
    inputs = {
        "token_ids": np.array([[2, 11, 12, 13, 14, 15, 16, 3]], "int32"),
        "segment_ids": np.array([[0, 0, 0, 0, 1, 1, 1, 1]], "int32"),
        "padding_mask": np.ones((1, 8), "int32"),
        "permutation_mask": permutation_mask(tf.constant(rank), tf.ones([8], tf.bool)).numpy()[None],
        "target_positions": np.array([[5, 2, 6]], "int32"),
    }
    return inputs


def test_query_stream_never_sees_its_own_token_or_later_ones():
    backbone = tiny_backbone()
    inputs = two_stream_inputs()
    content, query = (t.numpy() for t in backbone.call_two_stream(inputs))
    assert query.shape == (1, 3, 32)

    def rerun(position, token):
        token_ids = inputs["token_ids"].copy()
        token_ids[0, position] = token
        return [t.numpy() for t in backbone.call_two_stream(dict(inputs, token_ids=token_ids))]

    # The second target (position 2) changes: its own prediction and the earlier
    # target's are untouched, the later target's changes; so do content rows that see it.
    new_content, new_query = rerun(2, 40)
    np.testing.assert_allclose(new_query[0, :2], query[0, :2], atol=1e-6)
    assert not np.allclose(new_query[0, 2], query[0, 2], atol=1e-4)
    non_targets = [0, 1, 3, 4, 7]
    np.testing.assert_allclose(new_content[0, non_targets + [5]], content[0, non_targets + [5]], atol=1e-6)
    assert not np.allclose(new_content[0, 6], content[0, 6], atol=1e-4)
    # A non-target token is context for every target.
    _, new_query = rerun(3, 40)
    for p in range(3):
        assert not np.allclose(new_query[0, p], query[0, p], atol=1e-4)


def test_two_stream_ignores_padding():
    backbone = tiny_backbone()
    inputs = two_stream_inputs()
    padded = {key: np.concatenate([value, np.zeros((1, 3), "int32")], axis=1)
              for key, value in inputs.items() if key in BACKBONE_KEYS}
    mask = np.zeros((1, 11, 11), "int32")
    mask[:, :8, :8] = inputs["permutation_mask"]
    padded.update(permutation_mask=mask, target_positions=inputs["target_positions"])
    _, query = backbone.call_two_stream(inputs)
    for token in (0, 9):
        padded["token_ids"][0, 8:] = token
        np.testing.assert_allclose(backbone.call_two_stream(padded)[1], query, atol=1e-5)


def test_fine_tuning_tasks_run_on_the_xlnet_backbone():
    backbone = tiny_backbone()
    inputs = padded_batch()
    text = TextClassifier(backbone, label_names=["no", "yes"]).predict_on_batch(inputs)
    tokens = TokenClassifier(backbone, tag_names=["O", "B-X", "I-X"]).predict_on_batch(inputs)
    assert text.shape == (3, 2) and tokens.shape == (3, 8, 3)
    assert np.isfinite(text).all() and np.isfinite(tokens).all()


# -------------------------------------------------------------- pretrainer


def pretraining_dataset(**kwargs):
    rng = np.random.default_rng(1)
    lengths = [list(rng.integers(2, 9, size=2 + d % 6)) for d in range(20)]
    documents, tokenizer = coded_documents(lengths), coded_tokenizer(20)
    options = dict(batch_size=8, max_sequence_length=24, seed=0, random_next_rate=0.0)
    return make_plm_dataset(documents, tokenizer, **(options | kwargs)), tokenizer


def pretrainer_for(tokenizer, **overrides):
    backbone = XLNetBackbone(vocabulary_size=tokenizer.vocabulary_size, num_layers=2, num_heads=2,
                             hidden_dim=32, intermediate_dim=64, max_sequence_length=24,
                             **({"dropout": 0.0} | overrides))
    return XLNetPretrainer(backbone)


def test_loss_is_the_weighted_mean_over_targets_and_log_names():
    dataset, tokenizer = pretraining_dataset()
    pretrainer = pretrainer_for(tokenizer)
    pretrainer.compile(optimizer="sgd")
    x, y, weights = next(dataset.as_numpy_iterator())
    logits = pretrainer(x)["plm"].numpy()
    assert logits.dtype == np.float32 and logits.shape == y["plm"].shape + (tokenizer.vocabulary_size,)
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    cross_entropy = -np.take_along_axis(log_probs, y["plm"][..., None], -1)[..., 0]
    w = weights["plm"]
    results = pretrainer.evaluate(x, y, sample_weight=weights, return_dict=True, verbose=0)
    assert sorted(results) == ["loss", "plm_accuracy"]
    assert results["loss"] == pytest.approx((cross_entropy * w).sum() / w.sum(), rel=1e-5)
    hits = (logits.argmax(-1) == y["plm"]) * w
    assert results["plm_accuracy"] == pytest.approx(hits.sum() / w.sum())
    # The output projection is the token embedding itself (one shared variable).
    assert pretrainer.plm_head.token_embedding is pretrainer.backbone.token_embedding
    assert not any("output_kernel" in v.path for v in pretrainer.weights)


def test_pretrainer_learns_the_tiny_corpus():
    keras.utils.set_random_seed(0)
    dataset, tokenizer = pretraining_dataset()
    held_out = dataset.take(2).cache()
    pretrainer = pretrainer_for(tokenizer)
    # XLA is covered by the evaluate of the loss test; here it would only add compile time.
    pretrainer.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    before = pretrainer.evaluate(held_out, return_dict=True, verbose=0)["loss"]
    history = pretrainer.fit(dataset, steps_per_epoch=25, epochs=2, verbose=0).history
    after = pretrainer.evaluate(held_out, return_dict=True, verbose=0)["loss"]
    assert sorted(history) == ["loss", "plm_accuracy"]
    assert history["loss"][-1] < history["loss"][0] and after < 0.6 * before


def test_mixed_bfloat16_pretrainer_has_float32_logits_and_finite_gradients():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    dataset, tokenizer = pretraining_dataset()
    pretrainer = pretrainer_for(tokenizer)
    x, y, weights = next(dataset.as_numpy_iterator())
    assert pretrainer.backbone.encoder_blocks[0].compute_dtype == "bfloat16"
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        logits = pretrainer(x, training=True)["plm"]
        loss = loss_fn(y["plm"], logits, sample_weight=weights["plm"])
    assert logits.dtype == "float32"
    gradients = tape.gradient(loss, pretrainer.backbone.encoder_blocks[0].trainable_variables)
    assert all(np.isfinite(np.asarray(g, "float32")).all() for g in gradients)


def test_keras_round_trip_of_backbone_and_pretrainer(tmp_path):
    dataset, tokenizer = pretraining_dataset()
    pretrainer = pretrainer_for(tokenizer)
    x, _, _ = next(dataset.as_numpy_iterator())
    pretrainer.save(tmp_path / "pretrainer.keras")
    pretrainer.backbone.save(tmp_path / "backbone.keras")
    restored = keras.saving.load_model(tmp_path / "pretrainer.keras")
    np.testing.assert_allclose(restored(x)["plm"], pretrainer(x)["plm"], atol=1e-6)
    assert restored.plm_head.token_embedding is restored.backbone.token_embedding
    backbone = keras.saving.load_model(tmp_path / "backbone.keras")
    inputs = {key: x[key] for key in BACKBONE_KEYS}
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(backbone(inputs)[key], pretrainer.backbone(inputs)[key], atol=1e-6)
    np.testing.assert_allclose(backbone.mask_embedding.embeddings, pretrainer.backbone.mask_embedding.embeddings)


def test_saved_model_export_of_the_backbone(tmp_path):
    backbone = tiny_backbone()
    inputs = padded_batch()
    backbone.export(str(tmp_path / "xlnet"), verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "xlnet"))
    served = loaded.serve(inputs)
    expected = backbone(inputs)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(served[key], expected[key], atol=1e-5)
