"""Gathering the vectors of chosen sequence positions."""

from __future__ import annotations

from typing import Any

from keras import ops


def gather_positions(x: Any, positions: Any) -> Any:
    """Returns ``x[b, positions[b, p]]`` for ``x`` [B, T, ...] and int ``positions`` [B, P].

    Example:
        >>> x = np.arange(12).reshape(1, 4, 3)
        >>> gather_positions(x, np.array([[3, 0]]))  # rows 3 and 0: [[[9, 10, 11], [0, 1, 2]]]
    """
    positions = ops.cast(positions, "int32")
    index = ops.reshape(positions, tuple(ops.shape(positions)) + (1,) * (len(x.shape) - 2))
    return ops.take_along_axis(x, index, axis=1)
