"""get_config/from_config and `.keras` save/load round trips for every layer."""

import numpy as np
import pytest

import tfptlm  # noqa: F401  (sets KERAS_BACKEND before keras is imported)
import keras

from tfptlm.layers import (
    LanguageModelHead,
    MaskedLMHead,
    MultiHeadAttention,
    RelativePositionBias,
    RMSNormalization,
    TransformerDecoderBlock,
    TransformerEmbeddings,
    TransformerEncoderBlock,
    gelu_approximate,
)

HIDDEN, VOCAB = 32, 40


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def randomize_weights(layer):
    """Gives every weight (zero biases, unit gammas too) distinct random values."""
    for i, weight in enumerate(layer.weights):
        weight.assign(rand(*weight.shape, seed=100 + i) * 0.2)


# A case is (make_layer, wire, data): `wire(layer)` returns the functional
# model's (inputs, outputs) around `layer`; `data` feeds that model.


def wire_mha_self(layer):
    x = keras.Input((None, HIDDEN), name="x")
    mask = keras.Input((None,), dtype="int32", name="mask")
    return [x, mask], layer(x, padding_mask=mask, use_causal_mask=True)


def wire_mha_cross(layer):
    x, memory = keras.Input((4, HIDDEN), name="x"), keras.Input((6, 16), name="memory")
    bias = keras.Input((2, 4, 6), name="bias")
    out, probs = layer(x, memory, attention_bias=bias, return_attention_scores=True)
    return [x, memory, bias], [out, probs]


def wire_embeddings(layer):
    ids = keras.Input((None,), dtype="int32", name="ids")
    segments = keras.Input((None,), dtype="int32", name="segments")
    return [ids, segments], layer(ids, segment_ids=segments)


def wire_encoder(layer):
    x = keras.Input((None, HIDDEN), name="x")
    mask = keras.Input((None,), dtype="int32", name="mask")
    return [x, mask], layer(x, padding_mask=mask)


def wire_decoder(layer):
    x, memory = keras.Input((None, HIDDEN), name="x"), keras.Input((None, 16), name="memory")
    mask = keras.Input((None,), dtype="int32", name="mask")
    return [x, memory, mask], layer(x, memory, encoder_padding_mask=mask)


def wire_decoder_only(layer):
    x = keras.Input((None, HIDDEN), name="x")
    return [x], layer(x)


def wire_head(layer):
    hidden = keras.Input((None, HIDDEN), name="hidden")
    positions = keras.Input((2,), dtype="int32", name="positions")
    return [hidden, positions], layer(hidden, positions)


def wire_single(layer):
    x = keras.Input((None, HIDDEN), name="x")
    return [x], layer(x)


def wire_relative_bias(layer):
    x = keras.Input((None, HIDDEN), name="x")
    return [x], layer(x, key_length=8, query_start=3)


X = rand(2, 5, HIDDEN)
MASK = np.array([[1] * 5, [1, 1, 1, 0, 0]])
MEMORY = rand(2, 6, 16, seed=1)
MEMORY_MASK = np.array([[1] * 6, [1, 1, 0, 0, 0, 0]])
IDS = np.array([[1, 2, 3, 4], [5, 6, 7, 0]])

