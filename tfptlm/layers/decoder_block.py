"""Transformer decoder block: causal self-attention, cross-attention, feed-forward."""

from __future__ import annotations

from typing import Any

import keras

from tfptlm.layers.encoder_block import TransformerEncoderBlock
from tfptlm.layers.initializers import DEFAULT_INITIALIZER, InitializerLike
from tfptlm.layers.residual import residual_sublayer


@keras.saving.register_keras_serializable(package="tfptlm")
class TransformerDecoderBlock(TransformerEncoderBlock):
    """One Transformer decoder layer (post-LN by default, pre-LN with `norm_first`).

    Post-LN:
        x = LN(x + Dropout(CausalSelfAttention(x)))
        x = LN(x + Dropout(CrossAttention(x, encoder_outputs)))   # if given
        x = LN(x + Dropout(FFN(x)))
    Pre-LN applies each LN to the sub-layer input instead: x + Dropout(f(LN(x))).

    Sub-layers: `self_attention`, `self_attention_layer_norm`,
    `cross_attention` and `cross_attention_layer_norm` (only when
    `use_cross_attention=True`; its key/value kernels take the encoder's
    hidden size), `intermediate_dense`, `output_dense`, `output_layer_norm`.
    Use `use_cross_attention=False` for decoder-only models (GPT). When the
    block has cross-attention but is called without `encoder_outputs` (and
    without `cross_attention_cache`), the cross-attention step is skipped.

    Generation with a key/value cache (layout [B, 2, L, heads, head_size], see
    :class:`MultiHeadAttention`): pass `self_attention_cache` (L = max
    length) and `self_attention_cache_update_index` (position of the first of
    the T input tokens); the call then returns `(outputs, new_self_attention_cache)`
    and `decoder_padding_mask`/`self_attention_bias` cover the L cache
    positions. `cross_attention_cache` (from
    `block.cross_attention.precompute_key_value(encoder_outputs)`) replaces
    the encoder outputs' projection, so it is computed once per sequence.

    Args: as :class:`TransformerEncoderBlock`, plus
        use_cross_attention: whether to create the cross-attention sub-layer.

    Call args:
        inputs: [B, T, H].
        encoder_outputs: [B, S, H_enc] or None.
        decoder_padding_mask: [B, T], 1 for real decoder tokens.
        encoder_padding_mask: [B, S], 1 for real encoder tokens.
        self_attention_bias: additive, broadcastable to [B, heads, T, T].
        cross_attention_bias: additive, broadcastable to [B, heads, T, S].
        use_causal_mask: mask future positions in self-attention (always on
            with a cache).
        self_attention_cache: [B, 2, L, heads, head_size] or None.
        self_attention_cache_update_index: scalar int, with the cache.
        cross_attention_cache: [B, 2, S, heads, head_size] or None.

    Example:
        >>> block = TransformerDecoderBlock(num_heads=2, intermediate_dim=64)
        >>> x = np.random.rand(2, 5, 32).astype("float32")
        >>> memory = np.random.rand(2, 7, 32).astype("float32")
        >>> tuple(block(x, memory).shape)
        (2, 5, 32)
        >>> cache = np.zeros((2, 2, 8, 2, 16), "float32")
        >>> out, cache = block(x, memory, self_attention_cache=cache,
        ...                    self_attention_cache_update_index=0)
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
        use_cross_attention: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            activation=activation,
            dropout=dropout,
            attention_dropout=attention_dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            norm_first=norm_first,
            kernel_initializer=kernel_initializer,
            normalization=normalization,
            use_bias=use_bias,
            feed_forward=feed_forward,
            attention_scale=attention_scale,
            **kwargs,
        )
        self.use_cross_attention = use_cross_attention

    def build(self, inputs_shape, encoder_outputs_shape=None) -> None:
        self._build_self_attention(inputs_shape)
        if self.use_cross_attention:
            if encoder_outputs_shape is None:
                encoder_outputs_shape = inputs_shape
            self.cross_attention = self._attention(inputs_shape[-1], "cross_attention")
            self.cross_attention.build(inputs_shape, encoder_outputs_shape)
            self.cross_attention_layer_norm = self._layer_norm("cross_attention_layer_norm")
            self.cross_attention_layer_norm.build(inputs_shape)
            self.cross_attention_dropout = self._dropout("cross_attention_dropout")
        self._build_feed_forward(inputs_shape)
        self.built = True

    def call(
        self,
        inputs: Any,
        encoder_outputs: Any = None,
        decoder_padding_mask: Any = None,
        encoder_padding_mask: Any = None,
        self_attention_bias: Any = None,
        cross_attention_bias: Any = None,
        use_causal_mask: bool = True,
        training: bool | None = None,
        self_attention_cache: Any = None,
        self_attention_cache_update_index: Any = None,
        cross_attention_cache: Any = None,
    ) -> Any:
        use_cross = encoder_outputs is not None or cross_attention_cache is not None
        if use_cross and not self.use_cross_attention:
            raise ValueError(
                f"Layer '{self.name}' was created with use_cross_attention=False "
                "but received encoder_outputs or cross_attention_cache."
            )
        new_caches = []

        def self_attend(x: Any) -> Any:
            outputs = self.self_attention(
                x,
                padding_mask=decoder_padding_mask,
                attention_bias=self_attention_bias,
                use_causal_mask=use_causal_mask,
                training=training,
                cache=self_attention_cache,
                cache_update_index=self_attention_cache_update_index,
            )
            if self_attention_cache is None:
                return outputs
            new_caches.append(outputs[1])
            return outputs[0]

        def cross_attend(x: Any) -> Any:
            outputs = self.cross_attention(
                x,
                encoder_outputs,
                padding_mask=encoder_padding_mask,
                attention_bias=cross_attention_bias,
                training=training,
                cache=cross_attention_cache,
            )
            return outputs if cross_attention_cache is None else outputs[0]

        x = residual_sublayer(
            inputs,
            self_attend,
            self.self_attention_layer_norm,
            self.self_attention_dropout,
            self.norm_first,
            training,
        )
        if use_cross:
            x = residual_sublayer(
                x,
                cross_attend,
                self.cross_attention_layer_norm,
                self.cross_attention_dropout,
                self.norm_first,
                training,
            )
        x = self._feed_forward_sublayer(x, training)
        if self_attention_cache is None:
            return x
        return x, new_caches[0]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["use_cross_attention"] = self.use_cross_attention
        return config
