"""RoBERTa backbone (Liu et al. 2019): the BERT encoder without segment embeddings.

RoBERTa keeps BERT's post-LN encoder and learned positions and drops the
segment (token type) embeddings, since it pretrains on packed full sentences
with masked LM alone. The model still takes ``segment_ids`` so that every
backbone has the same interface, and ignores them.

Example:

>>> backbone = RobertaBackbone.from_size("tiny", vocabulary_size=8000)
>>> outputs = backbone({
...     "token_ids": np.array([[0, 10, 11, 2]]),
...     "segment_ids": np.zeros((1, 4), "int32"),   # ignored
...     "padding_mask": np.ones((1, 4), "int32"),
... })
>>> outputs["sequence_output"].shape, outputs["pooled_output"].shape
((1, 4, 128), (1, 128))
"""

from __future__ import annotations

import keras

from tfptlm.models.bert import BERT_SIZES, BertBackbone

#: Named sizes: BERT's (RoBERTa-base is BERT-base's shape).
ROBERTA_SIZES = {name: dict(sizes) for name, sizes in BERT_SIZES.items()}


@keras.saving.register_keras_serializable(package="tfptlm")
class RobertaBackbone(BertBackbone):
    """A RoBERTa encoder: :class:`BertBackbone` with ``num_segments=0``.

    Same inputs (``token_ids``, ``segment_ids``, ``padding_mask``) and
    outputs (``sequence_output``, ``pooled_output``) as `BertBackbone`;
    ``segment_ids`` is accepted and ignored. The layer norm epsilon defaults
    to RoBERTa's 1e-5.
    """

    SIZES = ROBERTA_SIZES
    FAMILY = "RoBERTa"

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        dropout: float = 0.1,
        max_sequence_length: int = 512,
        layer_norm_epsilon: float = 1e-5,
        norm_first: bool = False,
        **kwargs,
    ):
        super().__init__(
            vocabulary_size=vocabulary_size,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            max_sequence_length=max_sequence_length,
            num_segments=0,
            layer_norm_epsilon=layer_norm_epsilon,
            norm_first=norm_first,
            **kwargs,
        )

    def get_config(self) -> dict:
        config = super().get_config()
        del config["num_segments"]  # always 0
        return config
