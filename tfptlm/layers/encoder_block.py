"""Transformer encoder block: self-attention + feed-forward, post-LN or pre-LN."""

from __future__ import annotations

from typing import Any

import keras

from tfptlm.layers.attention import MultiHeadAttention
from tfptlm.layers.gather import gather_positions
from tfptlm.layers.initializers import (
    DEFAULT_INITIALIZER,
    InitializerLike,
    clone_initializer,
    serialize_initializer,
)
from tfptlm.layers.normalization import RMSNormalization
from tfptlm.layers.residual import residual_sublayer

NORMALIZATIONS = ("layer_norm", "rms_norm")
FEED_FORWARDS = ("mlp", "gated")
#: The sub-layers of each residual step (layer norm and dropout included), as
#: taken from another block by `share_attention_with` / `share_feed_forward_with`.
ATTENTION_SUBLAYERS = ("self_attention", "self_attention_layer_norm", "self_attention_dropout")
FEED_FORWARD_SUBLAYERS = (
    "intermediate_dense",
    "gate_dense",
    "output_dense",
    "output_layer_norm",
    "output_dropout",
)


def head_size(hidden_dim: int, num_heads: int) -> int:
    """Returns hidden_dim // num_heads, or raises if it does not divide evenly."""
    if hidden_dim % num_heads != 0:
        raise ValueError(
            f"The hidden size ({hidden_dim}) must be divisible by num_heads "
            f"({num_heads})."
        )
    return hidden_dim // num_heads


