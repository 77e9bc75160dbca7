"""BART backbone: post-LN encoder-decoder with learned positions and tied embeddings.

Example:

>>> backbone = BartBackbone.from_size("tiny", vocabulary_size=8000)
>>> outputs = backbone({
...     "encoder_token_ids": np.array([[0, 12, 13, 2]]),
...     "encoder_padding_mask": np.ones((1, 4), "int32"),
...     "decoder_token_ids": np.array([[2, 0]]),
...     "decoder_padding_mask": np.ones((1, 2), "int32"),
... })
>>> logits = backbone.logits(outputs["decoder_sequence_output"])  # [1, 2, 8000]
"""

from __future__ import annotations

from typing import Any

import keras

from tfptlm.layers.initializers import width_scaled_initializer
from tfptlm.layers import (
    LanguageModelHead,
    TransformerDecoderBlock,
    TransformerEmbeddings,
    TransformerEncoderBlock,
)
from tfptlm.models.seq2seq import Seq2SeqBackbone

#: Named sizes; base is bart-base (6 encoder + 6 decoder layers).
BART_SIZES = {
    "tiny": dict(num_layers=2, hidden_dim=128, num_heads=2, intermediate_dim=512),
    "small": dict(num_layers=6, hidden_dim=512, num_heads=8, intermediate_dim=2048),
    "base": dict(num_layers=6, hidden_dim=768, num_heads=12, intermediate_dim=3072),
}


@keras.saving.register_keras_serializable(package="tfptlm")
class BartBackbone(Seq2SeqBackbone):
    """A BART encoder-decoder (Lewis et al. 2019).

    Each stack: x = Dropout(LN(token_embedding[ids] + position_embedding[positions]))
    (`encoder_embeddings` / `decoder_embeddings`, each with its own learned
    positions and embedding LayerNorm, sharing one token embedding), then
    post-LN blocks with exact GELU feed-forward networks. The output
    projection is the token embedding's transpose plus a learned bias
    (`lm_head.output_bias`, BART's final_logits_bias).

    Inputs, outputs and the generation API (cache layout
    [B, num_layers, 2, max_length, num_heads, hidden // num_heads]): see
    :mod:`tfptlm.models.seq2seq`.

    Args:
        vocabulary_size: number of token ids.
        num_layers: blocks in each of the encoder and the decoder.
        num_heads: attention heads.
        hidden_dim: model size.
        intermediate_dim: inner size of the feed-forward networks.
        max_sequence_length: learned positions of each stack.
        dropout: dropout rate everywhere.
        layer_norm_epsilon: epsilon of the layer norms.

    Example:
        >>> backbone = BartBackbone(vocabulary_size=100, num_layers=2, num_heads=2,
        ...                         hidden_dim=32, intermediate_dim=64)
        >>> encoder_outputs = backbone.encode(source_ids, source_mask)
        >>> cache = backbone.init_cache(batch_size=2, max_length=10)
        >>> logits, hidden, cache = backbone.call_decoder_with_cache(
        ...     np.full((2, 1), 2, "int32"), encoder_outputs, source_mask, cache, 0)
    """

    SIZES = BART_SIZES
    FAMILY = "BART"

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        max_sequence_length: int = 1024,
        dropout: float = 0.1,
        layer_norm_epsilon: float = 1e-5,
        **kwargs: Any,
    ) -> None:
        # === Layers ===
        embedding_args = dict(
            vocabulary_size=vocabulary_size,
            hidden_dim=hidden_dim,
            max_sequence_length=max_sequence_length,
            num_segments=0,
            dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
        )
        self.encoder_embeddings = TransformerEmbeddings(name="encoder_embeddings", **embedding_args)
        self.decoder_embeddings = TransformerEmbeddings(
            token_embedding=self.encoder_embeddings.token_embedding,
            name="decoder_embeddings",
            **embedding_args,
        )
        block_args = dict(
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            activation="gelu",
            dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            kernel_initializer=width_scaled_initializer(hidden_dim),
        )
        self.encoder_blocks = [
            TransformerEncoderBlock(name=f"encoder_block_{i}", **block_args)
            for i in range(num_layers)
        ]
        self.decoder_blocks = [
            TransformerDecoderBlock(name=f"decoder_block_{i}", **block_args)
            for i in range(num_layers)
        ]
        self.lm_head = LanguageModelHead(
            vocabulary_size,
            token_embedding=self.encoder_embeddings.token_embedding,
            use_bias=True,
            name="lm_head",
        )
        self.lm_head.build((None, None, hidden_dim))

        self._build_functional(**kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.max_sequence_length = max_sequence_length
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon

    @property
    def token_embedding(self) -> keras.layers.Embedding:
        """The token embedding shared by encoder, decoder and the output projection."""
        return self.encoder_embeddings.token_embedding

    def _embed(self, stack: str, token_ids: Any, start_index: Any, training: Any) -> Any:
        embeddings = getattr(self, f"{stack}_embeddings")
        return embeddings(token_ids, start_index=start_index, training=training)

    def _attention_bias(self, stack: str, x: Any, key_length: Any, query_start: Any) -> None:
        return None

    def _final(self, stack: str, x: Any, training: Any) -> Any:
        return x

    def _check_max_length(self, max_length: int) -> None:
        if max_length > self.max_sequence_length:
            raise ValueError(
                f"max_length={max_length} is longer than the model's "
                f"max_sequence_length={self.max_sequence_length}."
            )

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "max_sequence_length": self.max_sequence_length,
            "dropout": self.dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }
