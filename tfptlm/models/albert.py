"""ALBERT backbone (Lan et al. 2019): factorized embeddings and cross-layer sharing.

Two changes to BERT cut its parameters:

- Factorized embedding: token, position and segment embeddings are
  ``embedding_dim`` (E) wide, layer-normalized, then projected to the hidden
  size H by a dense layer, so the vocabulary costs V*E + E*H parameters
  instead of V*H.
- Cross-layer parameter sharing (``parameter_sharing``): ``"all"`` applies one
  encoder block ``num_layers`` times (ALBERT's default), ``"attention"``
  shares the attention step (attention projections and their layer norm)
  and gives every layer its own feed-forward step, ``"feed_forward"`` the
  reverse, ``"none"`` shares nothing (BERT with factorized embeddings).

The encoder blocks are BERT's post-LN :class:`TransformerEncoderBlock`.

Example:

>>> backbone = AlbertBackbone.from_size("tiny", vocabulary_size=8000)
>>> outputs = backbone({
...     "token_ids": np.array([[2, 10, 11, 3]]),
...     "segment_ids": np.zeros((1, 4), "int32"),
...     "padding_mask": np.ones((1, 4), "int32"),
... })
>>> outputs["sequence_output"].shape, outputs["pooled_output"].shape
((1, 4, 128), (1, 128))
>>> backbone.token_embedding.embeddings.shape
(8000, 64)
"""

from __future__ import annotations

import keras

from tfptlm.models.encoder_outputs import EncoderOutputs
from tfptlm.models.named_sizes import NamedSizes
from tfptlm.layers import (
    DEFAULT_INITIALIZER,
    TransformerEmbeddings,
    TransformerEncoderBlock,
    clone_initializer,
)
from tfptlm.layers.encoder_block import head_size

#: Named sizes: BERT's tiny/mini/small shapes (Turc et al. 2019) with E = 128
#: (E = 64 for tiny, where H = 128), and ALBERT-base (Lan et al. 2019).
ALBERT_SIZES = {
    "tiny": dict(num_layers=2, hidden_dim=128, embedding_dim=64, num_heads=2, intermediate_dim=512),
    "mini": dict(num_layers=4, hidden_dim=256, embedding_dim=128, num_heads=4, intermediate_dim=1024),
    "small": dict(num_layers=4, hidden_dim=512, embedding_dim=128, num_heads=8, intermediate_dim=2048),
    "base": dict(num_layers=12, hidden_dim=768, embedding_dim=128, num_heads=12, intermediate_dim=3072),
}

#: Values of ``parameter_sharing``.
PARAMETER_SHARING = ("all", "attention", "feed_forward", "none")


def _check_config(parameter_sharing: str, embedding_dim: int, hidden_dim: int, num_heads: int) -> None:
    if parameter_sharing not in PARAMETER_SHARING:
        raise ValueError(
            f"parameter_sharing must be one of {PARAMETER_SHARING}. "
            f"Received: {parameter_sharing!r}."
        )
    if embedding_dim > hidden_dim:
        raise ValueError(
            f"embedding_dim ({embedding_dim}) must not be larger than hidden_dim "
            f"({hidden_dim}): ALBERT factorizes the embedding to make it smaller "
            "than the hidden size."
        )
    head_size(hidden_dim, num_heads)


