"""T5 backbone: RMSNorm pre-norm encoder-decoder with bucketed relative position bias.

Example:

>>> backbone = T5Backbone.from_size("tiny", vocabulary_size=8000)
>>> outputs = backbone({
...     "encoder_token_ids": np.array([[12, 13, 14, 1]]),
...     "encoder_padding_mask": np.ones((1, 4), "int32"),
...     "decoder_token_ids": np.array([[0, 12]]),
...     "decoder_padding_mask": np.ones((1, 2), "int32"),
... })
>>> logits = backbone.logits(outputs["decoder_sequence_output"])  # [1, 2, 8000]
"""

from __future__ import annotations

from typing import Any

import keras

from tfptlm.layers.initializers import width_scaled_initializer
from tfptlm.layers import (
    LanguageModelHead,
    RelativePositionBias,
    RMSNormalization,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
    gelu_approximate,
)
from tfptlm.models.seq2seq import Seq2SeqBackbone

#: Named sizes (Raffel et al. 2019 for small and base).
T5_SIZES = {
    "tiny": dict(num_layers=2, hidden_dim=128, num_heads=2, intermediate_dim=512),
    "small": dict(num_layers=6, hidden_dim=512, num_heads=8, intermediate_dim=2048),
    "base": dict(num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072),
}

#: T5Backbone's `feed_forward` -> TransformerEncoderBlock arguments.
_FEED_FORWARDS = {
    "relu": dict(feed_forward="mlp", activation="relu"),
    "gated_gelu": dict(feed_forward="gated", activation=gelu_approximate),
}


