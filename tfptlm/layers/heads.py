"""Output heads: masked LM (on an encoder) and language model logits (on a decoder)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from tfptlm.layers.gather import gather_positions
from tfptlm.layers.initializers import (
    DEFAULT_INITIALIZER,
    InitializerLike,
    clone_initializer,
    serialize_initializer,
)


@keras.saving.register_keras_serializable(package="tfptlm")
class MaskedLMHead(keras.layers.Layer):
    """Masked language model head: predicts the token at each masked position.

    x = sequence_output gathered at mask_positions            [B, P, H]
    x = LN(activation(transform_dense(x)))                    [B, P, E]
    logits = x @ W + output_bias                              [B, P, V], float32

    With `token_embedding` (a `keras.layers.Embedding`), W is the transpose
    of its `.embeddings` [V, E] (weight tying) and E is its output_dim (so an
    ALBERT-style factorized embedding works too); otherwise the head owns an
    `output_kernel` [H, V] and E = H.

    `get_config` does not contain `token_embedding`: the model that owns
    both layers must pass the embedding again when it is rebuilt (in its own
    `__init__`/`from_config`). Deserialized alone, the head is untied.

    Args:
        vocabulary_size: number of output tokens V.
        token_embedding: optional embedding layer to tie the output weights to.
        intermediate_activation: activation after `transform_dense`.
        layer_norm_epsilon: epsilon of `transform_layer_norm`.
        kernel_initializer: for `transform_dense` and `output_kernel`.

    Call args:
        sequence_output: [B, T, H] encoder output.
        mask_positions: int [B, P], indices into T of the masked tokens; None
            when `sequence_output` is already [B, P, H] at those positions.

    Example:
        >>> embedding = keras.layers.Embedding(100, 32)
        >>> head = MaskedLMHead(100, token_embedding=embedding)
        >>> hidden = embedding(np.array([[1, 2, 3, 4]]))
        >>> tuple(head(hidden, np.array([[0, 2]])).shape)
        (1, 2, 100)
    """

    def __init__(
        self,
        vocabulary_size: int,
        token_embedding: keras.layers.Embedding | None = None,
        intermediate_activation: Any = "gelu",
        layer_norm_epsilon: float = 1e-12,
        kernel_initializer: InitializerLike = DEFAULT_INITIALIZER,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if token_embedding is not None and token_embedding.input_dim != vocabulary_size:
            raise ValueError(
                f"vocabulary_size={vocabulary_size} does not match the tied "
                f"token_embedding's input_dim={token_embedding.input_dim}."
            )
        self.vocabulary_size = vocabulary_size
        self.token_embedding = token_embedding
        self.intermediate_activation = keras.activations.get(intermediate_activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, sequence_output_shape) -> None:
        hidden_dim = sequence_output_shape[-1]
        transform_dim = hidden_dim
        if self.token_embedding is not None:
            transform_dim = self.token_embedding.output_dim
        self.transform_dense = keras.layers.Dense(
            transform_dim,
            activation=self.intermediate_activation,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name="transform_dense",
        )
        self.transform_dense.build((None, None, hidden_dim))
        self.transform_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="transform_layer_norm",
        )
        self.transform_layer_norm.build((None, None, transform_dim))
        self.output_kernel = None
        if self.token_embedding is None:
            self.output_kernel = self.add_weight(
                shape=(transform_dim, self.vocabulary_size),
                initializer=clone_initializer(self.kernel_initializer),
                name="output_kernel",
            )
        self.output_bias = self.add_weight(
            shape=(self.vocabulary_size,), initializer="zeros", name="output_bias"
        )
        self.built = True

    def call(self, sequence_output: Any, mask_positions: Any = None) -> Any:
        x = sequence_output
        if mask_positions is not None:
            x = gather_positions(sequence_output, mask_positions)
        x = self.transform_layer_norm(self.transform_dense(x))
        if self.token_embedding is not None:
            kernel = ops.transpose(self.token_embedding.embeddings)
        else:
            kernel = self.output_kernel
        logits = ops.matmul(x, ops.cast(kernel, x.dtype))
        logits = logits + ops.cast(self.output_bias, x.dtype)
        return ops.cast(logits, "float32")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "intermediate_activation": keras.activations.serialize(
                    self.intermediate_activation
                ),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": serialize_initializer(self.kernel_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="tfptlm")
class LanguageModelHead(keras.layers.Layer):
    """Language model output projection: logits = (hidden * scale) @ W + output_bias.

    W is the transpose of `token_embedding.embeddings` [V, H] (tied input and
    output embeddings, GPT/T5/BART) or the head's own `output_kernel`
    [H, V]; `output_bias` [V] exists only with `use_bias=True` (BART's
    final_logits_bias). Logits are returned in float32 [B, T, V].

    As for :class:`MaskedLMHead`, `get_config` does not contain
    `token_embedding`: the owning model passes it again when rebuilt.

    Args:
        vocabulary_size: number of output tokens V.
        token_embedding: optional embedding layer to tie the output weights to.
        use_bias: whether to add a learned `output_bias`.
        scale: optional multiplier of the hidden states (T5 v1.0 uses H**-0.5
            with tied embeddings).
        kernel_initializer: for `output_kernel` when untied.

    Call args:
        hidden: [B, T, H] final hidden states.

    Example:
        >>> embedding = keras.layers.Embedding(100, 32)
        >>> head = LanguageModelHead(100, token_embedding=embedding)
        >>> tuple(head(embedding(np.array([[1, 2, 3]]))).shape)
        (1, 3, 100)
    """

    def __init__(
        self,
        vocabulary_size: int,
        token_embedding: keras.layers.Embedding | None = None,
        use_bias: bool = False,
        scale: float | None = None,
        kernel_initializer: InitializerLike = DEFAULT_INITIALIZER,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if token_embedding is not None and token_embedding.input_dim != vocabulary_size:
            raise ValueError(
                f"vocabulary_size={vocabulary_size} does not match the tied "
                f"token_embedding's input_dim={token_embedding.input_dim}."
            )
        self.vocabulary_size = vocabulary_size
        self.token_embedding = token_embedding
        self.use_bias = use_bias
        self.scale = scale
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, hidden_shape) -> None:
        self.output_kernel = None
        if self.token_embedding is None:
            self.output_kernel = self.add_weight(
                shape=(hidden_shape[-1], self.vocabulary_size),
                initializer=clone_initializer(self.kernel_initializer),
                name="output_kernel",
            )
        self.output_bias = None
        if self.use_bias:
            self.output_bias = self.add_weight(
                shape=(self.vocabulary_size,), initializer="zeros", name="output_bias"
            )
        self.built = True

    def call(self, hidden: Any) -> Any:
        if self.scale is not None:
            hidden = hidden * ops.cast(self.scale, hidden.dtype)
        if self.token_embedding is not None:
            kernel = ops.transpose(self.token_embedding.embeddings)
        else:
            kernel = self.output_kernel
        logits = ops.matmul(hidden, ops.cast(kernel, hidden.dtype))
        if self.output_bias is not None:
            logits = logits + ops.cast(self.output_bias, hidden.dtype)
        return ops.cast(logits, "float32")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "use_bias": self.use_bias,
                "scale": self.scale,
                "kernel_initializer": serialize_initializer(self.kernel_initializer),
            }
        )
        return config
