"""TransformerEmbeddings and MaskedLMHead tests against NumPy references."""

import math

import numpy as np
import pytest

import tfptlm  # noqa: F401  (sets KERAS_BACKEND before keras is imported)
import keras

from tfptlm.layers import LanguageModelHead, MaskedLMHead, TransformerEmbeddings

VOCAB, HIDDEN = 50, 32


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def np_layer_norm(x, layer):
    mean = x.mean(-1, keepdims=True)
    y = (x - mean) / np.sqrt(x.var(-1, keepdims=True) + layer.epsilon)
    return y * layer.gamma.numpy() + layer.beta.numpy()


def np_gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def token_ids(batch=2, length=6, seed=0):
    return np.random.default_rng(seed).integers(0, VOCAB, size=(batch, length)).astype("int32")


def randomize_layer_norm(norm, size):
    norm.gamma.assign(1.0 + rand(size, seed=7) * 0.1)
    norm.beta.assign(rand(size, seed=8) * 0.1)


# ---------------------------------------------------------------- embeddings


def test_embeddings_match_numpy():
    layer = TransformerEmbeddings(VOCAB, HIDDEN, max_sequence_length=16, num_segments=2)
    ids = token_ids()
    segments = np.array([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1]])
    layer(ids)  # build
    randomize_layer_norm(layer.layer_norm, HIDDEN)
    out = np.asarray(layer(ids, segment_ids=segments))
    tok = layer.token_embedding.embeddings.numpy()
    pos = layer.position_embedding.embeddings.numpy()
    seg = layer.segment_embedding.embeddings.numpy()
    expected = np_layer_norm(tok[ids] + pos[None, :6] + seg[segments], layer.layer_norm)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert tok.shape == (VOCAB, HIDDEN) and pos.shape == (16, HIDDEN) and seg.shape == (2, HIDDEN)


def test_embeddings_default_segment_is_zero_and_start_index_shifts_positions():
    layer = TransformerEmbeddings(VOCAB, HIDDEN, max_sequence_length=16, use_layer_norm=False)
    ids = token_ids(length=4)
    out = np.asarray(layer(ids, start_index=3))
    assert layer.layer_norm is None
    np.testing.assert_allclose(out, np.asarray(layer(ids, np.zeros_like(ids), start_index=3)))
    tok = layer.token_embedding.embeddings.numpy()
    pos = layer.position_embedding.embeddings.numpy()
    seg = layer.segment_embedding.embeddings.numpy()
    np.testing.assert_allclose(out, tok[ids] + pos[None, 3:7] + seg[0], atol=1e-6)


def test_embeddings_without_segments():
    layer = TransformerEmbeddings(VOCAB, HIDDEN, num_segments=0, use_layer_norm=False)
    ids = token_ids()
    out = np.asarray(layer(ids))
    assert layer.segment_embedding is None
    assert not any("segment" in w.path for w in layer.weights)
    tok = layer.token_embedding.embeddings.numpy()
    pos = layer.position_embedding.embeddings.numpy()
    np.testing.assert_allclose(out, tok[ids] + pos[None, :6], atol=1e-6)
    with pytest.raises(ValueError, match="num_segments=0"):
        layer(ids, segment_ids=np.zeros_like(ids))


def test_embeddings_reject_too_long_input():
    layer = TransformerEmbeddings(VOCAB, HIDDEN, max_sequence_length=8)
    layer(token_ids(length=8))  # exactly the maximum is fine
    with pytest.raises(ValueError, match="max_sequence_length=8"):
        layer(token_ids(length=9))
    with pytest.raises(ValueError, match="max_sequence_length=8"):
        layer(token_ids(length=4), start_index=5)
    with pytest.raises(ValueError, match="max_sequence_length=8"):
        layer(keras.Input(shape=(12,), dtype="int32"))


def test_embeddings_can_share_a_token_embedding():
    encoder = TransformerEmbeddings(VOCAB, HIDDEN, max_sequence_length=8, num_segments=0)
    decoder = TransformerEmbeddings(
        VOCAB, HIDDEN, max_sequence_length=8, num_segments=0,
        token_embedding=encoder.token_embedding,
    )
    ids = token_ids()
    encoder(ids), decoder(ids)
    assert decoder.token_embedding is encoder.token_embedding
    assert decoder.token_embedding.embeddings is encoder.token_embedding.embeddings
    assert len(decoder.weights) == 4  # shared tokens + own positions + own layer norm
    with pytest.raises(ValueError, match="shared token_embedding"):
        TransformerEmbeddings(VOCAB, HIDDEN + 1, token_embedding=encoder.token_embedding)


def test_embeddings_dropout_only_in_training():
    layer = TransformerEmbeddings(VOCAB, HIDDEN, dropout=0.5)
    ids = token_ids()
    np.testing.assert_array_equal(np.asarray(layer(ids)), np.asarray(layer(ids, training=False)))
    assert not np.allclose(np.asarray(layer(ids)), np.asarray(layer(ids, training=True)))


