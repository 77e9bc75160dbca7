"""GPT backbone: a pre-LN causal Transformer decoder (GPT-2 layout) with a KV cache.

Example:

>>> backbone = GPTBackbone.from_size("tiny", vocabulary_size=8000)
>>> hidden = backbone({
...     "token_ids": np.array([[2, 10, 11, 3]]),
...     "padding_mask": np.ones((1, 4), "int32"),
... })["sequence_output"]                                   # [1, 4, 128]
>>> logits = backbone.logits(hidden)                        # [1, 4, 8000], float32
>>> cache = backbone.init_cache(batch_size=1, max_length=16)
>>> logits, hidden, cache = backbone.call_with_cache(np.array([[2, 10]]), cache, 0)
>>> logits, hidden, cache = backbone.call_with_cache(np.array([[11]]), cache, 2)
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from tfptlm.models.named_sizes import NamedSizes
from tfptlm.layers import (
    LanguageModelHead,
    TransformerDecoderBlock,
    TransformerEmbeddings,
    gelu_approximate,
)
from tfptlm.layers.encoder_block import head_size

#: Named sizes; base is GPT-2 small (124M parameters with its 50257 tokens).
GPT_SIZES = {
    "tiny": dict(num_layers=2, hidden_dim=128, num_heads=2, intermediate_dim=512),
    "small": dict(num_layers=6, hidden_dim=512, num_heads=8, intermediate_dim=2048),
    "base": dict(num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072),
}


@keras.saving.register_keras_serializable(package="tfptlm")
class GPTBackbone(NamedSizes, keras.Model):
    """A GPT-2 style decoder (Radford et al. 2019).

    x = Dropout(token_embedding[token_ids] + position_embedding[positions])
    x = pre-LN causal decoder blocks (tanh-GELU feed-forward), then a final LayerNorm.

    A functional model: inputs are a dict of ``token_ids`` and
    ``padding_mask`` (1 for real tokens), each int ``[batch, length]``; the
    output is a dict with ``sequence_output`` ``[batch, length, hidden]``.
    The output projection is tied to the token embedding: :meth:`logits`.

    Generation uses a key/value cache of layout
    ``[batch, num_layers, 2, max_length, num_heads, hidden // num_heads]``
    (``cache[:, i, 0]`` the keys and ``cache[:, i, 1]`` the values of block
    i), made by :meth:`init_cache` and filled by :meth:`call_with_cache`.

    Args:
        vocabulary_size: number of token ids.
        num_layers: number of decoder blocks.
        num_heads: attention heads.
        hidden_dim: hidden size.
        intermediate_dim: inner size of the feed-forward networks.
        max_sequence_length: number of learned positions.
        dropout: dropout on embeddings, sub-layers and attention probabilities.
        layer_norm_epsilon: epsilon of the layer norms.

    Example:
        >>> backbone = GPTBackbone(vocabulary_size=50, num_layers=2, num_heads=2,
        ...                        hidden_dim=32, intermediate_dim=64)
        >>> cache = backbone.init_cache(batch_size=2, max_length=8)
        >>> logits, _, cache = backbone.call_with_cache(np.ones((2, 3), "int32"), cache, 0)
    """

    #: Named sizes of `from_size`, and the family name in its error message.
    SIZES = GPT_SIZES
    FAMILY = "GPT"

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
        self.embeddings = TransformerEmbeddings(
            vocabulary_size=vocabulary_size,
            hidden_dim=hidden_dim,
            max_sequence_length=max_sequence_length,
            num_segments=0,
            dropout=dropout,
            use_layer_norm=False,
            name="embeddings",
        )
        self.decoder_blocks = [
            TransformerDecoderBlock(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                activation=gelu_approximate,
                dropout=dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                norm_first=True,
                use_cross_attention=False,
                name=f"decoder_block_{i}",
            )
            for i in range(num_layers)
        ]
        self.final_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="final_layer_norm"
        )
        self.lm_head = LanguageModelHead(
            vocabulary_size, token_embedding=self.embeddings.token_embedding, name="lm_head"
        )
        self.lm_head.build((None, None, hidden_dim))

        # === Functional model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        x = self.embeddings(token_ids)
        for block in self.decoder_blocks:
            x = block(x, decoder_padding_mask=padding_mask)
        x = self.final_layer_norm(x)
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs={"sequence_output": x},
            **kwargs,
        )

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
        """The token embedding layer; its matrix is also the output projection."""
        return self.embeddings.token_embedding

    def logits(self, hidden: Any) -> Any:
        """Returns float32 logits [B, T, V] = hidden @ token_embedding^T."""
        return self.lm_head(hidden)

    def init_cache(self, batch_size: int, max_length: int) -> Any:
        """Returns an all-zero key/value cache [B, layers, 2, max_length, heads, head_size]."""
        if max_length > self.max_sequence_length:
            raise ValueError(
                f"max_length={max_length} is longer than the model's "
                f"max_sequence_length={self.max_sequence_length}."
            )
        shape = (
            batch_size,
            self.num_layers,
            2,
            max_length,
            self.num_heads,
            head_size(self.hidden_dim, self.num_heads),
        )
        return ops.zeros(shape, dtype=self.compute_dtype)

    def call_with_cache(
        self, token_ids: Any, cache: Any, cache_update_index: Any
    ) -> tuple[Any, Any, Any]:
        """Runs T new tokens at positions [index, index + T) against the cache (inference).

        Args:
            token_ids: int [B, T]; T = the prompt length for the prefill
                (index 0), then 1 per generated token.
            cache: from :meth:`init_cache` or the previous call.
            cache_update_index: scalar int, the position of token_ids[:, 0].

        Returns:
            (logits float32 [B, T, V], hidden [B, T, H], new cache), where
            position t attends to the cached positions <= index + t only.
        """
        x = self.embeddings(token_ids, start_index=cache_update_index, training=False)
        new_caches = []
        for i, block in enumerate(self.decoder_blocks):
            x, layer_cache = block(
                x,
                self_attention_cache=cache[:, i],
                self_attention_cache_update_index=cache_update_index,
                training=False,
            )
            new_caches.append(layer_cache)
        hidden = self.final_layer_norm(x)
        return self.logits(hidden), hidden, ops.stack(new_caches, axis=1)

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

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "GPTBackbone":
        return cls(**config)
