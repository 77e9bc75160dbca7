"""ALBERT (factorized embedding, cross-layer sharing) and RoBERTa (no segments) backbones."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfptlm.layers import TransformerEncoderBlock
from tfptlm.models import AlbertBackbone, BertBackbone, RobertaBackbone
from tfptlm.models.albert import ALBERT_SIZES
from tfptlm.models.roberta import ROBERTA_SIZES
from tfptlm.tasks import TextClassifier

V, E, H, HEADS, FFN, POSITIONS, SEGMENTS = 60, 16, 32, 2, 64, 16, 2
SHARING = ("all", "attention", "feed_forward", "none")


def albert(parameter_sharing="all", num_layers=3, seed=0, **overrides):
    keras.utils.set_random_seed(seed)
    settings = dict(num_layers=num_layers, num_heads=HEADS, hidden_dim=H, intermediate_dim=FFN,
                    embedding_dim=E, parameter_sharing=parameter_sharing,
                    max_sequence_length=POSITIONS)
    settings.update(overrides)
    return AlbertBackbone(vocabulary_size=V, **settings)


def roberta(seed=0, **overrides):
    keras.utils.set_random_seed(seed)
    settings = dict(num_layers=2, num_heads=HEADS, hidden_dim=H, intermediate_dim=FFN,
                    max_sequence_length=POSITIONS, dropout=0.0)
    settings.update(overrides)
    return RobertaBackbone(vocabulary_size=V, **settings)


def batch(seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.array([8, 6, 3])
    padding_mask = (np.arange(8)[None, :] < lengths[:, None]).astype("int32")
    token_ids = rng.integers(5, V, (3, 8)).astype("int32") * padding_mask
    segment_ids = ((np.arange(8)[None, :] >= lengths[:, None] // 2) * padding_mask).astype("int32")
    return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}


def run(model, inputs):
    return {k: keras.ops.convert_to_numpy(v) for k, v in model(inputs).items()}


def count(layer_or_model):
    return sum(int(np.prod(w.shape)) for w in layer_or_model.trainable_weights)


# Parameter counts by formula (dense = kernel + bias, layer norm = gamma + beta).
EMBEDDINGS = (V + POSITIONS + SEGMENTS) * E + 2 * E
PROJECTION = E * H + H
POOLER = H * H + H
ATTENTION = 4 * (H * H + H) + 2 * H  # query, key, value, output + layer norm
FEED_FORWARD = (H * FFN + FFN) + (FFN * H + H) + 2 * H


def expected_non_embedding(sharing, layers):
    attention = ATTENTION if sharing in ("all", "attention") else layers * ATTENTION
    feed_forward = FEED_FORWARD if sharing in ("all", "feed_forward") else layers * FEED_FORWARD
    return PROJECTION + POOLER + attention + feed_forward


@pytest.mark.parametrize("sharing", SHARING)
def test_parameter_counts_follow_the_sharing_formula(sharing):
    backbone = albert(sharing, num_layers=3)
    assert count(backbone.embeddings) == EMBEDDINGS
    assert count(backbone) - EMBEDDINGS == expected_non_embedding(sharing, 3)
    # Weights shared between layers are one variable, counted once.
    assert len({id(v) for v in backbone.trainable_weights}) == len(backbone.trainable_weights)


def test_all_sharing_costs_one_layer_whatever_the_depth():
    shallow, deep = albert("all", num_layers=2), albert("all", num_layers=4)
    assert count(shallow) == count(deep) == EMBEDDINGS + PROJECTION + POOLER + ATTENTION + FEED_FORWARD
    assert len(deep.encoder_blocks) == 1
    assert count(albert("none", num_layers=4)) - count(deep) == 3 * (ATTENTION + FEED_FORWARD)


def test_factorized_embedding_shapes():
    backbone = albert()
    assert tuple(backbone.token_embedding.embeddings.shape) == (V, E)
    assert tuple(backbone.embeddings.position_embedding.embeddings.shape) == (POSITIONS, E)
    assert tuple(backbone.embeddings.segment_embedding.embeddings.shape) == (SEGMENTS, E)
    assert tuple(backbone.embedding_projection.kernel.shape) == (E, H)
    outputs = run(backbone, batch())
    assert outputs["sequence_output"].shape == (3, 8, H) and outputs["pooled_output"].shape == (3, H)
    assert (backbone.embedding_dim, backbone.hidden_dim, backbone.vocabulary_size) == (E, H, V)
    assert backbone.layer_norm_epsilon == 1e-12 and backbone.dropout == 0.0


@pytest.mark.parametrize("sharing, layers", [("all", 3), ("attention", 3), ("none", 2)])
def test_layers_apply_the_blocks_in_order(sharing, layers):
    """Hand-composed: embed, project, then block i % distinct blocks, then the pooler."""
    backbone = albert(sharing, num_layers=layers)
    x = batch()
    hidden = backbone.embedding_projection(backbone.embeddings(x["token_ids"], x["segment_ids"]))
    blocks = backbone.encoder_blocks
    assert len(blocks) == (1 if sharing == "all" else layers)
    for i in range(layers):
        hidden = blocks[i % len(blocks)](hidden, padding_mask=x["padding_mask"])
    hidden = keras.ops.convert_to_numpy(hidden)
    outputs = run(backbone, x)
    np.testing.assert_allclose(outputs["sequence_output"], hidden, atol=1e-5)
    pooled = np.tanh(hidden[:, 0] @ backbone.pooler.kernel.numpy() + backbone.pooler.bias.numpy())
    np.testing.assert_allclose(outputs["pooled_output"], pooled, atol=1e-5)


def test_all_sharing_is_one_block_applied_repeatedly():
    """With the same weights, 3 shared layers = the 1-layer model's block applied 3 times."""
    three, one = albert("all", num_layers=3, seed=1), albert("all", num_layers=1, seed=2)
    one.set_weights(three.get_weights())  # identical variable lists
    x = batch()
    hidden = one.embedding_projection(one.embeddings(x["token_ids"], x["segment_ids"]))
    for _ in range(3):
        hidden = one.encoder_blocks[0](hidden, padding_mask=x["padding_mask"])
    np.testing.assert_allclose(run(three, x)["sequence_output"], hidden, atol=1e-5)
    assert not np.allclose(run(one, x)["sequence_output"], hidden, atol=1e-3)


