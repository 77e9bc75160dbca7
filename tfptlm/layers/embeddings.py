"""Token + learned position + segment embeddings (BERT style)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from tfptlm.layers.initializers import (
    DEFAULT_INITIALIZER,
    InitializerLike,
    clone_initializer,
    serialize_initializer,
)


@keras.saving.register_keras_serializable(package="tfptlm")
class TransformerEmbeddings(keras.layers.Layer):
    """Sums token, learned position and segment embeddings, then LayerNorm and dropout.

    output = Dropout(LN(tok[token_ids] + pos[start_index + t] + seg[segment_ids]))

    Public sub-layers: `token_embedding` (its `.embeddings` [V, H] is the
    matrix to tie with an output head), `position_embedding` ([max_len, H]),
    `segment_embedding` ([num_segments, H], None when num_segments == 0) and
    `layer_norm` (None when use_layer_norm is False). Missing segment ids
    mean segment 0 everywhere (as in BERT).

    Pass an existing `token_embedding` to share one token table between
    several embedding layers (BART's encoder and decoder); like a tied head,
    it is not part of `get_config`, so the owning model passes it again when
    it is rebuilt.

    Args:
        vocabulary_size: number of token ids.
        hidden_dim: embedding size.
        max_sequence_length: number of learned positions.
        num_segments: number of segment (token type) ids; 0 for none.
        dropout: dropout rate on the output.
        layer_norm_epsilon: epsilon of the layer norm.
        use_layer_norm: whether to apply the layer norm.
        embeddings_initializer: for all three embedding tables.
        token_embedding: optional shared `keras.layers.Embedding`
            [vocabulary_size, hidden_dim] to use instead of a new one.

    Call args:
        token_ids: int [B, T].
        segment_ids: int [B, T] or None.
        start_index: position of the first token (int or scalar tensor), e.g.
            the number of cached tokens during generation.

    Example:
        >>> layer = TransformerEmbeddings(vocabulary_size=100, hidden_dim=16)
        >>> tuple(layer(np.array([[5, 6, 7]])).shape)
        (1, 3, 16)
    """

    def __init__(
        self,
        vocabulary_size: int,
        hidden_dim: int,
        max_sequence_length: int = 512,
        num_segments: int = 2,
        dropout: float = 0.1,
        layer_norm_epsilon: float = 1e-12,
        use_layer_norm: bool = True,
        embeddings_initializer: InitializerLike = DEFAULT_INITIALIZER,
        token_embedding: keras.layers.Embedding | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if token_embedding is not None and (
            token_embedding.input_dim != vocabulary_size
            or token_embedding.output_dim != hidden_dim
        ):
            raise ValueError(
                f"The shared token_embedding is [{token_embedding.input_dim}, "
                f"{token_embedding.output_dim}] but vocabulary_size={vocabulary_size} "
                f"and hidden_dim={hidden_dim}."
            )
        self.vocabulary_size = vocabulary_size
        self.hidden_dim = hidden_dim
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.use_layer_norm = use_layer_norm
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

        self.token_embedding = token_embedding or self._embedding(
            vocabulary_size, "token_embedding"
        )
        self.position_embedding = self._embedding(max_sequence_length, "position_embedding")
        self.segment_embedding = None
        if num_segments > 0:
            self.segment_embedding = self._embedding(num_segments, "segment_embedding")
        self.layer_norm = None
        if use_layer_norm:
            self.layer_norm = keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
            )
        self.dropout_layer = keras.layers.Dropout(
            dropout, dtype=self.dtype_policy, name="dropout"
        )

    def _embedding(self, input_dim: int, name: str) -> keras.layers.Embedding:
        return keras.layers.Embedding(
            input_dim,
            self.hidden_dim,
            embeddings_initializer=clone_initializer(self.embeddings_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, token_ids_shape) -> None:
        if not self.token_embedding.built:  # a shared one may be built already
            self.token_embedding.build(token_ids_shape)
        self.position_embedding.build((None,))
        if self.segment_embedding is not None:
            self.segment_embedding.build(token_ids_shape)
        if self.layer_norm is not None:
            self.layer_norm.build(tuple(token_ids_shape) + (self.hidden_dim,))
        self.built = True

    def _check_length(self, token_ids: Any, start_index: Any) -> None:
        length = token_ids.shape[-1]
        if isinstance(length, int) and isinstance(start_index, int):
            if start_index + length > self.max_sequence_length:
                raise ValueError(
                    f"Input sequence of length {length} starting at position "
                    f"{start_index} is longer than max_sequence_length="
                    f"{self.max_sequence_length} of layer '{self.name}'. "
                    "Truncate the inputs or use a larger max_sequence_length."
                )

    def call(
        self,
        token_ids: Any,
        segment_ids: Any = None,
        start_index: Any = 0,
        training: bool | None = None,
    ) -> Any:
        self._check_length(token_ids, start_index)
        if segment_ids is not None and self.segment_embedding is None:
            raise ValueError(
                f"Layer '{self.name}' has num_segments=0 but received segment_ids."
            )
        x = self.token_embedding(token_ids)
        positions = ops.arange(ops.shape(token_ids)[-1], dtype="int32")
        positions = positions + ops.cast(start_index, "int32")
        x = x + ops.expand_dims(self.position_embedding(positions), 0)
        if self.segment_embedding is not None:
            if segment_ids is None:
                segment_ids = ops.zeros_like(token_ids)
            x = x + self.segment_embedding(segment_ids)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return self.dropout_layer(x, training=training)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "hidden_dim": self.hidden_dim,
                "max_sequence_length": self.max_sequence_length,
                "num_segments": self.num_segments,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "use_layer_norm": self.use_layer_norm,
                "embeddings_initializer": serialize_initializer(self.embeddings_initializer),
            }
        )
        return config
