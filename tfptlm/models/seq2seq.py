"""Shared plumbing of the encoder-decoder backbones (T5, BART).

A subclass creates its layers (`encoder_blocks`, `decoder_blocks`,
`lm_head` and whatever its hooks use) and sets `num_layers`, `num_heads`,
`hidden_dim`; it implements the three hooks `_embed`, `_attention_bias` and
`_final` for each stack ("encoder" / "decoder"), then calls
:meth:`Seq2SeqBackbone._build_functional`.

Inputs are a dict of int ``[batch, length]`` tensors ``encoder_token_ids``,
``encoder_padding_mask``, ``decoder_token_ids`` and ``decoder_padding_mask``
(masks: 1 for real tokens); outputs are a dict of
``encoder_sequence_output`` ``[batch, source_length, hidden]`` and
``decoder_sequence_output`` ``[batch, target_length, hidden]``.

Generation:
  - :meth:`Seq2SeqBackbone.encode` runs the encoder once.
  - :meth:`Seq2SeqBackbone.init_cache` makes the decoder self-attention cache
    ``[batch, num_layers, 2, max_length, num_heads, hidden // num_heads]``
    (``cache[:, i, 0]`` keys, ``cache[:, i, 1]`` values of decoder block i).
  - :meth:`Seq2SeqBackbone.compute_cross_attention_cache` optionally
    projects the encoder outputs once to every block's cross-attention
    keys/values, ``[batch, num_layers, 2, source_length, num_heads, head]``.
  - :meth:`Seq2SeqBackbone.call_decoder_with_cache` runs T decoder tokens at
    positions [index, index + T) and returns (logits, hidden, new_cache).

Example:
    >>> backbone = T5Backbone.from_size("tiny", vocabulary_size=100)
    >>> encoder_outputs = backbone.encode(source_ids, source_mask)
    >>> cross = backbone.compute_cross_attention_cache(encoder_outputs)
    >>> cache = backbone.init_cache(batch_size=2, max_length=16)
    >>> logits, _, cache = backbone.call_decoder_with_cache(
    ...     start_ids, encoder_outputs, source_mask, cache, 0, cross_attention_cache=cross)
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from tfptlm.models.named_sizes import NamedSizes
from tfptlm.layers.encoder_block import head_size

INPUT_NAMES = (
    "encoder_token_ids",
    "encoder_padding_mask",
    "decoder_token_ids",
    "decoder_padding_mask",
)


class Seq2SeqBackbone(NamedSizes, keras.Model):
    """Base class of the encoder-decoder backbones; see the module docstring.

    Subclasses set `SIZES` (named sizes for :meth:`from_size`) and `FAMILY`
    (the name used in error messages).

    Example:
        >>> backbone = BartBackbone.from_size("tiny", vocabulary_size=100)
        >>> hidden = backbone(inputs)["decoder_sequence_output"]
        >>> logits = backbone.logits(hidden)  # float32 [B, T, V]
    """

    # === Hooks ===

    def _embed(self, stack: str, token_ids: Any, start_index: Any, training: Any) -> Any:
        """Returns the embedded tokens [B, T, H] of `stack` starting at `start_index`."""
        raise NotImplementedError

    def _attention_bias(
        self, stack: str, x: Any, key_length: Any, query_start: Any
    ) -> Any:
        """Returns the self-attention bias [1, heads, T, key_length] of `stack`, or None."""
        raise NotImplementedError

    def _final(self, stack: str, x: Any, training: Any) -> Any:
        """Applies what follows the last block of `stack` (e.g. a final norm)."""
        raise NotImplementedError

    # === Shared forward passes ===

    def _build_functional(self, **kwargs: Any) -> None:
        """Wires the functional graph and initializes the keras.Model."""
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name) for name in INPUT_NAMES
        }
        encoder_outputs = self._run_encoder(
            inputs["encoder_token_ids"], inputs["encoder_padding_mask"]
        )
        decoder_outputs, _ = self._run_decoder(
            inputs["decoder_token_ids"],
            encoder_outputs,
            inputs["encoder_padding_mask"],
            decoder_padding_mask=inputs["decoder_padding_mask"],
        )
        super().__init__(
            inputs=inputs,
            outputs={
                "encoder_sequence_output": encoder_outputs,
                "decoder_sequence_output": decoder_outputs,
            },
            **kwargs,
        )

    def _run_encoder(self, token_ids: Any, padding_mask: Any, training: Any = None) -> Any:
        x = self._embed("encoder", token_ids, 0, training)
        bias = self._attention_bias("encoder", x, None, 0)
        for block in self.encoder_blocks:
            x = block(x, padding_mask=padding_mask, attention_bias=bias, training=training)
        return self._final("encoder", x, training)

    def _run_decoder(
        self,
        token_ids: Any,
        encoder_outputs: Any,
        encoder_padding_mask: Any,
        decoder_padding_mask: Any = None,
        cache: Any = None,
        cache_update_index: Any = None,
        cross_attention_cache: Any = None,
        training: Any = None,
    ) -> tuple[Any, Any]:
        start_index = 0 if cache_update_index is None else cache_update_index
        x = self._embed("decoder", token_ids, start_index, training)
        key_length = None if cache is None else ops.shape(cache)[3]
        bias = self._attention_bias("decoder", x, key_length, start_index)
        new_caches = []
        for i, block in enumerate(self.decoder_blocks):
            outputs = block(
                x,
                encoder_outputs,
                decoder_padding_mask=decoder_padding_mask,
                encoder_padding_mask=encoder_padding_mask,
                self_attention_bias=bias,
                training=training,
                self_attention_cache=None if cache is None else cache[:, i],
                self_attention_cache_update_index=cache_update_index,
                cross_attention_cache=(
                    None if cross_attention_cache is None else cross_attention_cache[:, i]
                ),
            )
            if cache is None:
                x = outputs
            else:
                x, layer_cache = outputs
                new_caches.append(layer_cache)
        x = self._final("decoder", x, training)
        return x, (ops.stack(new_caches, axis=1) if new_caches else None)

    # === Public API ===

    def logits(self, decoder_hidden: Any) -> Any:
        """Returns float32 logits [B, T, V] of decoder hidden states [B, T, H]."""
        return self.lm_head(decoder_hidden)

    def encode(self, encoder_token_ids: Any, encoder_padding_mask: Any) -> Any:
        """Runs the encoder (inference): [B, S] ids and mask -> [B, S, H] outputs."""
        return self._run_encoder(encoder_token_ids, encoder_padding_mask, training=False)

    def _check_max_length(self, max_length: int) -> None:
        """Raises when the decoder cannot hold `max_length` positions (no limit by default)."""

    def init_cache(self, batch_size: int, max_length: int) -> Any:
        """Returns a zero decoder self-attention cache [B, layers, 2, max_length, heads, head]."""
        self._check_max_length(max_length)
        shape = (
            batch_size,
            self.num_layers,
            2,
            max_length,
            self.num_heads,
            head_size(self.hidden_dim, self.num_heads),
        )
        return ops.zeros(shape, dtype=self.compute_dtype)

    def compute_cross_attention_cache(self, encoder_outputs: Any) -> Any:
        """Returns each decoder block's cross-attention keys/values [B, layers, 2, S, heads, head]."""
        return ops.stack(
            [
                block.cross_attention.precompute_key_value(encoder_outputs)
                for block in self.decoder_blocks
            ],
            axis=1,
        )

    def call_decoder_with_cache(
        self,
        decoder_token_ids: Any,
        encoder_outputs: Any,
        encoder_padding_mask: Any,
        cache: Any,
        cache_update_index: Any,
        cross_attention_cache: Any = None,
    ) -> tuple[Any, Any, Any]:
        """Runs T decoder tokens at positions [index, index + T) against the cache (inference).

        Args:
            decoder_token_ids: int [B, T]; T = the decoder prompt length for
                the prefill (index 0), then 1 per generated token.
            encoder_outputs: [B, S, H] from :meth:`encode`; may be None when
                `cross_attention_cache` is given.
            encoder_padding_mask: [B, S], 1 for real encoder tokens.
            cache: from :meth:`init_cache` or the previous call.
            cache_update_index: scalar int, the position of decoder_token_ids[:, 0].
            cross_attention_cache: optional, from
                :meth:`compute_cross_attention_cache`; without it the
                cross-attention keys/values are recomputed from
                `encoder_outputs` at every call.

        Returns:
            (logits float32 [B, T, V], hidden [B, T, H], new cache), where
            position t attends to the cached positions <= index + t only.
        """
        hidden, new_cache = self._run_decoder(
            decoder_token_ids,
            encoder_outputs,
            encoder_padding_mask,
            cache=cache,
            cache_update_index=cache_update_index,
            cross_attention_cache=cross_attention_cache,
            training=False,
        )
        return self.logits(hidden), hidden, new_cache

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Seq2SeqBackbone":
        return cls(**config)
