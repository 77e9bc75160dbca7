"""T5 bucketed relative position bias (Raffel et al. 2019, Mesh TensorFlow)."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from tfptlm.layers.initializers import (
    DEFAULT_INITIALIZER,
    InitializerLike,
    clone_initializer,
    serialize_initializer,
)


def relative_position_bucket(
    relative_position: Any,
    bidirectional: bool = True,
    num_buckets: int = 32,
    max_distance: int = 128,
) -> Any:
    """Maps relative positions (key position - query position) to bucket ids.

    Half of the buckets (all of them when unidirectional) hold the exact
    distances 0..max_exact-1 with max_exact = buckets // 2; larger distances
    share logarithmically wider buckets up to `max_distance`, beyond which
    everything falls in the last bucket. Bidirectional: keys after the query
    use the upper half of the buckets. Unidirectional (causal decoder): keys
    after the query all map to bucket 0.

    Args:
        relative_position: int tensor of key_position - query_position.
        bidirectional: encoder (True) or causal decoder (False).
        num_buckets, max_distance: as in T5 (32 and 128).

    Returns:
        int32 tensor of the same shape with values in [0, num_buckets).

    Example:
        >>> relative_position_bucket(np.array([-1, 0, 1, -20, 200]))  # [1, 0, 17, 10, 31]
    """
    distance = -ops.cast(relative_position, "int32")
    bucket = ops.zeros_like(distance)
    if bidirectional:
        num_buckets //= 2
        bucket = bucket + ops.cast(ops.less(distance, 0), "int32") * num_buckets
        distance = ops.abs(distance)
    else:
        distance = ops.maximum(distance, 0)
    max_exact = num_buckets // 2
    # Clamped to max_exact so the log never sees 0; small distances use the exact bucket.
    scaled = ops.log(ops.cast(ops.maximum(distance, max_exact), "float32") / max_exact)
    scaled = scaled / math.log(max_distance / max_exact) * (num_buckets - max_exact)
    large = ops.minimum(max_exact + ops.cast(scaled, "int32"), num_buckets - 1)
    return bucket + ops.where(ops.less(distance, max_exact), distance, large)


@keras.saving.register_keras_serializable(package="tfptlm")
class RelativePositionBias(keras.layers.Layer):
    """Learned per-head bias for each relative position bucket (one table per T5 stack).

    bias[0, h, i, j] = table[bucket(j - (query_start + i)), h], shape
    [1, num_heads, Tq, Tk], to add to the attention scores of every layer of
    the stack. Weight: `embeddings` [num_buckets, num_heads].

    Args:
        num_heads: attention heads.
        num_buckets, max_distance: see :func:`relative_position_bucket`.
        bidirectional: True for an encoder, False for a causal decoder.
        embeddings_initializer: for the bias table.

    Call args:
        query: [B, Tq, ...]; only its length Tq is used.
        key_length: Tk (int or scalar tensor); defaults to Tq.
        query_start: position of the first query (the cache update index
            when decoding with a cache of `key_length` positions).

    Example:
        >>> bias_layer = RelativePositionBias(num_heads=2, bidirectional=False)
        >>> x = np.random.rand(1, 3, 16).astype("float32")
        >>> tuple(bias_layer(x).shape)
        (1, 2, 3, 3)
        >>> tuple(bias_layer(x[:, :1], key_length=10, query_start=4).shape)
        (1, 2, 1, 10)
    """

    def __init__(
        self,
        num_heads: int,
        num_buckets: int = 32,
        max_distance: int = 128,
        bidirectional: bool = True,
        embeddings_initializer: InitializerLike = DEFAULT_INITIALIZER,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.bidirectional = bidirectional
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, query_shape=None) -> None:
        self.embeddings = self.add_weight(
            shape=(self.num_buckets, self.num_heads),
            initializer=clone_initializer(self.embeddings_initializer),
            name="embeddings",
        )
        self.built = True

    def call(self, query: Any, key_length: Any = None, query_start: Any = 0) -> Any:
        query_length = ops.shape(query)[1]
        key_length = query_length if key_length is None else key_length
        query_positions = ops.arange(query_length, dtype="int32") + ops.cast(query_start, "int32")
        key_positions = ops.arange(key_length, dtype="int32")
        relative = ops.expand_dims(key_positions, 0) - ops.expand_dims(query_positions, 1)
        buckets = relative_position_bucket(
            relative, self.bidirectional, self.num_buckets, self.max_distance
        )
        bias = ops.take(self.embeddings, buckets, axis=0)  # [Tq, Tk, heads]
        return ops.expand_dims(ops.transpose(bias, (2, 0, 1)), 0)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "num_buckets": self.num_buckets,
                "max_distance": self.max_distance,
                "bidirectional": self.bidirectional,
                "embeddings_initializer": serialize_initializer(self.embeddings_initializer),
            }
        )
        return config