# ---------------------------------------------------------------- masked LM head


def np_mlm_head(head, sequence_output, positions, output_kernel):
    gathered = np.take_along_axis(sequence_output, positions[..., None], axis=1)
    dense = head.transform_dense
    x = np_gelu(gathered @ dense.kernel.numpy() + dense.bias.numpy())
    x = np_layer_norm(x, head.transform_layer_norm)
    return x @ output_kernel + head.output_bias.numpy()


def test_masked_lm_head_tied_uses_embedding_matrix():
    embedding = keras.layers.Embedding(VOCAB, HIDDEN)
    embedding.build((None,))
    head = MaskedLMHead(VOCAB, token_embedding=embedding)
    hidden = rand(2, 6, HIDDEN)
    positions = np.array([[0, 3, 5], [4, 1, 1]])
    head(hidden, positions)  # build
    head.output_bias.assign(rand(VOCAB, seed=3))
    randomize_layer_norm(head.transform_layer_norm, HIDDEN)
    logits = np.asarray(head(hidden, positions))
    assert logits.shape == (2, 3, VOCAB) and logits.dtype == np.float32
    assert head.output_kernel is None
    expected = np_mlm_head(head, hidden, positions, embedding.embeddings.numpy().T)
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    # The tie is live: changing the embedding changes the logits.
    embedding.embeddings.assign(embedding.embeddings * 2.0)
    assert not np.allclose(np.asarray(head(hidden, positions)), logits)


def test_masked_lm_head_tied_with_factorized_embedding():
    embedding = keras.layers.Embedding(VOCAB, 16)  # ALBERT-style E=16 < H=32
    embedding.build((None,))
    head = MaskedLMHead(VOCAB, token_embedding=embedding)
    hidden, positions = rand(1, 4, HIDDEN), np.array([[2, 0]])
    logits = np.asarray(head(hidden, positions))
    assert tuple(head.transform_dense.kernel.shape) == (HIDDEN, 16)
    expected = np_mlm_head(head, hidden, positions, embedding.embeddings.numpy().T)
    np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_masked_lm_head_untied():
    head = MaskedLMHead(VOCAB)
    hidden = rand(2, 6, HIDDEN)
    positions = np.array([[1, 2], [5, 0]])
    logits = np.asarray(head(hidden, positions))
    assert tuple(head.output_kernel.shape) == (HIDDEN, VOCAB)
    expected = np_mlm_head(head, hidden, positions, head.output_kernel.numpy())
    np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_masked_lm_head_gathers_the_right_positions():
    head = MaskedLMHead(VOCAB)
    hidden = rand(2, 6, HIDDEN)
    positions = np.array([[4, 1], [0, 5]])
    logits = np.asarray(head(hidden, positions))
    for b in range(2):
        for p in range(2):
            alone = hidden[b : b + 1, positions[b, p] : positions[b, p] + 1]
            np.testing.assert_allclose(
                logits[b, p], np.asarray(head(alone, np.array([[0]])))[0, 0], atol=1e-5
            )


def test_masked_lm_head_rejects_vocabulary_mismatch():
    with pytest.raises(ValueError, match="vocabulary_size"):
        MaskedLMHead(VOCAB + 1, token_embedding=keras.layers.Embedding(VOCAB, HIDDEN))


def test_masked_lm_head_mixed_bfloat16_returns_float32():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        embeddings = TransformerEmbeddings(VOCAB, HIDDEN)
        head = MaskedLMHead(VOCAB, token_embedding=embeddings.token_embedding)
        hidden = embeddings(token_ids())
        assert keras.backend.standardize_dtype(hidden.dtype) == "bfloat16"
        logits = head(hidden, np.array([[0, 1], [2, 3]]))
        assert keras.backend.standardize_dtype(logits.dtype) == "float32"
        assert np.isfinite(np.asarray(logits)).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")


# ---------------------------------------------------------------- language model head


def test_language_model_head_tied_scaled_and_biased():
    embedding = keras.layers.Embedding(VOCAB, HIDDEN)
    embedding.build((None,))
    head = LanguageModelHead(VOCAB, token_embedding=embedding, use_bias=True, scale=0.5)
    hidden = rand(2, 3, HIDDEN)
    head(hidden)
    head.output_bias.assign(rand(VOCAB, seed=4))
    logits = np.asarray(head(hidden))
    assert logits.dtype == np.float32 and head.output_kernel is None
    expected = (hidden * 0.5) @ embedding.embeddings.numpy().T + head.output_bias.numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    with pytest.raises(ValueError, match="vocabulary_size"):
        LanguageModelHead(VOCAB + 1, token_embedding=embedding)


def test_language_model_head_untied():
    head = LanguageModelHead(VOCAB)
    hidden = rand(2, 3, HIDDEN)
    logits = np.asarray(head(hidden))
    assert head.output_bias is None and tuple(head.output_kernel.shape) == (HIDDEN, VOCAB)
    np.testing.assert_allclose(logits, hidden @ head.output_kernel.numpy(), atol=1e-5)
