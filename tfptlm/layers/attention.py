"""Scaled dot-product attention, attention masks and multi-head attention.

Shapes use B = batch, H = heads, Tq / Tk = query / key length, d = head size.
Masks are boolean-like: True (or 1) means "may attend".

Example:
    >>> import numpy as np
    >>> layer = MultiHeadAttention(num_heads=2, key_dim=8)
    >>> x = np.random.rand(1, 4, 16).astype("float32")
    >>> padding_mask = np.array([[1, 1, 1, 0]])
    >>> tuple(layer(x, padding_mask=padding_mask).shape)
    (1, 4, 16)
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from tfptlm.layers.initializers import (
    DEFAULT_INITIALIZER,
    InitializerLike,
    clone_initializer,
    serialize_initializer,
)

# Scores are masked in float32, so this fill value is safe for every policy.
_MASK_FILL_VALUE = -1e9


def causal_mask(query_length: Any, key_length: Any, query_start: Any = None) -> Any:
    """Returns a bool [Tq, Tk] mask where query i may attend keys j <= query_start + i.

    By default (`query_start=None`) the triangle is aligned to the end of the
    keys, so when the keys hold `Tk - Tq` earlier positions, query i sits at
    position `i + Tk - Tq`. With a key/value cache of fixed length, pass the
    cache update index as `query_start` instead. Lengths and `query_start`
    may be ints or scalar tensors.

    Example:
        >>> causal_mask(2, 3)  # rows: [1, 1, 0], [1, 1, 1]
        >>> causal_mask(2, 4, query_start=1)  # rows: [1, 1, 0, 0], [1, 1, 1, 0]
    """
    if query_start is None:
        query_start = key_length - query_length
    query_positions = ops.arange(query_length, dtype="int32") + ops.cast(query_start, "int32")
    key_positions = ops.arange(key_length, dtype="int32")
    return ops.greater_equal(
        ops.expand_dims(query_positions, 1), ops.expand_dims(key_positions, 0)
    )


def merge_masks(
    padding_mask: Any = None,
    attention_mask: Any = None,
    use_causal_mask: bool = False,
    query_length: Any = None,
    key_length: Any = None,
    query_start: Any = None,
) -> Any:
    """Combines the given masks into one bool mask for 4-D attention scores.

    Args:
        padding_mask: [B, Tk], 1 for a real key token and 0 for padding.
        attention_mask: [B, Tq, Tk] (or already [B, 1, Tq, Tk]).
        use_causal_mask: whether to add :func:`causal_mask`.
        query_length, key_length: needed only when `use_causal_mask`.
        query_start: position of the first query for the causal mask (see
            :func:`causal_mask`); None aligns the queries to the last keys.

    Returns:
        None when no mask is given, else a bool tensor that broadcasts to
        [B, 1, Tq, Tk] (a padding mask alone gives [B, 1, 1, Tk], a causal
        mask alone [1, 1, Tq, Tk]).

    Example:
        >>> merge_masks(padding_mask=[[1, 1, 0]], use_causal_mask=True,
        ...             query_length=3, key_length=3)  # shape [1, 1, 3, 3]
    """
    masks = []
    if padding_mask is not None:
        padding_mask = ops.cast(padding_mask, "bool")
        masks.append(ops.expand_dims(ops.expand_dims(padding_mask, 1), 1))
    if attention_mask is not None:
        attention_mask = ops.cast(attention_mask, "bool")
        if len(attention_mask.shape) == 3:
            attention_mask = ops.expand_dims(attention_mask, 1)
        masks.append(attention_mask)
    if use_causal_mask:
        if query_length is None or key_length is None:
            raise ValueError(
                "`merge_masks(use_causal_mask=True)` needs `query_length` and "
                f"`key_length`. Received: query_length={query_length}, "
                f"key_length={key_length}."
            )
        mask = causal_mask(query_length, key_length, query_start)
        masks.append(ops.expand_dims(ops.expand_dims(mask, 0), 0))
    if not masks:
        return None
    merged = masks[0]
    for mask in masks[1:]:
        merged = ops.logical_and(merged, mask)
    return merged


def scaled_dot_product_attention(
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any = None,
    attention_bias: Any = None,
    dropout_layer: keras.layers.Layer | None = None,
    training: bool | None = None,
    scale: float | None = None,
) -> tuple[Any, Any]:
    """Computes softmax(Q K^T * scale + bias, masked) V.

    Scores, bias, mask and softmax are computed in float32 and the
    probabilities are cast back to the value dtype (mixed precision safe).
    Masked keys get probability exactly 0; a fully masked query row gets all
    zero probabilities (so an all-zero output) instead of NaN.

    Args:
        query: [B, H, Tq, d]. key: [B, H, Tk, d]. value: [B, H, Tk, dv].
        attention_mask: bool-like, broadcastable to [B, 1, Tq, Tk]; True = attend.
        attention_bias: additive, broadcastable to [B, H, Tq, Tk].
        dropout_layer: optional dropout applied to the probabilities.
        training: passed to `dropout_layer`.
        scale: score scale; defaults to 1 / sqrt(d) (T5 uses 1.0).

    Returns:
        (output [B, H, Tq, dv], probabilities [B, H, Tq, Tk] before dropout).

    Example:
        >>> q = k = v = np.random.rand(1, 2, 3, 4).astype("float32")
        >>> out, probs = scaled_dot_product_attention(q, k, v)
    """
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    query = ops.multiply(query, ops.cast(scale, query.dtype))
    scores = ops.cast(ops.einsum("bhqd,bhkd->bhqk", query, key), "float32")
    if attention_bias is not None:
        scores = scores + ops.cast(attention_bias, "float32")
    if attention_mask is not None:
        attention_mask = ops.cast(attention_mask, "bool")
        scores = ops.where(attention_mask, scores, _MASK_FILL_VALUE)
    probabilities = ops.softmax(scores, axis=-1)
    if attention_mask is not None:
        # Exact zeros for masked keys; also turns fully masked rows into zeros.
        probabilities = ops.where(attention_mask, probabilities, 0.0)
    probabilities = ops.cast(probabilities, value.dtype)
    dropped = probabilities
    if dropout_layer is not None:
        dropped = dropout_layer(probabilities, training=training)
    output = ops.einsum("bhqk,bhkd->bhqd", dropped, value)
    return output, probabilities


@keras.saving.register_keras_serializable(package="tfptlm")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention with BERT-style separate q/k/v projections and a KV cache.

    Sub-layers (all `keras.layers.Dense`, found as attributes):
      - `query_dense` (name "query"): kernel [query_dim, num_heads * key_dim]
      - `key_dense` (name "key"): kernel [key_input_dim, num_heads * key_dim]
      - `value_dense` (name "value"): kernel [value_input_dim, num_heads * value_dim]
      - `output_dense` (name "output_dense"): kernel [num_heads * value_dim, output_dim]
    Heads are contiguous slices of the projection (head h uses columns
    h*key_dim:(h+1)*key_dim), the same layout as Hugging Face BERT, whose
    `nn.Linear.weight` is the transpose of these kernels.

    Key/value cache (needs `value_dim == key_dim`): a tensor
    [B, 2, L, num_heads, key_dim] holding the projected keys (`cache[:, 0]`)
    and values (`cache[:, 1]`) of L positions.
      - Self-attention decoding: pass `cache` (L = max length) and
        `cache_update_index` (scalar int). The keys/values of the T query
        tokens are written at positions [index, index + T), and the queries
        (query i sits at position index + i) attend the whole cache with a
        causal mask (key position <= query position), so the unwritten slots
        are never seen; `padding_mask` / `attention_mask` then cover the L
        cache positions.
      - Cross-attention: pass `cache` from :meth:`precompute_key_value` of the
        encoder outputs and no `cache_update_index`; `value`/`key` are then
        ignored and nothing is recomputed.
    With a cache the call returns `(output, cache)` (the updated cache, or
    the given one for cross-attention), or `(output, probabilities, cache)`
    with `return_attention_scores`.

    Args:
        num_heads: number of attention heads.
        key_dim: size of each query/key head.
        value_dim: size of each value head; defaults to `key_dim`.
        output_dim: size of the output; defaults to the query's last dim.
        dropout: dropout rate on the attention probabilities.
        use_bias: whether the projections have biases.
        scale: score scale; None means 1 / sqrt(key_dim) (T5 uses 1.0).
        kernel_initializer, bias_initializer: for all projections.

    Call args:
        query: [B, Tq, Dq]. value: [B, Tk, Dv], defaults to `query`.
        key: [B, Tk, Dk], defaults to `value`.
        padding_mask: [B, Tk], 1 for real key tokens.
        attention_mask: [B, Tq, Tk], 1 where query may attend key.
        attention_bias: additive, broadcastable to [B, H, Tq, Tk].
        use_causal_mask: also forbid attending to later positions.
        return_attention_scores: also return the probabilities [B, H, Tq, Tk].
        cache: [B, 2, L, num_heads, key_dim] key/value cache (see above).
        cache_update_index: scalar int, position of the first query token.

    Example:
        >>> layer = MultiHeadAttention(num_heads=2, key_dim=8)
        >>> x = np.random.rand(2, 5, 16).astype("float32")
        >>> memory = np.random.rand(2, 7, 16).astype("float32")
        >>> out, probs = layer(x, memory, return_attention_scores=True)
        >>> tuple(out.shape), tuple(probs.shape)
        ((2, 5, 16), (2, 2, 5, 7))
        >>> cache = np.zeros((2, 2, 10, 2, 8), "float32")  # 10 positions
        >>> out, cache = layer(x, cache=cache, cache_update_index=0)  # prefill
        >>> out, cache = layer(x[:, :1], cache=cache, cache_update_index=5)  # one step
    """

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        output_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        scale: float | None = None,
        kernel_initializer: InitializerLike = DEFAULT_INITIALIZER,
        bias_initializer: InitializerLike = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = key_dim if value_dim is None else value_dim
        self.output_dim = output_dim
        self.dropout = dropout
        self.use_bias = use_bias
        self.scale = scale
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.dropout_layer = keras.layers.Dropout(
            dropout, dtype=self.dtype_policy, name="attention_dropout"
        )

    def _dense(self, units: int, name: str) -> keras.layers.Dense:
        return keras.layers.Dense(
            units,
            use_bias=self.use_bias,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, query_shape, value_shape=None, key_shape=None) -> None:
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        self.query_dense = self._dense(self.num_heads * self.key_dim, "query")
        self.query_dense.build(query_shape)
        self.key_dense = self._dense(self.num_heads * self.key_dim, "key")
        self.key_dense.build(key_shape)
        self.value_dense = self._dense(self.num_heads * self.value_dim, "value")
        self.value_dense.build(value_shape)
        output_dim = self.output_dim or query_shape[-1]
        self.output_dense = self._dense(output_dim, "output_dense")
        self.output_dense.build(tuple(query_shape[:-1]) + (self.num_heads * self.value_dim,))
        self.built = True

    def _split_heads(self, x: Any, head_dim: int) -> Any:
        """[B, T, H * d] -> [B, T, H, d] (the cache layout)."""
        return ops.reshape(x, (-1, ops.shape(x)[1], self.num_heads, head_dim))

    def _merge_heads(self, x: Any) -> Any:
        """[B, H, T, d] -> [B, T, H * d]."""
        x = ops.transpose(x, (0, 2, 1, 3))
        return ops.reshape(x, (-1, ops.shape(x)[1], self.num_heads * x.shape[-1]))

    def _project_key_value(self, value: Any, key: Any) -> tuple[Any, Any]:
        """Returns the projected keys and values, each [B, Tk, H, d]."""
        k = self._split_heads(self.key_dense(key), self.key_dim)
        v = self._split_heads(self.value_dense(value), self.value_dim)
        return k, v

    def _check_cacheable(self) -> None:
        if self.value_dim != self.key_dim:
            raise ValueError(
                f"Layer '{self.name}' has value_dim={self.value_dim} != key_dim="
                f"{self.key_dim}; the key/value cache needs equal sizes."
            )

    def precompute_key_value(self, value: Any, key: Any = None) -> Any:
        """Returns the cache [B, 2, S, num_heads, key_dim] of fixed keys/values.

        Use it once for cross-attention over encoder outputs [B, S, D] and
        pass the result as `cache` (without `cache_update_index`) every step.

        Example:
            >>> cross_cache = layer.precompute_key_value(encoder_outputs)
            >>> out, _ = layer(x, cache=cross_cache, padding_mask=encoder_mask)
        """
        self._check_cacheable()
        key = value if key is None else key
        return ops.stack(self._project_key_value(value, key), axis=1)

    def call(
        self,
        query: Any,
        value: Any = None,
        key: Any = None,
        padding_mask: Any = None,
        attention_mask: Any = None,
        attention_bias: Any = None,
        use_causal_mask: bool = False,
        training: bool | None = None,
        return_attention_scores: bool = False,
        cache: Any = None,
        cache_update_index: Any = None,
    ) -> Any:
        value = query if value is None else value
        key = value if key is None else key
        q = self._split_heads(self.query_dense(query), self.key_dim)
        query_start = None
        if cache is None:
            k, v = self._project_key_value(value, key)
        elif cache_update_index is None:
            self._check_cacheable()
            k, v = cache[:, 0], cache[:, 1]
        else:
            self._check_cacheable()
            k, v = self._project_key_value(value, key)
            start = [0, cache_update_index, 0, 0]
            k = ops.slice_update(cache[:, 0], start, ops.cast(k, cache.dtype))
            v = ops.slice_update(cache[:, 1], start, ops.cast(v, cache.dtype))
            cache = ops.stack([k, v], axis=1)
            use_causal_mask, query_start = True, cache_update_index
        q, k, v = (ops.transpose(t, (0, 2, 1, 3)) for t in (q, k, v))
        mask = merge_masks(
            padding_mask=padding_mask,
            attention_mask=attention_mask,
            use_causal_mask=use_causal_mask,
            query_length=ops.shape(q)[2],
            key_length=ops.shape(k)[2],
            query_start=query_start,
        )
        output, probabilities = scaled_dot_product_attention(
            q,
            k,
            v,
            attention_mask=mask,
            attention_bias=attention_bias,
            dropout_layer=self.dropout_layer,
            training=training,
            scale=self.scale,
        )
        output = self.output_dense(self._merge_heads(output))
        results = (output,)
        if return_attention_scores:
            results += (probabilities,)
        if cache is not None:
            results += (cache,)
        return results[0] if len(results) == 1 else results

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "value_dim": self.value_dim,
                "output_dim": self.output_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "scale": self.scale,
                "kernel_initializer": serialize_initializer(self.kernel_initializer),
                "bias_initializer": serialize_initializer(self.bias_initializer),
            }
        )
        return config