@keras.saving.register_keras_serializable(package="tfptlm")
class T5Backbone(Seq2SeqBackbone):
    """A T5 encoder-decoder (Raffel et al. 2019); T5.1.1 with `feed_forward="gated_gelu"`.

    Each stack: x = Dropout(token_embedding[ids]) (no position embeddings),
    pre-norm blocks x + Dropout(f(RMSNorm(x))) without biases and without
    1/sqrt(d) score scaling, then a final RMSNorm and dropout. Every
    self-attention layer adds the stack's bucketed relative position bias
    (`encoder_relative_bias`: bidirectional; `decoder_relative_bias`:
    causal), one table per stack computed once and shared by all its
    layers, as T5 shares its first layer's bias. The token embedding is
    shared by both stacks and, with `tie_embeddings=True`, by the output
    (hidden scaled by hidden_dim**-0.5, T5 v1.0); otherwise the `lm_head`
    owns an output kernel (T5.1.1).

    Inputs, outputs and the generation API (cache layout
    [B, num_layers, 2, max_length, num_heads, hidden // num_heads]): see
    :mod:`tfptlm.models.seq2seq`. Relative positions set no length limit.

    Args:
        vocabulary_size: number of token ids.
        num_layers: blocks in each of the encoder and the decoder.
        num_heads: attention heads.
        hidden_dim: model size (d_model).
        intermediate_dim: inner size of the feed-forward networks (d_ff).
        dropout: dropout rate everywhere.
        layer_norm_epsilon: epsilon of the RMS norms.
        feed_forward: "relu" (T5.1.0) or "gated_gelu" (T5.1.1).
        tie_embeddings: output projection tied to the token embedding.
        relative_attention_num_buckets, relative_attention_max_distance:
            of the relative position buckets.

    Example:
        >>> backbone = T5Backbone(vocabulary_size=100, num_layers=2, num_heads=2,
        ...                       hidden_dim=32, intermediate_dim=64,
        ...                       feed_forward="gated_gelu", tie_embeddings=False)
        >>> encoder_outputs = backbone.encode(source_ids, source_mask)
        >>> cache = backbone.init_cache(batch_size=2, max_length=10)
        >>> logits, hidden, cache = backbone.call_decoder_with_cache(
        ...     np.zeros((2, 1), "int32"), encoder_outputs, source_mask, cache, 0)
    """

    SIZES = T5_SIZES
    FAMILY = "T5"

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        dropout: float = 0.1,
        layer_norm_epsilon: float = 1e-6,
        feed_forward: str = "relu",
        tie_embeddings: bool = True,
        relative_attention_num_buckets: int = 32,
        relative_attention_max_distance: int = 128,
        **kwargs: Any,
    ) -> None:
        if feed_forward not in _FEED_FORWARDS:
            raise ValueError(
                f"feed_forward must be one of {tuple(_FEED_FORWARDS)}. Received: {feed_forward!r}."
            )
        # === Layers ===
        # T5's initialization: unit-variance embeddings (the tied output scales
        # by hidden**-0.5) and hidden**-0.5 kernels (attention is not scaled by
        # 1/sqrt(d)); BERT's 0.02 makes a small T5 learn several times slower.
        self.shared_embedding = keras.layers.Embedding(
            vocabulary_size,
            hidden_dim,
            embeddings_initializer=keras.initializers.TruncatedNormal(stddev=1.0),
            name="token_embedding",
        )
        self.dropout_layer = keras.layers.Dropout(dropout, name="dropout")
        block_args = dict(
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            norm_first=True,
            normalization="rms_norm",
            use_bias=False,
            attention_scale=1.0,
            kernel_initializer=width_scaled_initializer(hidden_dim),
            **_FEED_FORWARDS[feed_forward],
        )
        self.encoder_blocks = [
            TransformerEncoderBlock(name=f"encoder_block_{i}", **block_args)
            for i in range(num_layers)
        ]
        self.decoder_blocks = [
            TransformerDecoderBlock(name=f"decoder_block_{i}", **block_args)
            for i in range(num_layers)
        ]
        bias_args = dict(
            num_heads=num_heads,
            num_buckets=relative_attention_num_buckets,
            max_distance=relative_attention_max_distance,
        )
        self.encoder_relative_bias = RelativePositionBias(
            bidirectional=True, name="encoder_relative_bias", **bias_args
        )
        self.decoder_relative_bias = RelativePositionBias(
            bidirectional=False, name="decoder_relative_bias", **bias_args
        )
        self.encoder_final_norm = RMSNormalization(
            epsilon=layer_norm_epsilon, name="encoder_final_norm"
        )
        self.decoder_final_norm = RMSNormalization(
            epsilon=layer_norm_epsilon, name="decoder_final_norm"
        )
        self.lm_head = LanguageModelHead(
            vocabulary_size,
            token_embedding=self.shared_embedding if tie_embeddings else None,
            scale=hidden_dim**-0.5 if tie_embeddings else None,
            name="lm_head",
        )
        self.lm_head.build((None, None, hidden_dim))

        self._build_functional(**kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.feed_forward = feed_forward
        self.tie_embeddings = tie_embeddings
        self.relative_attention_num_buckets = relative_attention_num_buckets
        self.relative_attention_max_distance = relative_attention_max_distance

    @property
    def token_embedding(self) -> keras.layers.Embedding:
        """The token embedding shared by encoder, decoder (and the tied output)."""
        return self.shared_embedding

    def _embed(self, stack: str, token_ids: Any, start_index: Any, training: Any) -> Any:
        return self.dropout_layer(self.shared_embedding(token_ids), training=training)

    def _attention_bias(self, stack: str, x: Any, key_length: Any, query_start: Any) -> Any:
        bias_layer = getattr(self, f"{stack}_relative_bias")
        return bias_layer(x, key_length=key_length, query_start=query_start)

    def _final(self, stack: str, x: Any, training: Any) -> Any:
        final_norm = getattr(self, f"{stack}_final_norm")
        return self.dropout_layer(final_norm(x), training=training)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "feed_forward": self.feed_forward,
            "tie_embeddings": self.tie_embeddings,
            "relative_attention_num_buckets": self.relative_attention_num_buckets,
            "relative_attention_max_distance": self.relative_attention_max_distance,
        }
