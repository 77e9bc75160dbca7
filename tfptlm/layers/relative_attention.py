"""XLNet two-stream relative attention (Yang et al. 2019) and its Transformer block.

Shapes use B = batch, T = sequence length, P = predicted (target) positions,
N = heads, d = head size, H = hidden size. Masks follow tfptlm's convention:
1 (True) means "may attend".

Scores of query position i against key j (Transformer-XL / XLNet):

    score(i, j) = [(q_i + r_w_bias) . k_j                       content
                 + (q_i + r_r_bias) . k_r[i - j]                 relative position
                 + (q_i + r_s_bias) . seg_embed[s(i, j)]] / sqrt(d)  relative segment

with k_r the projected sinusoidal encoding of the distance i - j and
s(i, j) = 0 when i and j are in the same segment, 1 otherwise.

Two streams share every weight: the content stream h (one row per token)
and the query stream g (one row per target position, see
:class:`RelativeAttention`); both use keys and values projected from h.

Example:
    >>> block = RelativeAttentionBlock(num_heads=2, intermediate_dim=64)
    >>> h = np.random.rand(1, 5, 32).astype("float32")
    >>> positions = RelativePositionEncoding(hidden_dim=32)(h)       # [9, 32]
    >>> segment_ids = np.array([[0, 0, 0, 1, 1]])
    >>> tuple(block(h, positions, segment_ids).shape)
    (1, 5, 32)
    >>> g = np.random.rand(1, 2, 32).astype("float32")
    >>> h, g = block(h, positions, segment_ids, query=g,
    ...              query_positions=np.array([[2, 4]]))
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from tfptlm.layers.attention import MultiHeadAttention, merge_masks, scaled_dot_product_attention
from tfptlm.layers.encoder_block import TransformerEncoderBlock, head_size
from tfptlm.layers.initializers import clone_initializer


@keras.saving.register_keras_serializable(package="tfptlm")
class RelativePositionEncoding(keras.layers.Layer):
    """Sinusoidal encodings of the relative distances T-1, T-2, ..., -(T-1).

    Row r of the output ``[2T - 1, hidden_dim]`` encodes the distance
    i - j = T - 1 - r between a query i and a key j:
    ``[sin(distance * f), cos(distance * f)]`` with the frequencies
    ``f_k = 10000 ** (-2k / hidden_dim)``, k < hidden_dim / 2 (Transformer-XL).

    No weights; computed in float32 and cast to the compute dtype. It also
    checks the length: an input whose static length exceeds
    `max_sequence_length` raises a ValueError (a dynamic length, e.g. in a
    SavedModel with an unknown length, is not checked).

    Args:
        hidden_dim: encoding size (even).
        max_sequence_length: longest accepted input, or None for no limit.

    Call args:
        hidden: [B, T, ...]; only its length T is used.

    Example:
        >>> encoding = RelativePositionEncoding(hidden_dim=8, max_sequence_length=16)
        >>> tuple(encoding(np.zeros((2, 5, 8), "float32")).shape)
        (9, 8)
    """

    def __init__(self, hidden_dim: int, max_sequence_length: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if hidden_dim % 2 != 0:
            raise ValueError(
                f"hidden_dim must be even for sinusoidal encodings. Received: {hidden_dim}."
            )
        self.hidden_dim = hidden_dim
        self.max_sequence_length = max_sequence_length

    def call(self, hidden: Any) -> Any:
        length = hidden.shape[1]
        if (
            self.max_sequence_length is not None
            and isinstance(length, int)
            and length > self.max_sequence_length
        ):
            raise ValueError(
                f"Input sequence of length {length} is longer than max_sequence_length="
                f"{self.max_sequence_length} of layer '{self.name}'. Truncate the inputs "
                "or use a larger max_sequence_length."
            )
        length = ops.shape(hidden)[1]
        distances = ops.cast(ops.arange(length - 1, -length, -1), "float32")
        exponents = ops.arange(0, self.hidden_dim, 2, dtype="float32") / self.hidden_dim
        frequencies = ops.power(10000.0, -exponents)
        angles = ops.expand_dims(distances, 1) * ops.expand_dims(frequencies, 0)
        encoding = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)
        return ops.cast(encoding, self.compute_dtype)

    def compute_output_shape(self, hidden_shape) -> tuple:
        length = hidden_shape[1]
        return (None if length is None else 2 * length - 1, self.hidden_dim)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {"hidden_dim": self.hidden_dim, "max_sequence_length": self.max_sequence_length}
        )
        return config


@keras.saving.register_keras_serializable(package="tfptlm")
class RelativeAttention(MultiHeadAttention):
    """Multi-head attention with XLNet's relative position and segment terms, one or two streams.

    Content stream: every token i of `content` [B, T, H] attends the keys
    allowed by `padding_mask` [B, T] and `attention_mask` [B, T, T]
    (default: all real keys, i.e. bidirectional).

    Query stream (pretraining): `query` [B, P, H] holds one row per target
    position `query_positions` [B, P]. Row p attends, among the content keys,
    those that the content row of its position may attend, *except that
    position itself*: with a permutation mask (content i sees j iff j is not
    later than i in the factorization order), the query stream of a target
    sees exactly the tokens strictly before it, never its own content.

    Weights (per layer, as in the released XLNet checkpoints): the `query`,
    `key`, `value`, `output_dense` projections of :class:`MultiHeadAttention`
    (no biases by default, as in XLNet), `position` (projection of the
    sinusoidal encodings, kernel [H, N * d]), `r_w_bias`, `r_r_bias`,
    `r_s_bias` [N, d] and `seg_embed` [2, N, d] (row 0: same segment).

    The relative-position term is computed for all 2T - 1 distances
    ([B, N, Tq, 2T - 1]) and then "shifted" by a gather (`take_along_axis`)
    of the column T - 1 - (i - j) for each query position i and key j; the
    same gather serves the content stream (i = 0..T-1) and the scattered
    target positions of the query stream.

    Args:
        num_heads: attention heads N.
        key_dim: head size d.
        **kwargs: the other :class:`MultiHeadAttention` arguments
            (`use_bias` defaults to False here).

    Call args:
        content: [B, T, H] content stream (keys and values come from it).
        position_encoding: [2T - 1, H'] from :class:`RelativePositionEncoding`.
        segment_ids: int [B, T].
        padding_mask: [B, T], 1 for real tokens.
        attention_mask: [B, T, T], 1 where content i may attend key j.
        query: [B, P, H] query stream, or None for the content stream only.
        query_positions: int [B, P], the positions of the query rows.

    Returns:
        The content output [B, T, H], or (content output, query output
        [B, P, H]) when `query` is given.

    Example:
        >>> layer = RelativeAttention(num_heads=2, key_dim=8)
        >>> h = np.random.rand(1, 4, 16).astype("float32")
        >>> r = RelativePositionEncoding(16)(h)
        >>> tuple(layer(h, r, np.zeros((1, 4), "int32")).shape)
        (1, 4, 16)
    """

    def __init__(self, num_heads: int, key_dim: int, **kwargs: Any) -> None:
        kwargs.setdefault("use_bias", False)
        super().__init__(num_heads, key_dim, **kwargs)

    def build(self, content_shape, position_encoding_shape=None) -> None:
        super().build(content_shape)
        encoding_dim = content_shape[-1]
        if position_encoding_shape is not None:
            encoding_dim = position_encoding_shape[-1]
        self.position_dense = self._dense(self.num_heads * self.key_dim, "position")
        self.position_dense.build((None, encoding_dim))
        head_shape = (self.num_heads, self.key_dim)
        for name in ("r_w_bias", "r_r_bias", "r_s_bias"):
            setattr(self, name, self._weight(head_shape, name))
        self.seg_embed = self._weight((2,) + head_shape, "seg_embed")
        self.built = True

    def _weight(self, shape: tuple, name: str):
        return self.add_weight(
            shape=shape, initializer=clone_initializer(self.kernel_initializer), name=name
        )

    def call(
        self,
        content: Any,
        position_encoding: Any,
        segment_ids: Any,
        padding_mask: Any = None,
        attention_mask: Any = None,
        query: Any = None,
        query_positions: Any = None,
        training: bool | None = None,
    ) -> Any:
        key, value = self._project_key_value(content, content)
        position_key = ops.reshape(
            self.position_dense(position_encoding), (-1, self.num_heads, self.key_dim)
        )
        projected = (key, value, position_key, segment_ids, padding_mask)
        length = ops.shape(content)[1]
        content_positions = ops.expand_dims(ops.arange(length, dtype="int32"), 0)
        content_output = self._attend(
            content, content_positions, segment_ids, attention_mask, projected, training
        )
        if query is None:
            return content_output
        query_positions = ops.cast(query_positions, "int32")
        query_segments = ops.take_along_axis(ops.cast(segment_ids, "int32"), query_positions, 1)
        not_itself = ops.not_equal(
            ops.expand_dims(query_positions, -1), ops.arange(length, dtype="int32")
        )
        query_mask = not_itself
        if attention_mask is not None:
            rows = ops.take_along_axis(
                ops.cast(attention_mask, "bool"), ops.expand_dims(query_positions, -1), 1
            )
            query_mask = ops.logical_and(rows, not_itself)
        query_output = self._attend(
            query, query_positions, query_segments, query_mask, projected, training
        )
        return content_output, query_output

    def _attend(
        self,
        stream: Any,
        positions: Any,
        segments: Any,
        attention_mask: Any,
        projected: tuple,
        training: bool | None,
    ) -> Any:
        """Attention of the rows of `stream` (at `positions`, in `segments`) over the keys."""
        key, value, position_key, segment_ids, padding_mask = projected
        q = self._split_heads(self.query_dense(stream), self.key_dim)  # [B, Tq, N, d]
        dtype = q.dtype
        scale = self.scale if self.scale is not None else self.key_dim**-0.5

        # Relative positions: scores for all 2T - 1 distances, then pick i - j.
        position_scores = ops.einsum(
            "bqnd,rnd->bnqr", q + ops.cast(self.r_r_bias, dtype), position_key
        )
        key_length = ops.shape(key)[1]
        distance_column = (
            (key_length - 1)
            - ops.expand_dims(positions, -1)
            + ops.arange(key_length, dtype="int32")
        )  # [B or 1, Tq, Tk]
        position_scores = ops.take_along_axis(
            position_scores, ops.expand_dims(distance_column, 1), axis=-1
        )

        # Relative segments: one score for "same segment", one for "different".
        segment_scores = ops.einsum(
            "bqnd,snd->bnqs", q + ops.cast(self.r_s_bias, dtype), ops.cast(self.seg_embed, dtype)
        )
        different = ops.not_equal(
            ops.expand_dims(ops.cast(segments, "int32"), -1),
            ops.expand_dims(ops.cast(segment_ids, "int32"), 1),
        )  # [B, Tq, Tk]
        segment_scores = ops.where(
            ops.expand_dims(different, 1), segment_scores[..., 1:], segment_scores[..., :1]
        )

        mask = merge_masks(padding_mask=padding_mask, attention_mask=attention_mask)
        output, _ = scaled_dot_product_attention(
            ops.transpose(q + ops.cast(self.r_w_bias, dtype), (0, 2, 1, 3)),
            ops.transpose(key, (0, 2, 1, 3)),
            ops.transpose(value, (0, 2, 1, 3)),
            attention_mask=mask,
            attention_bias=(position_scores + segment_scores) * ops.cast(scale, dtype),
            dropout_layer=self.dropout_layer,
            training=training,
            scale=scale,
        )
        return self.output_dense(self._merge_heads(output))


@keras.saving.register_keras_serializable(package="tfptlm")
class RelativeAttentionBlock(TransformerEncoderBlock):
    """One XLNet layer: post-LN relative attention + feed-forward, on one or two streams.

    For each stream x (content h, and query g when given), with shared weights:
        x = LN(x + Dropout(RelativeAttention(x, keys/values from h)))
        x = LN(x + Dropout(FFN(x)))

    Sub-layers as :class:`TransformerEncoderBlock` (`self_attention` is a
    :class:`RelativeAttention` whose projections have no biases, as in XLNet;
    `use_bias` applies to the feed-forward only). XLNet blocks are post-LN:
    `norm_first=True` is rejected.

    Args: as :class:`TransformerEncoderBlock`.

    Call args:
        content: [B, T, H]. position_encoding: [2T - 1, H].
        segment_ids: int [B, T]. padding_mask: [B, T], 1 for real tokens.
        attention_mask: [B, T, T] content-stream mask (1 = may attend).
        query: [B, P, H] query stream or None. query_positions: int [B, P].

    Returns:
        The new content stream, or (content, query) when `query` is given.

    Example:
        >>> block = RelativeAttentionBlock(num_heads=2, intermediate_dim=64)
        >>> h = np.random.rand(2, 6, 32).astype("float32")
        >>> r = RelativePositionEncoding(32)(h)
        >>> tuple(block(h, r, np.zeros((2, 6), "int32")).shape)
        (2, 6, 32)
    """

    def __init__(self, num_heads: int, intermediate_dim: int, **kwargs: Any) -> None:
        if kwargs.get("norm_first"):
            raise ValueError("RelativeAttentionBlock is post-LN (XLNet); norm_first must be False.")
        super().__init__(num_heads, intermediate_dim, **kwargs)

    def _attention(self, hidden_dim: int, name: str) -> RelativeAttention:
        return RelativeAttention(
            num_heads=self.num_heads,
            key_dim=head_size(hidden_dim, self.num_heads),
            dropout=self.attention_dropout,
            scale=self.attention_scale,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, content_shape, position_encoding_shape=None) -> None:
        self._build_self_attention(content_shape)
        self._build_feed_forward(content_shape)
        self.built = True

    def _stream_output(self, x: Any, attended: Any, training: bool | None) -> Any:
        x = self.self_attention_layer_norm(
            x + self.self_attention_dropout(attended, training=training)
        )
        return self._feed_forward_sublayer(x, training)

    def call(
        self,
        content: Any,
        position_encoding: Any,
        segment_ids: Any,
        padding_mask: Any = None,
        attention_mask: Any = None,
        query: Any = None,
        query_positions: Any = None,
        training: bool | None = None,
    ) -> Any:
        attended = self.self_attention(
            content,
            position_encoding,
            segment_ids,
            padding_mask=padding_mask,
            attention_mask=attention_mask,
            query=query,
            query_positions=query_positions,
            training=training,
        )
        if query is None:
            return self._stream_output(content, attended, training)
        content_attended, query_attended = attended
        return (
            self._stream_output(content, content_attended, training),
            self._stream_output(query, query_attended, training),
        )
