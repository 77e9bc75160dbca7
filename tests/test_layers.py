"""Attention and Transformer block tests against NumPy references."""

import math
import subprocess
import sys

import numpy as np
import pytest

import tfptlm  # noqa: F401  (sets KERAS_BACKEND before keras is imported)
import keras

from tfptlm.layers import (
    MultiHeadAttention,
    RelativePositionBias,
    RMSNormalization,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
    causal_mask,
    gelu_approximate,
    merge_masks,
    relative_position_bucket,
    scaled_dot_product_attention,
)

HIDDEN = 32
ATOL = 1e-5


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


# ---------------------------------------------------------------- NumPy references


def np_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_attention(q, k, v, mask=None, bias=None):
    """softmax(q k^T / sqrt(d) + bias, masked) v for [B, H, T, d] arrays."""
    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if bias is not None:
        scores = scores + bias
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    probs = np_softmax(scores)
    return probs @ v, probs


def np_dense(x, layer):
    kernel, bias = (w.numpy() for w in (layer.kernel, layer.bias))
    return x @ kernel + bias


def np_split_heads(x, num_heads):
    b, t, _ = x.shape
    return x.reshape(b, t, num_heads, -1).transpose(0, 2, 1, 3)


def np_mha(layer, query, value=None, mask=None, bias=None, key=None):
    """NumPy multi-head attention with `layer`'s weights; mask is [B,1,Tq,Tk]."""
    value = query if value is None else value
    key = value if key is None else key
    h = layer.num_heads
    q = np_split_heads(np_dense(query, layer.query_dense), h)
    k = np_split_heads(np_dense(key, layer.key_dense), h)
    v = np_split_heads(np_dense(value, layer.value_dense), h)
    out, _ = np_attention(q, k, v, mask, bias)
    b, _, t, _ = out.shape
    return np_dense(out.transpose(0, 2, 1, 3).reshape(b, t, -1), layer.output_dense)


def np_layer_norm(x, layer):
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + layer.epsilon)
    return y * layer.gamma.numpy() + layer.beta.numpy()


def np_gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def np_residual(x, fn, norm, norm_first):
    if norm_first:
        return x + fn(np_layer_norm(x, norm))
    return np_layer_norm(x + fn(x), norm)


def np_ffn(block, x):
    return np_dense(np_gelu(np_dense(x, block.intermediate_dense)), block.output_dense)


def np_encoder_block(block, x, mask):
    x = np_residual(
        x, lambda y: np_mha(block.self_attention, y, mask=mask),
        block.self_attention_layer_norm, block.norm_first,
    )
    return np_residual(x, lambda y: np_ffn(block, y), block.output_layer_norm, block.norm_first)


def np_decoder_block(block, x, memory, self_mask, cross_mask):
    x = np_residual(
        x, lambda y: np_mha(block.self_attention, y, mask=self_mask),
        block.self_attention_layer_norm, block.norm_first,
    )
    x = np_residual(
        x, lambda y: np_mha(block.cross_attention, y, memory, mask=cross_mask),
        block.cross_attention_layer_norm, block.norm_first,
    )
    return np_residual(x, lambda y: np_ffn(block, y), block.output_layer_norm, block.norm_first)


def padding_to_4d(padding_mask):
    return padding_mask.astype(bool)[:, None, None, :]


# ---------------------------------------------------------------- masks


def test_causal_mask_is_lower_triangular_and_end_aligned():
    np.testing.assert_array_equal(np.asarray(causal_mask(4, 4)), np.tril(np.ones((4, 4), bool)))
    # With 2 cached keys, query i sits at position i + 2.
    np.testing.assert_array_equal(
        np.asarray(causal_mask(3, 5)), np.tril(np.ones((3, 5), bool), k=2)
    )


def test_merge_masks_is_logical_and_of_all_masks():
    padding = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])
    attention = rand(2, 4, 4, seed=1) > 0
    merged = np.asarray(
        merge_masks(padding, attention, use_causal_mask=True, query_length=4, key_length=4)
    )
    expected = (
        padding.astype(bool)[:, None, None, :]
        & attention[:, None]
        & np.tril(np.ones((4, 4), bool))[None, None]
    )
    np.testing.assert_array_equal(np.broadcast_to(merged, (2, 1, 4, 4)), expected)
    assert merge_masks() is None
    with pytest.raises(ValueError, match="query_length"):
        merge_masks(use_causal_mask=True)


