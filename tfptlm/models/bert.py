"""BERT backbone: embeddings, a stack of Transformer encoder blocks and a pooler.

Example:

>>> backbone = BertBackbone.from_size("tiny", vocabulary_size=8000)
>>> outputs = backbone({
...     "token_ids": np.array([[2, 10, 11, 3]]),
...     "segment_ids": np.zeros((1, 4), "int32"),
...     "padding_mask": np.ones((1, 4), "int32"),
... })
>>> outputs["sequence_output"].shape, outputs["pooled_output"].shape
((1, 4, 128), (1, 128))
"""

from __future__ import annotations

import keras

from tfptlm.models.encoder_outputs import EncoderOutputs
from tfptlm.models.named_sizes import NamedSizes
from tfptlm.layers import TransformerEmbeddings, TransformerEncoderBlock

#: Named sizes (Turc et al. 2019 for tiny/mini/small; Devlin et al. 2018 for base).
BERT_SIZES = {
    "tiny": dict(num_layers=2, hidden_dim=128, num_heads=2, intermediate_dim=512),
    "mini": dict(num_layers=4, hidden_dim=256, num_heads=4, intermediate_dim=1024),
    "small": dict(num_layers=4, hidden_dim=512, num_heads=8, intermediate_dim=2048),
    "base": dict(num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072),
}


def _initializer():
    return keras.initializers.TruncatedNormal(stddev=0.02)


@keras.saving.register_keras_serializable(package="tfptlm")
class BertBackbone(NamedSizes, EncoderOutputs, keras.Model):
    """A BERT encoder (Devlin et al. 2018), post-LN by default.

    Inputs are a dict of ``token_ids``, ``segment_ids`` and ``padding_mask``
    (1 for real tokens), each ``[batch, length]``; outputs are a dict of
    ``sequence_output`` ``[batch, length, hidden]`` and ``pooled_output``
    ``[batch, hidden]`` (tanh dense layer on the first token).

    With ``num_segments=0`` there are no segment embeddings: the model still
    takes ``segment_ids`` (one interface for every backbone) but ignores them
    (RoBERTa, :class:`~tfptlm.models.roberta.RobertaBackbone`).
    """

    #: Named sizes of `from_size`, and the family name in its error message.
    SIZES = BERT_SIZES
    FAMILY = "BERT"

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        dropout: float = 0.1,
        max_sequence_length: int = 512,
        num_segments: int = 2,
        layer_norm_epsilon: float = 1e-12,
        norm_first: bool = False,
        **kwargs,
    ):
        # === Layers ===
        self.embeddings = TransformerEmbeddings(
            vocabulary_size=vocabulary_size,
            hidden_dim=hidden_dim,
            max_sequence_length=max_sequence_length,
            num_segments=num_segments,
            dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            # Pre-LN stacks normalize inside each block instead.
            use_layer_norm=not norm_first,
            name="embeddings",
        )
        self.encoder_blocks = [
            TransformerEncoderBlock(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                dropout=dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                norm_first=norm_first,
                name=f"encoder_block_{i}",
            )
            for i in range(num_layers)
        ]
        self.final_layer_norm = (
            keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, name="final_layer_norm"
            )
            if norm_first
            else None
        )
        self.pooler = keras.layers.Dense(
            hidden_dim,
            activation="tanh",
            kernel_initializer=_initializer(),
            name="pooler",
        )

        # === Functional model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        self.num_segments = num_segments
        inputs = {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}
        super().__init__(inputs=inputs, outputs=self.outputs_at_positions(inputs), **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.layer_norm_epsilon = layer_norm_epsilon
        self.norm_first = norm_first

    def _embed(self, inputs: dict):
        segment_ids = inputs["segment_ids"] if self.num_segments > 0 else None
        return self.embeddings(inputs["token_ids"], segment_ids)

    def _stacked_blocks(self) -> list:
        return self.encoder_blocks

    @property
    def token_embedding(self) -> keras.layers.Embedding:
        """The token embedding layer; its matrix is shared with the MLM head."""
        return self.embeddings.token_embedding

    def get_config(self) -> dict:
        config = {"name": self.name, "trainable": self.trainable}
        config.update(
            vocabulary_size=self.vocabulary_size,
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            hidden_dim=self.hidden_dim,
            intermediate_dim=self.intermediate_dim,
            dropout=self.dropout,
            max_sequence_length=self.max_sequence_length,
            num_segments=self.num_segments,
            layer_norm_epsilon=self.layer_norm_epsilon,
            norm_first=self.norm_first,
        )
        return config

    @classmethod
    def from_config(cls, config: dict) -> "BertBackbone":
        return cls(**config)