@keras.saving.register_keras_serializable(package="tfptlm")
class AlbertBackbone(NamedSizes, EncoderOutputs, keras.Model):
    """An ALBERT encoder (Lan et al. 2019) with BERT's interface.

    Inputs are a dict of ``token_ids``, ``segment_ids`` and ``padding_mask``
    (1 for real tokens), each ``[batch, length]``; outputs are a dict of
    ``sequence_output`` ``[batch, length, hidden]`` and ``pooled_output``
    ``[batch, hidden]`` (tanh dense layer on the first token).

    Args:
        vocabulary_size: number of token ids V.
        num_layers: number of encoder layers applied.
        num_heads: attention heads; must divide ``hidden_dim``.
        hidden_dim: hidden size H.
        intermediate_dim: inner size of the feed-forward network.
        embedding_dim: embedding size E, at most H.
        parameter_sharing: ``"all"``, ``"attention"``, ``"feed_forward"`` or
            ``"none"`` (see the module docstring).
        dropout: dropout rate; 0 by default, as in ALBERT v2 (the paper
            found dropout hurts its large models).
        max_sequence_length: number of learned positions.
        num_segments: number of segment ids.
        layer_norm_epsilon: epsilon of every layer norm.

    Sub-layers: ``embeddings`` (E wide), ``embedding_projection`` [E, H],
    ``encoder_blocks`` (the distinct blocks: one for ``"all"``, else
    ``num_layers``; layer i applies ``encoder_blocks[i % len(encoder_blocks)]``)
    and ``pooler``.

    Raises:
        ValueError: unknown ``parameter_sharing``, ``embedding_dim`` larger
            than ``hidden_dim``, or ``hidden_dim`` not divisible by
            ``num_heads``.
    """

    SIZES = ALBERT_SIZES
    FAMILY = "ALBERT"

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        embedding_dim: int = 128,
        parameter_sharing: str = "all",
        dropout: float = 0.0,
        max_sequence_length: int = 512,
        num_segments: int = 2,
        layer_norm_epsilon: float = 1e-12,
        **kwargs,
    ):
        _check_config(parameter_sharing, embedding_dim, hidden_dim, num_heads)
        # === Layers ===
        self.embeddings = TransformerEmbeddings(
            vocabulary_size=vocabulary_size,
            hidden_dim=embedding_dim,
            max_sequence_length=max_sequence_length,
            num_segments=num_segments,
            dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            name="embeddings",
        )
        self.embedding_projection = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=clone_initializer(DEFAULT_INITIALIZER),
            name="embedding_projection",
        )
        self.encoder_blocks = self._encoder_blocks(
            parameter_sharing,
            num_layers,
            hidden_dim,
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
        )
        self.pooler = keras.layers.Dense(
            hidden_dim,
            activation="tanh",
            kernel_initializer=clone_initializer(DEFAULT_INITIALIZER),
            name="pooler",
        )

        # === Functional model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        self.num_layers = num_layers
        inputs = {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}
        super().__init__(inputs=inputs, outputs=self.outputs_at_positions(inputs), **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.embedding_dim = embedding_dim
        self.parameter_sharing = parameter_sharing
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.layer_norm_epsilon = layer_norm_epsilon

    @staticmethod
    def _encoder_blocks(
        parameter_sharing: str, num_layers: int, hidden_dim: int, **block_config
    ) -> list[TransformerEncoderBlock]:
        """The distinct encoder blocks for a sharing mode (one for ``"all"``)."""
        if parameter_sharing == "all":
            return [TransformerEncoderBlock(name="encoder_block", **block_config)]
        if parameter_sharing == "none":
            return [
                TransformerEncoderBlock(name=f"encoder_block_{i}", **block_config)
                for i in range(num_layers)
            ]
        first = TransformerEncoderBlock(name="encoder_block_0", **block_config)
        first.build((None, None, hidden_dim))
        share = {f"share_{parameter_sharing}_with": first}
        return [first] + [
            TransformerEncoderBlock(name=f"encoder_block_{i}", **share, **block_config)
            for i in range(1, num_layers)
        ]

    def _embed(self, inputs: dict):
        return self.embedding_projection(self.embeddings(inputs["token_ids"], inputs["segment_ids"]))

    def _stacked_blocks(self) -> list:
        blocks = self.encoder_blocks
        return [blocks[i % len(blocks)] for i in range(self.num_layers)]

    @property
    def token_embedding(self) -> keras.layers.Embedding:
        """The token embedding layer [V, E]; its matrix is shared with the MLM head."""
        return self.embeddings.token_embedding

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "embedding_dim": self.embedding_dim,
            "parameter_sharing": self.parameter_sharing,
            "dropout": self.dropout,
            "max_sequence_length": self.max_sequence_length,
            "num_segments": self.num_segments,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }

    @classmethod
    def from_config(cls, config: dict) -> "AlbertBackbone":
        return cls(**config)