# ---------------------------------------------------------------- scaled dot-product


def test_scaled_dot_product_attention_matches_numpy():
    q, k, v = rand(2, 2, 4, 8, seed=1), rand(2, 2, 6, 8, seed=2), rand(2, 2, 6, 8, seed=3)
    mask = rand(2, 1, 4, 6, seed=4) > -0.5
    mask[..., 0] = True  # every row keeps at least one key
    bias = rand(1, 2, 4, 6, seed=5)
    out, probs = scaled_dot_product_attention(q, k, v, attention_mask=mask, attention_bias=bias)
    expected_out, expected_probs = np_attention(q, k, v, mask, bias)
    np.testing.assert_allclose(np.asarray(probs), expected_probs, atol=ATOL)
    np.testing.assert_allclose(np.asarray(out), expected_out, atol=ATOL)


def test_scaled_dot_product_attention_fully_masked_row_is_zero_not_nan():
    q, k, v = rand(1, 2, 3, 4, seed=1), rand(1, 2, 3, 4, seed=2), rand(1, 2, 3, 4, seed=3)
    mask = np.ones((1, 1, 3, 3), bool)
    mask[:, :, 1, :] = False
    out, probs = (np.asarray(t) for t in scaled_dot_product_attention(q, k, v, mask))
    assert not np.isnan(out).any() and not np.isnan(probs).any()
    np.testing.assert_array_equal(probs[:, :, 1], 0.0)
    np.testing.assert_allclose(out[:, :, 0], np_attention(q, k, v)[0][:, :, 0], atol=ATOL)


# ---------------------------------------------------------------- multi-head attention


def test_multi_head_attention_self_matches_numpy_with_padding_mask():
    layer = MultiHeadAttention(num_heads=4, key_dim=8)
    x = rand(2, 6, HIDDEN)
    padding = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    out = np.asarray(layer(x, padding_mask=padding))
    np.testing.assert_allclose(out, np_mha(layer, x, mask=padding_to_4d(padding)), atol=ATOL)


def test_multi_head_attention_cross_matches_numpy_with_bias():
    layer = MultiHeadAttention(num_heads=2, key_dim=8, value_dim=4, output_dim=24)
    x, memory = rand(2, 4, HIDDEN, seed=1), rand(2, 7, 16, seed=2)
    padding = np.array([[1] * 7, [1, 1, 1, 0, 0, 0, 0]])
    bias = rand(1, 2, 4, 7, seed=3)
    out = np.asarray(layer(x, memory, padding_mask=padding, attention_bias=bias))
    assert out.shape == (2, 4, 24)
    assert tuple(layer.value_dense.kernel.shape) == (16, 2 * 4)
    expected = np_mha(layer, x, memory, mask=padding_to_4d(padding), bias=bias)
    np.testing.assert_allclose(out, expected, atol=ATOL)


def test_multi_head_attention_separate_key_matches_numpy():
    layer = MultiHeadAttention(num_heads=2, key_dim=8)
    x, value, key = rand(2, 3, HIDDEN, seed=1), rand(2, 5, 16, seed=2), rand(2, 5, 8, seed=3)
    out = np.asarray(layer(x, value, key))
    assert tuple(layer.key_dense.kernel.shape) == (8, 16)
    np.testing.assert_allclose(out, np_mha(layer, x, value, key=key), atol=ATOL)


def test_multi_head_attention_causal_matches_numpy():
    layer = MultiHeadAttention(num_heads=2, key_dim=16)
    x = rand(2, 5, HIDDEN)
    out = np.asarray(layer(x, use_causal_mask=True))
    mask = np.tril(np.ones((5, 5), bool))[None, None]
    np.testing.assert_allclose(out, np_mha(layer, x, mask=mask), atol=ATOL)


def test_multi_head_attention_projections_are_initialized_independently():
    layer = MultiHeadAttention(num_heads=2, key_dim=16)
    layer(rand(1, 3, HIDDEN))
    kernels = [d.kernel.numpy() for d in (layer.query_dense, layer.key_dense, layer.value_dense)]
    assert not np.allclose(kernels[0], kernels[1])
    assert not np.allclose(kernels[1], kernels[2])
    assert 0.01 < kernels[0].std() < 0.03  # TruncatedNormal(stddev=0.02)