@keras.saving.register_keras_serializable(package="tfptlm")
class TransformerEncoderBlock(keras.layers.Layer):
    """One Transformer encoder layer (BERT layout by default).

    Post-LN (`norm_first=False`, BERT):
        x = LN(x + Dropout(SelfAttention(x)))
        x = LN(x + Dropout(FFN(x)))
    Pre-LN (`norm_first=True`):
        x = x + Dropout(SelfAttention(LN(x)))
        x = x + Dropout(FFN(LN(x)))
    with FFN(x) = output_dense(activation(intermediate_dense(x))) for
    `feed_forward="mlp"`, or the gated unit of T5.1.1 (Shazeer 2020) for
    `feed_forward="gated"`:
        FFN(x) = output_dense(activation(intermediate_dense(x)) * gate_dense(x))
    (GEGLU with `activation=gelu_approximate`). LN is a LayerNormalization
    (`normalization="layer_norm"`) or :class:`RMSNormalization` ("rms_norm").

    The hidden size comes from the input; head size = hidden // num_heads.
    Sub-layers: `self_attention` (:class:`MultiHeadAttention`),
    `self_attention_layer_norm`, `intermediate_dense` [H, intermediate_dim],
    `gate_dense` [H, intermediate_dim] (gated only), `output_dense`
    [intermediate_dim, H], `output_layer_norm`.

    Args:
        num_heads: attention heads.
        intermediate_dim: inner size of the feed-forward network.
        activation: feed-forward activation; "gelu" is the exact (erf) GELU.
        dropout: dropout after each sub-layer.
        attention_dropout: dropout on attention probabilities; defaults to `dropout`.
        layer_norm_epsilon: epsilon of the layer norms.
        norm_first: pre-LN when True, post-LN when False.
        kernel_initializer: for all dense kernels (biases start at zero).
        normalization: "layer_norm" or "rms_norm" (T5).
        use_bias: whether the attention and feed-forward projections have biases.
        feed_forward: "mlp" or "gated" (see above).
        attention_scale: score scale of the attention; None is 1 / sqrt(head
            size), T5 uses 1.0.
        share_attention_with: an already built block whose attention step
            (`ATTENTION_SUBLAYERS`: attention and its layer norm) this block
            uses instead of its own (ALBERT's cross-layer sharing).
        share_feed_forward_with: likewise for the feed-forward step
            (`FEED_FORWARD_SUBLAYERS`).

    As with a tied head, the shared block is not part of `get_config`: the
    model that owns both blocks passes it again when it is rebuilt;
    deserialized alone, a block owns all its sub-layers.

    Call args:
        inputs: [B, T, H]. padding_mask: [B, T], 1 for real tokens.
        attention_mask: [B, T, T]. attention_bias: broadcastable to [B, heads, T, T].
        query_positions: optional int [B, P]: compute the block's output only at
            these positions (queries there attend all T keys), returning
            [B, P, H]; exact, and cheaper when only a few outputs are needed
            (the last block of masked-LM pretraining). Not with `attention_bias`.

    Example:
        >>> block = TransformerEncoderBlock(num_heads=2, intermediate_dim=64)
        >>> x = np.random.rand(2, 6, 32).astype("float32")
        >>> tuple(block(x, padding_mask=np.ones((2, 6))).shape)
        (2, 6, 32)
    """

    def __init__(
        self,
        num_heads: int,
        intermediate_dim: int,
        activation: Any = "gelu",
        dropout: float = 0.1,
        attention_dropout: float | None = None,
        layer_norm_epsilon: float = 1e-12,
        norm_first: bool = False,
        kernel_initializer: InitializerLike = DEFAULT_INITIALIZER,
        normalization: str = "layer_norm",
        use_bias: bool = True,
        feed_forward: str = "mlp",
        attention_scale: float | None = None,
        share_attention_with: TransformerEncoderBlock | None = None,
        share_feed_forward_with: TransformerEncoderBlock | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}. Received: {normalization!r}."
            )
        if feed_forward not in FEED_FORWARDS:
            raise ValueError(
                f"feed_forward must be one of {FEED_FORWARDS}. Received: {feed_forward!r}."
            )
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.activation = keras.activations.get(activation)
        self.dropout = dropout
        self.attention_dropout = dropout if attention_dropout is None else attention_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.norm_first = norm_first
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.normalization = normalization
        self.use_bias = use_bias
        self.feed_forward = feed_forward
        self.attention_scale = attention_scale
        self.shares_attention = self._share(share_attention_with, ATTENTION_SUBLAYERS)
        self.shares_feed_forward = self._share(share_feed_forward_with, FEED_FORWARD_SUBLAYERS)

    def _share(self, source: TransformerEncoderBlock | None, names: tuple[str, ...]) -> bool:
        """Takes the sub-layers `names` of the built block `source`; False if there is none."""
        if source is None:
            return False
        if not (isinstance(source, TransformerEncoderBlock) and source.built):
            raise ValueError(
                f"Block '{self.name}' can only share the sub-layers of a built "
                f"TransformerEncoderBlock; received {source!r}. Build it first."
            )
        for name in names:
            if hasattr(source, name):
                setattr(self, name, getattr(source, name))
        return True

    def _attention(self, hidden_dim: int, name: str) -> MultiHeadAttention:
        return MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=head_size(hidden_dim, self.num_heads),
            dropout=self.attention_dropout,
            use_bias=self.use_bias,
            scale=self.attention_scale,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def _layer_norm(self, name: str) -> keras.layers.Layer:
        if self.normalization == "rms_norm":
            return RMSNormalization(
                epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
            )
        return keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )

    def _dropout(self, name: str) -> keras.layers.Dropout:
        return keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name=name)

    def _dense(self, units: int, name: str, activation: Any = None) -> keras.layers.Dense:
        return keras.layers.Dense(
            units,
            activation=activation,
            use_bias=self.use_bias,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def _build_self_attention(self, inputs_shape) -> None:
        self.self_attention = self._attention(inputs_shape[-1], "self_attention")
        self.self_attention.build(inputs_shape)
        self.self_attention_layer_norm = self._layer_norm("self_attention_layer_norm")
        self.self_attention_layer_norm.build(inputs_shape)
        self.self_attention_dropout = self._dropout("self_attention_dropout")

    def _build_feed_forward(self, inputs_shape) -> None:
        self.intermediate_dense = self._dense(
            self.intermediate_dim, "intermediate_dense", self.activation
        )
        self.intermediate_dense.build(inputs_shape)
        if self.feed_forward == "gated":
            self.gate_dense = self._dense(self.intermediate_dim, "gate_dense")
            self.gate_dense.build(inputs_shape)
        self.output_dense = self._dense(inputs_shape[-1], "output_dense")
        self.output_dense.build(tuple(inputs_shape[:-1]) + (self.intermediate_dim,))
        self.output_layer_norm = self._layer_norm("output_layer_norm")
        self.output_layer_norm.build(inputs_shape)
        self.output_dropout = self._dropout("output_dropout")

    def build(self, inputs_shape) -> None:
        if not self.shares_attention:
            self._build_self_attention(inputs_shape)
        if not self.shares_feed_forward:
            self._build_feed_forward(inputs_shape)
        self.built = True

    def _feed_forward(self, x: Any) -> Any:
        hidden = self.intermediate_dense(x)
        if self.feed_forward == "gated":
            hidden = hidden * self.gate_dense(x)
        return self.output_dense(hidden)

    def _feed_forward_sublayer(self, x: Any, training: bool | None) -> Any:
        """The residual feed-forward step that ends every block (shared with the decoder)."""
        return residual_sublayer(
            x,
            self._feed_forward,
            self.output_layer_norm,
            self.output_dropout,
            self.norm_first,
            training,
        )

    def call(
        self,
        inputs: Any,
        padding_mask: Any = None,
        attention_mask: Any = None,
        attention_bias: Any = None,
        query_positions: Any = None,
        training: bool | None = None,
    ) -> Any:
        if query_positions is None:
            queries, keys = inputs, None
        else:
            if attention_bias is not None:
                raise ValueError("`query_positions` cannot be combined with `attention_bias`.")
            queries = gather_positions(inputs, query_positions)
            keys = self.self_attention_layer_norm(inputs) if self.norm_first else inputs
            if attention_mask is not None:
                attention_mask = gather_positions(attention_mask, query_positions)

        def attend(x: Any) -> Any:
            return self.self_attention(
                x,
                keys,
                padding_mask=padding_mask,
                attention_mask=attention_mask,
                attention_bias=attention_bias,
                training=training,
            )

        x = residual_sublayer(
            queries,
            attend,
            self.self_attention_layer_norm,
            self.self_attention_dropout,
            self.norm_first,
            training,
        )
        return self._feed_forward_sublayer(x, training)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "activation": keras.activations.serialize(self.activation),
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "norm_first": self.norm_first,
                "kernel_initializer": serialize_initializer(self.kernel_initializer),
                "normalization": self.normalization,
                "use_bias": self.use_bias,
                "feed_forward": self.feed_forward,
                "attention_scale": self.attention_scale,
            }
        )
        return config
