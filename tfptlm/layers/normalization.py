"""Root-mean-square layer normalization (T5)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfptlm")
class RMSNormalization(keras.layers.Layer):
    """T5 layer norm: x * rsqrt(mean(x^2) + epsilon) * scale, without centering or bias.

    Computed in float32 whatever the dtype policy, then cast to the compute
    dtype. Weight: `scale` [hidden], initialized to ones.

    Args:
        epsilon: added to the mean square.

    Example:
        >>> norm = RMSNormalization(epsilon=1e-6)
        >>> tuple(norm(np.random.rand(2, 3, 8).astype("float32")).shape)
        (2, 3, 8)
    """

    def __init__(self, epsilon: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, inputs_shape) -> None:
        self.scale = self.add_weight(
            shape=(inputs_shape[-1],), initializer="ones", name="scale"
        )
        self.built = True

    def call(self, inputs: Any) -> Any:
        x = ops.cast(inputs, "float32")
        mean_square = ops.mean(ops.square(x), axis=-1, keepdims=True)
        x = x * ops.rsqrt(mean_square + self.epsilon) * ops.cast(self.scale, "float32")
        return ops.cast(x, self.compute_dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["epsilon"] = self.epsilon
        return config
