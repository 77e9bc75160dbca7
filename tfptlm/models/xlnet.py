"""XLNet backbone (Yang et al. 2019): relative attention, two-stream pretraining.

As a functional model it is a drop-in for :class:`BertBackbone`: inputs
``token_ids``, ``segment_ids``, ``padding_mask`` and outputs
``sequence_output`` and ``pooled_output``, computed by the content stream
with every real token visible (bidirectional, no permutation), so the
fine-tuning tasks work on it unchanged. :meth:`XLNetBackbone.call_two_stream`
runs the permuted two-stream pass used by :class:`XLNetPretrainer`.

Example:

>>> backbone = XLNetBackbone.from_size("tiny", vocabulary_size=8000)
>>> inputs = {
...     "token_ids": np.array([[2, 10, 11, 3]]),
...     "segment_ids": np.zeros((1, 4), "int32"),
...     "padding_mask": np.ones((1, 4), "int32"),
... }
>>> backbone(inputs)["pooled_output"].shape
TensorShape([1, 128])
>>> content, query = backbone.call_two_stream(dict(
...     inputs,
...     permutation_mask=np.tril(np.ones((1, 4, 4), "int32")),
...     target_positions=np.array([[2, 3]]),
... ))                                       # query: [1, 2, 128]
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from tfptlm.models.named_sizes import NamedSizes
from tfptlm.layers.initializers import DEFAULT_INITIALIZER, clone_initializer
from tfptlm.layers.relative_attention import RelativeAttentionBlock, RelativePositionEncoding
from tfptlm.models.bert import BERT_SIZES

#: Named sizes: the BERT ones (XLNet-base has BERT-base's shape).
XLNET_SIZES = {name: dict(settings) for name, settings in BERT_SIZES.items()}


@keras.saving.register_keras_serializable(package="tfptlm")
class XLNetBackbone(NamedSizes, keras.Model):
    """An XLNet encoder: token embeddings, relative-attention blocks, a pooler.

    h = Dropout(token_embedding[token_ids])          (no absolute positions)
    h = post-LN :class:`RelativeAttentionBlock` x num_layers (per-layer
        r_w_bias / r_r_bias / r_s_bias / seg_embed), with the sinusoidal
        relative encodings of :class:`RelativePositionEncoding` (dropped out)
    pooled = tanh(Dense(h[:, 0]))                     (tfptlm puts [CLS] first)

    An input whose static length exceeds `max_sequence_length` raises a
    ValueError; segment-recurrence memory is not implemented.

    Args:
        vocabulary_size: number of token ids.
        num_layers: number of blocks.
        num_heads: attention heads.
        hidden_dim: hidden size (even, divisible by num_heads).
        intermediate_dim: inner size of the feed-forward networks.
        dropout: dropout on embeddings, encodings, sub-layers and attention.
        max_sequence_length: longest accepted input.
        layer_norm_epsilon: epsilon of the layer norms.
    """

    #: Named sizes of `from_size`, and the family name in its error message.
    SIZES = XLNET_SIZES
    FAMILY = "XLNet"

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        dropout: float = 0.1,
        max_sequence_length: int = 512,
        layer_norm_epsilon: float = 1e-12,
        **kwargs: Any,
    ) -> None:
        # === Layers ===
        self.word_embedding = self._embedding(vocabulary_size, hidden_dim, "token_embedding")
        # The query stream's start: one learned vector (XLNet's mask_emb), [1, H].
        self.mask_embedding = self._embedding(1, hidden_dim, "mask_embedding")
        self.mask_embedding.build((None,))  # outside the functional graph below
        self.position_encoding = RelativePositionEncoding(
            hidden_dim, max_sequence_length, name="position_encoding"
        )
        self.embedding_dropout = keras.layers.Dropout(dropout, name="embedding_dropout")
        self.encoder_blocks = [
            RelativeAttentionBlock(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                dropout=dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                name=f"encoder_block_{i}",
            )
            for i in range(num_layers)
        ]
        self.pooler = keras.layers.Dense(
            hidden_dim,
            activation="tanh",
            kernel_initializer=clone_initializer(DEFAULT_INITIALIZER),
            name="pooler",
        )

        # === Functional model: the content stream, every real token visible ===
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in ("token_ids", "segment_ids", "padding_mask")
        }
        hidden, positions = self._embed(inputs["token_ids"])
        for block in self.encoder_blocks:
            hidden = block(
                hidden, positions, inputs["segment_ids"], padding_mask=inputs["padding_mask"]
            )
        pooled = self.pooler(hidden[:, 0, :])
        super().__init__(
            inputs=inputs,
            outputs={"sequence_output": hidden, "pooled_output": pooled},
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.layer_norm_epsilon = layer_norm_epsilon

    @staticmethod
    def _embedding(input_dim: int, hidden_dim: int, name: str) -> keras.layers.Embedding:
        return keras.layers.Embedding(
            input_dim,
            hidden_dim,
            embeddings_initializer=clone_initializer(DEFAULT_INITIALIZER),
            name=name,
        )

    def _embed(self, token_ids: Any, training: bool | None = None) -> tuple[Any, Any]:
        """Returns the content stream's start [B, T, H] and the relative encodings [2T-1, H]."""
        hidden = self.embedding_dropout(self.word_embedding(token_ids), training=training)
        positions = self.embedding_dropout(self.position_encoding(hidden), training=training)
        return hidden, positions

    @property
    def token_embedding(self) -> keras.layers.Embedding:
        """The token embedding layer [V, H]; the pretraining head is tied to it."""
        return self.word_embedding

    def call_two_stream(self, inputs: dict, training: bool | None = None) -> tuple[Any, Any]:
        """The permuted two-stream pass of XLNet pretraining.

        Args:
            inputs: the backbone inputs plus ``permutation_mask`` [B, T, T]
                (1 where content i may attend key j: j is not later than i
                in the factorization order, i itself included; see
                `tfptlm.data.objectives.plm`) and ``target_positions`` [B, P].
                Concrete tensors (eager, or inside a layer's ``call`` as in
                :class:`XLNetPretrainer`), not symbolic `keras.Input`s.
            training: dropout switch.

        Returns:
            (content stream [B, T, H], query stream [B, P, H]). Query row p
            starts from the learned mask embedding and attends the content of
            the tokens strictly before target ``target_positions[:, p]`` in
            the order (never its own token); it predicts that token.
        """
        hidden, positions = self._embed(inputs["token_ids"], training)
        target_positions = inputs["target_positions"]
        query = self.mask_embedding(ops.zeros_like(target_positions))
        query = self.embedding_dropout(query, training=training)
        for block in self.encoder_blocks:
            hidden, query = block(
                hidden,
                positions,
                inputs["segment_ids"],
                padding_mask=inputs["padding_mask"],
                attention_mask=inputs["permutation_mask"],
                query=query,
                query_positions=target_positions,
                training=training,
            )
        return hidden, query

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "max_sequence_length": self.max_sequence_length,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "XLNetBackbone":
        return cls(**config)