def test_multi_head_attention_ignores_padded_positions():
    layer = MultiHeadAttention(num_heads=4, key_dim=8)
    x = rand(2, 6, HIDDEN)
    padding = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]])
    changed = np.where(padding[..., None].astype(bool), x, rand(2, 6, HIDDEN, seed=9) * 10)
    out, out_changed = (np.asarray(layer(v, padding_mask=padding)) for v in (x, changed))
    real = padding.astype(bool)
    np.testing.assert_allclose(out[real], out_changed[real], atol=1e-6)
    assert not np.allclose(out[~real], out_changed[~real])  # the change did reach the layer


def test_multi_head_attention_causal_ignores_future_positions():
    layer = MultiHeadAttention(num_heads=2, key_dim=16)
    x = rand(1, 6, HIDDEN)
    out = np.asarray(layer(x, use_causal_mask=True))
    for t in range(5):
        changed = x.copy()
        changed[:, t + 1 :] = rand(1, 5 - t, HIDDEN, seed=t + 10)
        out_changed = np.asarray(layer(changed, use_causal_mask=True))
        np.testing.assert_allclose(out[:, : t + 1], out_changed[:, : t + 1], atol=1e-6)
        assert not np.allclose(out[:, t + 1 :], out_changed[:, t + 1 :])


