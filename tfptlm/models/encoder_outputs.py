"""The top of an encoder backbone: its block stack, pooler and sparse outputs."""

from __future__ import annotations

from typing import Any, Sequence

import keras
from keras import ops


def encoder_stack_outputs(
    x: Any,
    blocks: Sequence[keras.layers.Layer],
    padding_mask: Any,
    pooler: keras.layers.Layer,
    output_positions: Any = None,
    final_layer_norm: keras.layers.Layer | None = None,
) -> dict:
    """Runs ``blocks`` over the embedded ``x`` and pools the first token.

    Returns ``{"sequence_output", "pooled_output"}``. With ``output_positions``
    (int ``[B, P]``) the sequence output holds those P positions only, and the
    last block computes nothing else (its queries are those positions and the
    first token, for the pooler; they attend every key): the same values as
    gathering the full output, for less work. Masked-LM pretraining needs the
    outputs at ~15% of the positions, which saves most of one layer.

    Example:
        >>> outputs = encoder_stack_outputs(embedded, blocks, padding_mask, pooler,
        ...                                 output_positions=mask_positions)
    """
    *earlier_blocks, last_block = blocks
    for block in earlier_blocks:
        x = block(x, padding_mask=padding_mask)
    query_positions = None
    if output_positions is not None:
        output_positions = ops.cast(output_positions, "int32")
        first_token = ops.zeros_like(output_positions[:, :1])
        query_positions = ops.concatenate([first_token, output_positions], axis=1)
    x = last_block(x, padding_mask=padding_mask, query_positions=query_positions)
    if final_layer_norm is not None:
        x = final_layer_norm(x)
    pooled = pooler(x[:, 0, :])
    sequence = x if output_positions is None else x[:, 1:, :]
    return {"sequence_output": sequence, "pooled_output": pooled}


class EncoderOutputs:
    """Mixin for encoder backbones: ``outputs_at_positions`` builds their outputs.

    A backbone defines ``_embed(inputs)`` (the embedded ``[B, T, H]`` sequence),
    ``_stacked_blocks()`` (the block called at each layer, in order), a
    ``pooler`` and optionally a ``final_layer_norm``.

    Example:

    >>> class MyEncoder(EncoderOutputs, keras.Model):   # doctest: +SKIP
    ...     def call(self, inputs):
    ...         return self.outputs_at_positions(inputs)
    """

    def outputs_at_positions(self, inputs: dict, output_positions: Any = None) -> dict:
        """The backbone's outputs, with the sequence output only at ``output_positions``.

        ``output_positions`` (int ``[batch, P]``) makes the last block compute
        only those positions (and the first token, for the pooler): the same
        values as gathering ``self(inputs)["sequence_output"]``, for less work
        (see :func:`encoder_stack_outputs`). None gives the full outputs.
        Works on symbolic inputs (to build a task model) and on real ones.

        Example:
            >>> outputs = backbone.outputs_at_positions(inputs, np.array([[1, 3]]))
            >>> outputs["sequence_output"].shape  # [1, 2, hidden]
        """
        return encoder_stack_outputs(
            self._embed(inputs),
            self._stacked_blocks(),
            inputs["padding_mask"],
            self.pooler,
            output_positions,
            getattr(self, "final_layer_norm", None),
        )
