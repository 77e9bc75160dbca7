"""Initializer helpers shared by the tfptlm layers.

Keras 3 random initializers draw their seed once, when they are created, so
one *instance* returns the same values every time it is called with the same
shape. Layers therefore give each sub-layer its own copy made with
:func:`clone_initializer` (an unseeded initializer gets a fresh seed per copy).

Example:
    >>> init = clone_initializer(DEFAULT_INITIALIZER)
    >>> tuple(init(shape=(2, 2)).shape)
    (2, 2)
"""

from __future__ import annotations

from typing import Any

import keras

InitializerLike = str | dict | keras.initializers.Initializer

# BERT's initializer: truncated normal with standard deviation 0.02.
DEFAULT_INITIALIZER = keras.initializers.TruncatedNormal(stddev=0.02)


def clone_initializer(initializer: InitializerLike) -> keras.initializers.Initializer:
    """Returns a new initializer with the same config as `initializer`.

    An unseeded initializer gets a new random seed, so two clones give
    different values; a seeded one gives the same values (as in Keras).
    """
    return keras.initializers.get(serialize_initializer(initializer))


def serialize_initializer(initializer: InitializerLike) -> dict[str, Any]:
    """Serializes an initializer (name, dict or object) for `get_config`."""
    return keras.initializers.serialize(keras.initializers.get(initializer))
