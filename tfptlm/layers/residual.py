"""The residual + layer norm wrapper shared by the Transformer blocks."""

from __future__ import annotations

from typing import Any, Callable

import keras


def residual_sublayer(
    x: Any,
    sublayer: Callable[[Any], Any],
    layer_norm: keras.layers.Layer,
    dropout_layer: keras.layers.Layer,
    norm_first: bool,
    training: bool | None = None,
) -> Any:
    """Applies one residual sub-layer in post-LN or pre-LN order.

    Post-LN (BERT, `norm_first=False`): LN(x + Dropout(sublayer(x))).
    Pre-LN (GPT-2, `norm_first=True`):  x + Dropout(sublayer(LN(x))).

    Example:
        >>> y = residual_sublayer(x, ffn, layer_norm, dropout, norm_first=True)
    """
    if norm_first:
        return x + dropout_layer(sublayer(layer_norm(x)), training=training)
    return layer_norm(x + dropout_layer(sublayer(x), training=training))