@pytest.mark.parametrize("sharing", ["attention", "feed_forward"])
def test_partial_sharing_shares_only_its_step(sharing):
    blocks = albert(sharing, num_layers=3).encoder_blocks
    attention = ("self_attention", "self_attention_layer_norm")
    feed_forward = ("intermediate_dense", "output_dense", "output_layer_norm")
    shared, own = (attention, feed_forward) if sharing == "attention" else (feed_forward, attention)
    for block in blocks[1:]:
        assert all(getattr(block, name) is getattr(blocks[0], name) for name in shared)
        assert all(getattr(block, name) is not getattr(blocks[0], name) for name in own)
        # A block's weights are the ones it uses: its own step and the shared one.
        assert count(block) == ATTENTION + FEED_FORWARD


def test_a_sharing_block_serializes_without_the_shared_block():
    first = TransformerEncoderBlock(num_heads=HEADS, intermediate_dim=FFN)
    first.build((None, None, H))
    second = TransformerEncoderBlock(num_heads=HEADS, intermediate_dim=FFN, share_attention_with=first)
    config = second.get_config()
    assert "share_attention_with" not in config
    alone = TransformerEncoderBlock.from_config(config)
    alone(np.zeros((1, 4, H), "float32"))
    assert alone.self_attention is not first.self_attention and count(alone) == ATTENTION + FEED_FORWARD


@pytest.mark.parametrize("make", [
    lambda: albert("all"), lambda: albert("none", num_layers=2), lambda: roberta(),
], ids=["albert_all", "albert_none", "roberta"])
def test_padding_tokens_do_not_change_real_positions(make):
    backbone = make()
    x = batch()
    changed = dict(x, token_ids=np.where(x["padding_mask"] == 1, x["token_ids"], 7))
    real = x["padding_mask"].astype(bool)
    np.testing.assert_allclose(
        run(backbone, x)["sequence_output"][real], run(backbone, changed)["sequence_output"][real],
        atol=1e-5,
    )


def test_roberta_ignores_segment_ids():
    backbone = roberta()
    x = batch()
    other = dict(x, segment_ids=np.random.default_rng(1).integers(0, 5, x["segment_ids"].shape))
    for key, value in run(backbone, x).items():
        np.testing.assert_array_equal(value, run(backbone, other)[key])
    assert backbone.embeddings.segment_embedding is None
    assert not any("segment" in w.path for w in backbone.weights)
    assert backbone.layer_norm_epsilon == 1e-5
    assert backbone.embeddings.layer_norm.epsilon == 1e-5
    assert "num_segments" not in backbone.get_config()


def test_roberta_is_bert_without_segment_embeddings():
    """A BERT with the same weights and an all-zero segment table gives the same outputs."""
    source = roberta(seed=3)
    bert = BertBackbone(vocabulary_size=V, num_layers=2, num_heads=HEADS, hidden_dim=H,
                        intermediate_dim=FFN, max_sequence_length=POSITIONS, dropout=0.0,
                        layer_norm_epsilon=1e-5)
    for name in ("token_embedding", "position_embedding", "layer_norm"):
        getattr(bert.embeddings, name).set_weights(getattr(source.embeddings, name).get_weights())
    bert.embeddings.segment_embedding.embeddings.assign(np.zeros((2, H), "float32"))
    for mine, theirs in zip(bert.encoder_blocks, source.encoder_blocks):
        mine.set_weights(theirs.get_weights())
    bert.pooler.set_weights(source.pooler.get_weights())
    x = batch()
    for key, value in run(source, x).items():
        np.testing.assert_allclose(value, run(bert, x)[key], atol=1e-5)