def test_multi_head_attention_scores_and_fully_masked_row():
    layer = MultiHeadAttention(num_heads=2, key_dim=16)
    x = rand(1, 4, HIDDEN)
    attention_mask = np.ones((1, 4, 4), bool)
    attention_mask[0, 2] = False  # query 2 may attend nothing
    attention_mask[0, :, 3] = False  # nobody attends key 3
    out, probs = layer(x, attention_mask=attention_mask, return_attention_scores=True)
    out, probs = np.asarray(out), np.asarray(probs)
    assert not np.isnan(out).any() and not np.isnan(probs).any()
    np.testing.assert_allclose(probs[0, :, [0, 1, 3]].sum(-1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(probs[0, :, 2], 0.0)
    np.testing.assert_array_equal(probs[..., 3], 0.0)
    # A row with no keys outputs just the output bias.
    np.testing.assert_allclose(out[0, 2], layer.output_dense.bias.numpy(), atol=1e-6)


# ---------------------------------------------------------------- encoder block


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_matches_numpy(norm_first):
    block = TransformerEncoderBlock(num_heads=4, intermediate_dim=64, norm_first=norm_first)
    x = rand(2, 5, HIDDEN)
    padding = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    block(x)  # build
    # Non-trivial layer norm parameters so both LN placements are exercised.
    for norm in (block.self_attention_layer_norm, block.output_layer_norm):
        norm.gamma.assign(1.0 + rand(HIDDEN, seed=7) * 0.1)
        norm.beta.assign(rand(HIDDEN, seed=8) * 0.1)
    out = np.asarray(block(x, padding_mask=padding))
    expected = np_encoder_block(block, x, padding_to_4d(padding))
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_encoder_block_post_ln_and_pre_ln_differ():
    x = rand(2, 5, HIDDEN)
    post = TransformerEncoderBlock(num_heads=4, intermediate_dim=64)
    pre = TransformerEncoderBlock(num_heads=4, intermediate_dim=64, norm_first=True)
    post(x), pre(x)
    pre.set_weights(post.get_weights())
    out_post, out_pre = np.asarray(post(x)), np.asarray(pre(x))
    assert not np.allclose(out_post, out_pre, atol=1e-3)
    # Post-LN output is normalized per position; pre-LN output is not.
    np.testing.assert_allclose(out_post.mean(-1), 0.0, atol=1e-4)
    assert np.abs(out_pre.mean(-1)).max() > 1e-3


def test_encoder_block_ignores_padded_positions():
    block = TransformerEncoderBlock(num_heads=4, intermediate_dim=64)
    x = rand(2, 6, HIDDEN)
    padding = np.array([[1, 1, 1, 1, 1, 0], [1, 1, 0, 0, 0, 0]])
    changed = np.where(padding[..., None].astype(bool), x, rand(2, 6, HIDDEN, seed=3) * 10)
    out, out_changed = (np.asarray(block(v, padding_mask=padding)) for v in (x, changed))
    real = padding.astype(bool)
    np.testing.assert_allclose(out[real], out_changed[real], atol=1e-6)


def test_encoder_block_attention_bias_is_used():
    block = TransformerEncoderBlock(num_heads=2, intermediate_dim=64)
    x = rand(1, 4, HIDDEN)
    bias = rand(1, 2, 4, 4, seed=4) * 5
    assert not np.allclose(np.asarray(block(x)), np.asarray(block(x, attention_bias=bias)))


def test_encoder_block_rejects_indivisible_hidden_size():
    block = TransformerEncoderBlock(num_heads=3, intermediate_dim=64)
    with pytest.raises(ValueError, match="divisible"):
        block(rand(1, 4, HIDDEN))


def test_encoder_block_dropout_only_in_training():
    block = TransformerEncoderBlock(num_heads=2, intermediate_dim=64, dropout=0.5)
    x = rand(2, 6, HIDDEN)
    np.testing.assert_array_equal(np.asarray(block(x)), np.asarray(block(x, training=False)))
    assert not np.allclose(np.asarray(block(x)), np.asarray(block(x, training=True)))


# ---------------------------------------------------------------- decoder block


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_block_matches_numpy(norm_first):
    block = TransformerDecoderBlock(num_heads=2, intermediate_dim=64, norm_first=norm_first)
    x, memory = rand(2, 4, HIDDEN, seed=1), rand(2, 6, HIDDEN, seed=2)
    decoder_padding = np.array([[1, 1, 1, 1], [1, 1, 1, 0]])
    encoder_padding = np.array([[1] * 6, [1, 1, 1, 1, 0, 0]])
    out = np.asarray(
        block(x, memory, decoder_padding_mask=decoder_padding, encoder_padding_mask=encoder_padding)
    )
    self_mask = padding_to_4d(decoder_padding) & np.tril(np.ones((4, 4), bool))
    expected = np_decoder_block(block, x, memory, self_mask, padding_to_4d(encoder_padding))
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_decoder_block_causal_ignores_future_positions():
    block = TransformerDecoderBlock(num_heads=2, intermediate_dim=64)
    x, memory = rand(1, 6, HIDDEN, seed=1), rand(1, 5, HIDDEN, seed=2)
    out = np.asarray(block(x, memory))
    for t in range(5):
        changed = x.copy()
        changed[:, t + 1 :] = rand(1, 5 - t, HIDDEN, seed=t + 10)
        out_changed = np.asarray(block(changed, memory))
        np.testing.assert_allclose(out[:, : t + 1], out_changed[:, : t + 1], atol=1e-6)
    # Without the causal mask the future does leak into position 0.
    full = np.asarray(block(x, memory, use_causal_mask=False))
    assert not np.allclose(full[:, 0], out[:, 0])


def test_decoder_block_ignores_padded_encoder_positions():
    block = TransformerDecoderBlock(num_heads=2, intermediate_dim=64)
    x, memory = rand(2, 4, HIDDEN, seed=1), rand(2, 6, HIDDEN, seed=2)
    encoder_padding = np.array([[1, 1, 1, 1, 1, 0], [1, 1, 0, 0, 0, 0]])
    changed = np.where(encoder_padding[..., None].astype(bool), memory, rand(2, 6, HIDDEN) * 10)
    out, out_changed = (
        np.asarray(block(x, m, encoder_padding_mask=encoder_padding)) for m in (memory, changed)
    )
    np.testing.assert_allclose(out, out_changed, atol=1e-6)


def test_decoder_block_without_cross_attention():
    block = TransformerDecoderBlock(num_heads=2, intermediate_dim=64, use_cross_attention=False)
    x = rand(1, 4, HIDDEN)
    block(x)
    assert not any("cross_attention" in w.path for w in block.weights)
    with pytest.raises(ValueError, match="use_cross_attention=False"):
        block(x, rand(1, 3, HIDDEN))


# ---------------------------------------------------------------- key/value cache


def test_causal_mask_with_query_start():
    np.testing.assert_array_equal(
        np.asarray(causal_mask(2, 5, query_start=1)), np.tril(np.ones((2, 5), bool), k=1)
    )


def run_cached(layer, x, prefill, max_length=8, **kwargs):
    """Prefill of `prefill` positions then one position per step; returns outputs, cache."""
    cache = np.zeros((x.shape[0], 2, max_length, layer.num_heads, layer.key_dim), "float32")
    out, cache = layer(x[:, :prefill], cache=cache, cache_update_index=0, **kwargs)
    outputs = [np.asarray(out)]
    for index in range(prefill, x.shape[1]):
        out, cache = layer(x[:, index : index + 1], cache=cache, cache_update_index=index, **kwargs)
        outputs.append(np.asarray(out))
    return np.concatenate(outputs, axis=1), np.asarray(cache)


@pytest.mark.parametrize("prefill", [1, 3])
def test_multi_head_attention_cache_equals_causal_attention(prefill):
    layer = MultiHeadAttention(num_heads=2, key_dim=16)
    x = rand(2, 6, HIDDEN)
    expected = np.asarray(layer(x, use_causal_mask=True))
    out, cache = run_cached(layer, x, prefill)
    np.testing.assert_allclose(out, expected, atol=ATOL)
    # Keys and values of all 6 positions are in the cache, in [B, 2, L, heads, d].
    keys = np_split_heads(np_dense(x, layer.key_dense), 2).transpose(0, 2, 1, 3)
    values = np_split_heads(np_dense(x, layer.value_dense), 2).transpose(0, 2, 1, 3)
    np.testing.assert_allclose(cache[:, 0, :6], keys, atol=ATOL)
    np.testing.assert_allclose(cache[:, 1, :6], values, atol=ATOL)
    np.testing.assert_array_equal(cache[:, :, 6:], 0.0)


def test_multi_head_attention_cache_with_bias_and_padding_over_cache_positions():
    layer = MultiHeadAttention(num_heads=2, key_dim=16)
    x = rand(1, 5, HIDDEN)
    padding = np.array([[1, 0, 1, 1, 1, 1, 1, 1]])  # over the 8 cache positions
    bias = rand(1, 2, 8, 8, seed=3)  # [.., query position, key position]
    expected = np.asarray(
        layer(x, padding_mask=padding[:, :5], attention_bias=bias[:, :, :5, :5], use_causal_mask=True)
    )
    cache = np.zeros((1, 2, 8, 2, 16), "float32")
    out, cache = layer(x[:, :3], cache=cache, cache_update_index=0, padding_mask=padding,
                       attention_bias=bias[:, :, :3])
    outputs = [np.asarray(out)]
    for index in (3, 4):
        out, cache = layer(x[:, index : index + 1], cache=cache, cache_update_index=index,
                           padding_mask=padding, attention_bias=bias[:, :, index : index + 1])
        outputs.append(np.asarray(out))
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), expected, atol=ATOL)