CASES = {
    "mha_self": (
        lambda: MultiHeadAttention(num_heads=2, key_dim=8, dropout=0.1),
        wire_mha_self,
        [X, MASK],
    ),
    "mha_cross": (
        lambda: MultiHeadAttention(
            num_heads=2, key_dim=8, value_dim=4, output_dim=24, use_bias=False,
            kernel_initializer="glorot_uniform",
        ),
        wire_mha_cross,
        [X[:, :4], MEMORY, rand(2, 2, 4, 6, seed=2)],
    ),
    "embeddings": (
        lambda: TransformerEmbeddings(VOCAB, HIDDEN, max_sequence_length=10, num_segments=3),
        wire_embeddings,
        [IDS, np.array([[0, 1, 2, 0]] * 2)],
    ),
    "encoder_post_ln": (
        lambda: TransformerEncoderBlock(
            num_heads=4, intermediate_dim=64, activation="relu", attention_dropout=0.2,
            layer_norm_epsilon=1e-6,
        ),
        wire_encoder,
        [X, MASK],
    ),
    "encoder_pre_ln": (
        lambda: TransformerEncoderBlock(num_heads=4, intermediate_dim=64, norm_first=True),
        wire_encoder,
        [X, MASK],
    ),
    "decoder_cross": (
        lambda: TransformerDecoderBlock(num_heads=2, intermediate_dim=64),
        wire_decoder,
        [X, MEMORY, MEMORY_MASK],
    ),
    "decoder_only_pre_ln": (
        lambda: TransformerDecoderBlock(
            num_heads=2, intermediate_dim=64, norm_first=True, use_cross_attention=False
        ),
        wire_decoder_only,
        [X],
    ),
    "encoder_t5_gated": (
        lambda: TransformerEncoderBlock(
            num_heads=2, intermediate_dim=48, activation=gelu_approximate, norm_first=True,
            normalization="rms_norm", use_bias=False, feed_forward="gated", attention_scale=1.0,
        ),
        wire_encoder,
        [X, MASK],
    ),
    "decoder_t5": (
        lambda: TransformerDecoderBlock(
            num_heads=2, intermediate_dim=64, activation="relu", norm_first=True,
            normalization="rms_norm", use_bias=False, attention_scale=1.0,
        ),
        wire_decoder,
        [X, MEMORY, MEMORY_MASK],
    ),
    "rms_norm": (lambda: RMSNormalization(epsilon=1e-5), wire_single, [X]),
    "relative_bias": (
        lambda: RelativePositionBias(num_heads=2, num_buckets=8, max_distance=16, bidirectional=False),
        wire_relative_bias,
        [X],
    ),
    "lm_head": (
        lambda: LanguageModelHead(VOCAB, use_bias=True, scale=0.25),
        wire_single,
        [X],
    ),
    "mlm_head": (
        lambda: MaskedLMHead(VOCAB, intermediate_activation="tanh", layer_norm_epsilon=1e-5),
        wire_head,
        [X, np.array([[0, 4], [2, 2]])],
    ),
}


def make_model(make_layer, wire):
    layer = make_layer()
    model = keras.Model(*wire(layer))
    randomize_weights(layer)
    return layer, model


def outputs_of(model, data):
    outputs = model(data)
    return [np.asarray(o) for o in (outputs if isinstance(outputs, list) else [outputs])]


def assert_same_outputs(model_a, model_b, data):
    for a, b in zip(outputs_of(model_a, data), outputs_of(model_b, data), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("name", list(CASES))
def test_config_round_trip(name):
    make_layer, wire, data = CASES[name]
    layer, model = make_model(make_layer, wire)
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config
    clone_model = keras.Model(*wire(clone))
    clone.set_weights(layer.get_weights())
    assert_same_outputs(model, clone_model, data)


@pytest.mark.parametrize("name", list(CASES))
def test_keras_save_load(name, tmp_path):
    make_layer, wire, data = CASES[name]
    _, model = make_model(make_layer, wire)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert_same_outputs(model, loaded, data)


# ---------------------------------------------------------------- tied MLM head


@keras.saving.register_keras_serializable(package="tfptlm_tests")
class TinyMaskedLM(keras.Model):
    """The owner pattern: the model re-creates the tie in its own __init__."""

    def __init__(self, vocabulary_size, hidden_dim, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size, self.hidden_dim = vocabulary_size, hidden_dim
        self.embeddings = TransformerEmbeddings(vocabulary_size, hidden_dim, max_sequence_length=8)
        self.block = TransformerEncoderBlock(num_heads=2, intermediate_dim=64)
        self.head = MaskedLMHead(vocabulary_size, token_embedding=self.embeddings.token_embedding)

    def call(self, inputs):
        hidden = self.block(self.embeddings(inputs["token_ids"]))
        return self.head(hidden, inputs["mask_positions"])

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "hidden_dim": self.hidden_dim}


def test_tied_head_config_excludes_embedding_and_owner_model_round_trips(tmp_path):
    model = TinyMaskedLM(VOCAB, HIDDEN)
    data = {"token_ids": IDS, "mask_positions": np.array([[0, 3], [1, 2]])}
    model(data)
    randomize_weights(model)
    assert "token_embedding" not in model.head.get_config()
    path = tmp_path / "tied.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.head.token_embedding is loaded.embeddings.token_embedding
    np.testing.assert_allclose(np.asarray(model(data)), np.asarray(loaded(data)), atol=1e-6)