def test_named_sizes():
    assert ALBERT_SIZES["base"] == dict(num_layers=12, hidden_dim=768, embedding_dim=128,
                                        num_heads=12, intermediate_dim=3072)
    assert ROBERTA_SIZES["base"] == dict(num_layers=12, hidden_dim=768, num_heads=12,
                                         intermediate_dim=3072)
    backbone = AlbertBackbone.from_size("tiny", vocabulary_size=V, num_layers=1, embedding_dim=None,
                                        parameter_sharing="none", max_sequence_length=POSITIONS)
    assert (backbone.num_layers, backbone.hidden_dim, backbone.embedding_dim) == (1, 128, 64)
    assert backbone.parameter_sharing == "none"
    tiny = RobertaBackbone.from_size("tiny", vocabulary_size=V, max_sequence_length=POSITIONS)
    assert (tiny.hidden_dim, tiny.num_segments, tiny.layer_norm_epsilon) == (128, 0, 1e-5)
    with pytest.raises(ValueError, match="unknown ALBERT size 'huge'"):
        AlbertBackbone.from_size("huge", vocabulary_size=V)
    with pytest.raises(ValueError, match="unknown RoBERTa size 'huge'"):
        RobertaBackbone.from_size("huge", vocabulary_size=V)


@pytest.mark.parametrize("overrides, message", [
    (dict(parameter_sharing="ffn"), "parameter_sharing must be one of"),
    (dict(embedding_dim=64), r"embedding_dim \(64\) must not be larger than hidden_dim \(32\)"),
    (dict(num_heads=5), r"hidden size \(32\) must be divisible by num_heads \(5\)"),
])
def test_bad_albert_configs_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        albert(**overrides)


def test_sharing_needs_a_built_block():
    unbuilt = TransformerEncoderBlock(num_heads=HEADS, intermediate_dim=FFN)
    with pytest.raises(ValueError, match="built TransformerEncoderBlock"):
        TransformerEncoderBlock(num_heads=HEADS, intermediate_dim=FFN, share_feed_forward_with=unbuilt)


@pytest.mark.parametrize("make", [
    *(lambda s=s: albert(s) for s in SHARING), lambda: roberta(),
], ids=[f"albert_{s}" for s in SHARING] + ["roberta"])
def test_keras_round_trip(make, tmp_path):
    backbone = make()
    x = batch()
    backbone.save(tmp_path / "backbone.keras")
    restored = keras.saving.load_model(tmp_path / "backbone.keras")
    assert type(restored) is type(backbone) and restored.get_config() == backbone.get_config()
    for key, value in run(backbone, x).items():
        np.testing.assert_allclose(run(restored, x)[key], value, atol=1e-6)
    if isinstance(backbone, AlbertBackbone) and backbone.parameter_sharing in ("attention", "feed_forward"):
        shared = "self_attention" if backbone.parameter_sharing == "attention" else "output_dense"
        blocks = restored.encoder_blocks
        assert getattr(blocks[2], shared) is getattr(blocks[0], shared)
    assert count(restored) == count(backbone)


@pytest.mark.parametrize("make", [lambda: albert("attention"), lambda: roberta()],
                         ids=["albert_attention", "roberta"])
def test_saved_model_export(make, tmp_path):
    backbone = make()
    x = batch()
    backbone.export(str(tmp_path / "saved"), format="tf_saved_model", verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    served = loaded.serve({k: tf.constant(v) for k, v in x.items()})
    for key, value in run(backbone, x).items():
        np.testing.assert_allclose(served[key].numpy(), value, atol=1e-5)


@pytest.mark.parametrize("make", [lambda: albert("all"), lambda: roberta()], ids=["albert", "roberta"])
def test_text_classifier_builds_on_the_backbone(make, tmp_path):
    backbone = make()
    classifier = TextClassifier(backbone, ["a", "b", "c"], dropout=0.0)
    x = batch()
    logits = keras.ops.convert_to_numpy(classifier(x))
    kernel, bias = classifier.output_dense.get_weights()
    np.testing.assert_allclose(logits, run(backbone, x)["pooled_output"] @ kernel + bias, atol=1e-5)
    classifier.save(tmp_path / "classifier.keras")
    restored = keras.saving.load_model(tmp_path / "classifier.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(x)), logits, atol=1e-6)