def test_multi_head_attention_precomputed_cross_attention_cache():
    layer = MultiHeadAttention(num_heads=2, key_dim=8)
    x, memory = rand(2, 3, HIDDEN, seed=1), rand(2, 6, 16, seed=2)
    padding = np.array([[1] * 6, [1, 1, 1, 0, 0, 0]])
    expected = np.asarray(layer(x, memory, padding_mask=padding))
    cache = layer.precompute_key_value(memory)
    assert tuple(cache.shape) == (2, 2, 6, 2, 8)
    out, same_cache = layer(x, cache=cache, padding_mask=padding)
    np.testing.assert_allclose(np.asarray(out), expected, atol=ATOL)
    assert same_cache is cache
    with pytest.raises(ValueError, match="value_dim"):
        MultiHeadAttention(num_heads=2, key_dim=8, value_dim=4)(x, cache=cache)


def test_multi_head_attention_scale_and_no_bias():
    layer = MultiHeadAttention(num_heads=2, key_dim=16, use_bias=False, scale=1.0)
    x = rand(2, 4, HIDDEN)
    out = np.asarray(layer(x))
    assert not any("bias" in w.path for w in layer.weights)
    h = layer.num_heads
    q, k, v = (np_split_heads(x @ d.kernel.numpy(), h)
               for d in (layer.query_dense, layer.key_dense, layer.value_dense))
    heads = np_softmax(q @ np.swapaxes(k, -1, -2)) @ v  # no 1/sqrt(d)
    expected = heads.transpose(0, 2, 1, 3).reshape(2, 4, -1) @ layer.output_dense.kernel.numpy()
    np.testing.assert_allclose(out, expected, atol=ATOL)


