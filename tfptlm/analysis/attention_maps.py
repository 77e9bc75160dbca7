"""Attention probabilities of every layer and head of an encoder backbone.

The backbone is run block by block; at each block its own self-attention
layer is called once more on the block's input (after the block's layer norm
for pre-LN blocks) with ``return_attention_scores=True``, which returns the
probabilities ``softmax(Q K^T / sqrt(d))`` with padding keys at exactly 0.
The model code is unchanged, and the default forward pass pays nothing.

Example:

>>> maps = attention_maps(classifier.backbone, inputs)   # [layers, batch, heads, length, length]
>>> maps[0, 0, 1]            # layer 0, text 0, head 1: row q = where query q attends
"""

from __future__ import annotations

import keras
import numpy as np

from tfptlm.analysis.embedding_path import SUPPORTED_BACKBONES, SUPPORTED_FAMILIES


def attention_maps(backbone: keras.Model, inputs: dict) -> np.ndarray:
    """Probabilities ``[layers, batch, heads, length, length]`` (query rows, key columns), inference mode.

    Args:
        backbone: a tfptlm BERT, RoBERTa or ALBERT backbone.
        inputs: packed ``token_ids``, ``segment_ids`` and ``padding_mask`` ``[batch, length]``.
    """
    if not isinstance(backbone, SUPPORTED_BACKBONES):
        raise ValueError(
            f"attention maps support tfptlm's {SUPPORTED_FAMILIES} backbones, not {type(backbone).__name__}"
        )
    inputs = {name: np.asarray(value, "int32") for name, value in inputs.items()}
    padding_mask = inputs["padding_mask"]
    x = backbone._embed(inputs)
    maps = []
    for block in backbone._stacked_blocks():
        queries = block.self_attention_layer_norm(x) if block.norm_first else x
        _, probabilities = block.self_attention(
            queries, padding_mask=padding_mask, return_attention_scores=True
        )
        maps.append(keras.ops.convert_to_numpy(probabilities).astype("float32"))
        x = block(x, padding_mask=padding_mask)
    return np.stack(maps)
