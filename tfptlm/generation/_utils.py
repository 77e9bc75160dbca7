"""Small tensor helpers shared by the decoding loops (keras.ops only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keras import ops


def read_column(ids: Any, position: Any) -> Any:
    """Returns `ids[..., position]` for a scalar tensor `position`."""
    return ops.take(ids, position, axis=-1)


def write_column(ids: Any, position: Any, tokens: Any) -> Any:
    """Returns `ids` with `ids[..., position] = tokens` (`tokens` has `ids`' shape minus the last axis)."""
    at_position = ops.arange(ids.shape[-1], dtype="int32") == position
    return ops.where(at_position, ops.expand_dims(tokens, -1), ids)


def is_stop_token(tokens: Any, stop_token_ids: Sequence[int]) -> Any:
    """Boolean tensor shaped like `tokens`: True where a token is one of `stop_token_ids`."""
    stop = ops.zeros_like(tokens, dtype="bool")
    for stop_id in stop_token_ids:
        stop = ops.logical_or(stop, tokens == stop_id)
    return stop


def mask_after(ids: Any, lengths: Any, pad_id: int) -> Any:
    """Sets `ids[..., j]` to `pad_id` where `j >= lengths[...]`."""
    positions = ops.arange(ids.shape[-1], dtype="int32")
    return ops.where(positions < ops.expand_dims(lengths, -1), ids, ops.cast(pad_id, ids.dtype))