def test_decoder_block_cache_equals_uncached():
    block = TransformerDecoderBlock(num_heads=2, intermediate_dim=64, dropout=0.0)
    x, memory = rand(2, 5, HIDDEN, seed=1), rand(2, 6, HIDDEN, seed=2)
    encoder_padding = np.array([[1] * 6, [1, 1, 1, 1, 0, 0]])
    expected = np.asarray(block(x, memory, encoder_padding_mask=encoder_padding))
    cross_cache = block.cross_attention.precompute_key_value(memory)
    cache = np.zeros((2, 2, 8, 2, 16), "float32")
    out, cache = block(x[:, :2], memory, encoder_padding_mask=encoder_padding,
                       self_attention_cache=cache, self_attention_cache_update_index=0)
    outputs = [np.asarray(out)]
    for index in (2, 3, 4):
        out, cache = block(x[:, index : index + 1], encoder_padding_mask=encoder_padding,
                           self_attention_cache=cache, self_attention_cache_update_index=index,
                           cross_attention_cache=cross_cache)
        outputs.append(np.asarray(out))
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), expected, atol=ATOL)


# ---------------------------------------------------------------- T5 layers


def np_relative_position_bucket(relative, bidirectional=True, num_buckets=32, max_distance=128):
    """The Mesh TensorFlow / Hugging Face T5 formula, in NumPy float32."""
    n = -np.asarray(relative, np.int64)
    ret = np.zeros_like(n)
    if bidirectional:
        num_buckets //= 2
        ret += (n < 0) * num_buckets
        n = np.abs(n)
    else:
        n = np.maximum(n, 0)
    max_exact = num_buckets // 2
    with np.errstate(divide="ignore"):
        scaled = np.log(n.astype(np.float32) / np.float32(max_exact)) / np.float32(
            math.log(max_distance / max_exact)
        ) * np.float32(num_buckets - max_exact)
    large = np.minimum(max_exact + np.where(n < max_exact, 0, scaled).astype(np.int64), num_buckets - 1)
    return ret + np.where(n < max_exact, n, large)


def test_relative_position_bucket_hand_checked_values():
    relative = np.array([0, -1, 1, -7, -8, -20, 20, -200, 200])
    # Bidirectional: 16 buckets per direction, 8 exact; keys after the query from 16.
    np.testing.assert_array_equal(
        np.asarray(relative_position_bucket(relative)), [0, 1, 17, 7, 8, 10, 26, 15, 31]
    )
    # Unidirectional: all 32 buckets for the past, 16 exact; the future is bucket 0.
    np.testing.assert_array_equal(
        np.asarray(relative_position_bucket(np.array([5, 0, -5, -15, -16, -20, -1000]), False)),
        [0, 0, 5, 15, 16, 17, 31],
    )


@pytest.mark.parametrize("bidirectional", [True, False])
def test_relative_position_bucket_matches_numpy(bidirectional):
    relative = np.arange(-300, 301)
    for num_buckets, max_distance in ((32, 128), (8, 20)):
        actual = relative_position_bucket(relative, bidirectional, num_buckets, max_distance)
        expected = np_relative_position_bucket(relative, bidirectional, num_buckets, max_distance)
        np.testing.assert_array_equal(np.asarray(actual), expected)


def test_relative_position_bias_full_and_cached():
    layer = RelativePositionBias(num_heads=3, bidirectional=False)
    x = rand(1, 6, HIDDEN)
    full = np.asarray(layer(x))
    assert full.shape == (1, 3, 6, 6)
    table = layer.embeddings.numpy()
    relative = np.arange(6)[None, :] - np.arange(6)[:, None]
    expected = table[np_relative_position_bucket(relative, False)].transpose(2, 0, 1)[None]
    np.testing.assert_allclose(full, expected, atol=1e-6)
    # Queries at positions 4..5 against a 10-position cache: rows 4..5 of the 10 x 10 bias.
    cached = np.asarray(layer(x[:, :2], key_length=10, query_start=4))
    assert cached.shape == (1, 3, 2, 10)
    np.testing.assert_allclose(cached, np.asarray(layer(rand(1, 10, HIDDEN)))[:, :, 4:6], atol=1e-6)


def test_rms_normalization_matches_numpy():
    layer = RMSNormalization(epsilon=1e-6)
    x = rand(2, 3, HIDDEN) * 3
    layer(x)
    layer.scale.assign(1.0 + rand(HIDDEN, seed=2) * 0.1)
    expected = x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-6) * layer.scale.numpy()
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5, atol=1e-6)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    half = RMSNormalization()
    out = half(x)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert half.scale.dtype == "float32"
    unit_scale = x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(np.asarray(keras.ops.cast(out, "float32")), unit_scale, rtol=1e-2)


