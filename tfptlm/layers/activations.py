"""Serializable activations that Keras does not name on its own."""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="tfptlm")
def gelu_approximate(x: Any) -> Any:
    """GELU with the tanh approximation (GPT-2 "gelu_new", T5.1.1's gated GELU).

    0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))

    Example:
        >>> block = TransformerEncoderBlock(2, 64, activation=gelu_approximate)
    """
    return keras.activations.gelu(x, approximate=True)