def np_gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def test_gated_gelu_feed_forward_matches_numpy():
    block = TransformerEncoderBlock(
        num_heads=2, intermediate_dim=48, feed_forward="gated", activation=gelu_approximate,
        use_bias=False,
    )
    x = rand(2, 5, HIDDEN)
    block(x)
    assert tuple(block.gate_dense.kernel.shape) == (HIDDEN, 48)
    assert not any(w.path.endswith("bias") for w in block.weights)
    out = np.asarray(block._feed_forward(x))
    kernels = (block.intermediate_dense, block.gate_dense, block.output_dense)
    w0, w1, wo = (d.kernel.numpy() for d in kernels)
    np.testing.assert_allclose(out, (np_gelu_tanh(x @ w0) * (x @ w1)) @ wo, atol=ATOL)


def test_t5_style_block_matches_numpy():
    block = TransformerDecoderBlock(
        num_heads=2, intermediate_dim=64, activation="relu", norm_first=True,
        normalization="rms_norm", use_bias=False, attention_scale=1.0, layer_norm_epsilon=1e-6,
    )
    x, memory = rand(2, 4, HIDDEN, seed=1), rand(2, 5, HIDDEN, seed=2)
    bias = rand(1, 2, 4, 4, seed=3)
    out = np.asarray(block(x, memory, self_attention_bias=bias))

    def rms(y, norm):
        return y / np.sqrt((y**2).mean(-1, keepdims=True) + 1e-6) * norm.scale.numpy()

    def attend(layer, q_in, kv_in, mask=None, extra=None):
        q, k, v = (np_split_heads(t @ d.kernel.numpy(), 2) for t, d in
                   ((q_in, layer.query_dense), (kv_in, layer.key_dense), (kv_in, layer.value_dense)))
        scores = q @ np.swapaxes(k, -1, -2) + (0 if extra is None else extra)
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        heads = np_softmax(scores) @ v
        return heads.transpose(0, 2, 1, 3).reshape(2, 4, -1) @ layer.output_dense.kernel.numpy()

    causal = np.tril(np.ones((4, 4), bool))[None, None]
    y = rms(x, block.self_attention_layer_norm)
    h = x + attend(block.self_attention, y, y, causal, bias)
    h = h + attend(block.cross_attention, rms(h, block.cross_attention_layer_norm), memory)
    y = rms(h, block.output_layer_norm)
    ffn = np.maximum(y @ block.intermediate_dense.kernel.numpy(), 0) @ block.output_dense.kernel.numpy()
    np.testing.assert_allclose(out, h + ffn, atol=1e-4)


def test_block_rejects_unknown_options():
    with pytest.raises(ValueError, match="normalization"):
        TransformerEncoderBlock(num_heads=2, intermediate_dim=8, normalization="batch_norm")
    with pytest.raises(ValueError, match="feed_forward"):
        TransformerDecoderBlock(num_heads=2, intermediate_dim=8, feed_forward="moe")


# ---------------------------------------------------------------- mixed precision


def test_encoder_block_mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        block = TransformerEncoderBlock(num_heads=4, intermediate_dim=64)
        attention = MultiHeadAttention(num_heads=2, key_dim=16)
        x = rand(2, 5, HIDDEN)
        padding = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
        out = block(x, padding_mask=padding)
        assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
        assert block.self_attention.query_dense.kernel.dtype == "float32"
        out = np.asarray(keras.ops.cast(out, "float32"))
        assert np.isfinite(out).all()
        # bf16 result is close to the float32 computation with the same weights.
        expected = np_encoder_block(block, x, padding_to_4d(padding))
        np.testing.assert_allclose(out, expected, atol=0.1)
        no_keys = np.zeros((2, 5, 5), bool)
        masked = attention(x, attention_mask=no_keys)
        assert keras.backend.standardize_dtype(masked.dtype) == "bfloat16"
        assert np.isfinite(np.asarray(keras.ops.cast(masked, "float32"))).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")


# ---------------------------------------------------------------- JAX backend


def test_layers_run_on_jax_backend():
    pytest.importorskip("jax")
    code = (
        "import os; os.environ['KERAS_BACKEND'] = 'jax'\n"
        "import numpy as np, keras\n"
        "from tfptlm.layers import TransformerEncoderBlock, MultiHeadAttention\n"
        "assert keras.backend.backend() == 'jax'\n"
        "x = np.random.rand(2, 5, 32).astype('float32')\n"
        "TransformerEncoderBlock(4, 64)(x, padding_mask=np.ones((2, 5)))\n"
        "MultiHeadAttention(2, 16)(x, use_causal_mask=True)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
