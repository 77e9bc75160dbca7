"""Whole-word and n-gram masking for the MLM objective, in the TF graph.

A *word* is a word-start token followed by its continuation tokens (the
``##`` pieces of WordPiece, the pieces without ``▁`` of SentencePiece, the
tokens without ``Ġ`` of byte-level BPE; see each tokenizer's
``word_start_flags``). :class:`WholeWordMasker` chooses whole words (BERT's
whole-word masking) or n-grams of up to ``max_ngram`` whole words (ALBERT's
n-gram masking), never part of a word, and masks their tokens 80/10/10 like
:class:`~tfptlm.data.objectives.mlm.MaskedLMMasker`, with the same outputs.

**Continuation flags.** The vocabulary alone cannot tell word boundaries in
Chinese (every character is a piece of its own), so ids may carry a flag: an
id ``i + vocabulary_size`` is the token ``i`` marked as a continuation of the
word before it. ``TokenizedCorpus.build(..., word_segmenter="jieba")`` stores
the non-first pieces of every jieba word that way; :func:`flag_continuations`
does it for any word segmentation. The masker always decodes the flag: a token
starts a word when ``word_starts[real_id]`` is True and it is not flagged; all
its outputs hold real ids only. Byte-level BPE pieces of Chinese text carry no
``Ġ``, so with a segmented corpus and that tokenizer pass
``word_starts=np.ones(vocabulary_size, bool)``: the flags alone then define the
words.

Example:

>>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "play", "##ing", "the"]
>>> masker = WholeWordMasker(8, mask_id=4, unselectable_ids=[0, 1, 2, 3],
...                          word_starts=[not t.startswith("##") for t in vocab],
...                          mask_rate=0.6, max_predictions=4)
>>> out = masker(tf.ragged.constant([[2, 7, 5, 6, 3]]), seed=tf.constant([1, 2]))
>>> out["mask_positions"].numpy().tolist() in ([[1, 0, 0, 0]], [[2, 3, 0, 0]])
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from tfptlm.data.objectives.mlm import MaskedLMMasker, _StatelessMaskValuesChooser


def flag_continuations(
    token_ids: tf.Tensor | tf.RaggedTensor,
    word_starts: tf.Tensor | tf.RaggedTensor,
    vocabulary_size: int,
) -> tf.Tensor | tf.RaggedTensor:
    """Marks the tokens that do not start a word: their id becomes ``id + vocabulary_size``.

    Args:
        token_ids: int ids, dense or ragged.
        word_starts: bool, same shape: True where a token begins a word.
        vocabulary_size: the tokenizer's vocabulary size.

    Example:

    >>> flag_continuations(tf.ragged.constant([[7, 8, 9]]),
    ...                    tf.ragged.constant([[True, False, True]]), 100).to_list()
    [[7, 108, 9]]
    """
    if isinstance(token_ids, tf.RaggedTensor):
        flat = flag_continuations(token_ids.flat_values, word_starts.flat_values, vocabulary_size)
        return token_ids.with_flat_values(flat)
    token_ids = tf.convert_to_tensor(token_ids)
    offset = tf.constant(vocabulary_size, token_ids.dtype)
    return tf.where(word_starts, token_ids, token_ids + offset)


def remove_continuation_flags(
    token_ids: tf.Tensor | tf.RaggedTensor, vocabulary_size: int
) -> tf.Tensor | tf.RaggedTensor:
    """The real ids of possibly flagged ids (see :func:`flag_continuations`).

    Example:

    >>> remove_continuation_flags(tf.constant([7, 108, 9]), 100).numpy().tolist()
    [7, 8, 9]
    """
    if isinstance(token_ids, tf.RaggedTensor):
        return token_ids.with_flat_values(
            remove_continuation_flags(token_ids.flat_values, vocabulary_size)
        )
    token_ids = tf.convert_to_tensor(token_ids)
    offset = tf.constant(vocabulary_size, token_ids.dtype)
    return tf.where(token_ids >= offset, token_ids - offset, token_ids)


def _uniform(shape, seed: tf.Tensor | None, **kwargs) -> tf.Tensor:
    """``tf.random.uniform``, or its stateless twin when ``seed`` is given."""
    if seed is None:
        return tf.random.uniform(shape, **kwargs)
    return tf.random.stateless_uniform(shape, seed=seed, **kwargs)


def _greedy_take(lengths: tf.Tensor, budget: tf.Tensor) -> tf.Tensor:
    """Takes units in column order while they fit, like Google's create_pretraining_data.

    Args:
        lengths: ``[B, U]`` int32 token counts of the units in the order they
            are tried, 0 for padding.
        budget: ``[B]`` int32 tokens each row may take.

    Returns:
        ``[B, U]`` bool: the units taken. A unit that does not fit in what is
        left of the budget is skipped and later (shorter) ones are still tried.
    """
    num_units = tf.shape(lengths)[1]
    columns = tf.range(num_units)

    def body(k, remaining, take):
        length = lengths[:, k]
        fits = (length > 0) & (length <= remaining)
        remaining -= tf.where(fits, length, 0)
        take |= fits[:, tf.newaxis] & tf.equal(columns, k)[tf.newaxis, :]
        return k + 1, remaining, take

    def more(k, remaining, take):
        return (k < num_units) & tf.reduce_any(remaining > 0)

    _, _, take = tf.while_loop(
        more, body, (tf.constant(0), budget, tf.zeros_like(lengths, tf.bool))
    )
    return take


class WholeWordMasker(MaskedLMMasker):
    """Masks whole words (or n-grams of whole words) of a ragged batch for MLM.

    Same arguments and outputs as :class:`MaskedLMMasker`, with words as the
    units of selection. Each row may predict ``min(max_predictions, max(1,
    round(mask_rate * n)))`` tokens, ``n`` its number of selectable tokens (0
    when ``n == 0``). Units are tried in a random order and taken only if all
    their tokens fit in what is left of that budget, so a chosen word is
    always masked entirely. Ids in ``unselectable_ids`` are never chosen and
    always end a word. The chosen tokens are replaced 80/10/10 (each token
    draws on its own), and ``mask_positions`` are ascending within a row.

    With ``max_ngram > 1`` (ALBERT n-gram masking), the units are n-grams of
    consecutive whole words: every run of words between unselectable tokens is
    cut into consecutive chunks whose lengths are drawn independently with
    ``p(n) ∝ 1/n`` for ``n = 1..max_ngram`` (the last chunk of a run may be
    shorter), anew at every call; the chunks are the units. A chunk that does
    not fit in the budget is skipped, not shortened (ALBERT's own data script
    retries it with fewer words), so a row may predict a little less than its
    budget.

    Ids ``>= vocabulary_size`` are continuation-flagged (module docstring).

    Args:
        vocabulary_size: size of the vocabulary (random replacement range).
        mask_id: id of the ``[MASK]`` token.
        unselectable_ids: ids never chosen for prediction.
        word_starts: bool ``[vocabulary_size]``: True for tokens that begin a
            word (e.g. ``tokenizer.word_start_flags()``).
        mask_rate: fraction of selectable tokens to predict.
        max_predictions: predictions per row; the width ``P`` of the outputs.
        mask_token_rate: fraction of chosen tokens replaced by ``mask_id``.
        random_token_rate: fraction of chosen tokens replaced by a random id.
        max_ngram: largest number of words in one unit; 1 = whole words.

    Example:

    >>> masker = WholeWordMasker(tokenizer.vocabulary_size, tokenizer.mask_id,
    ...                          tokenizer.special_token_ids,
    ...                          tokenizer.word_start_flags(), max_ngram=3)  # doctest: +SKIP
    >>> out = masker(tokenizer.tokenize(["unbelievable playing"]))  # doctest: +SKIP
    """

    def __init__(
        self,
        vocabulary_size: int,
        mask_id: int,
        unselectable_ids: Sequence[int],
        word_starts: Sequence[bool] | np.ndarray,
        mask_rate: float = 0.15,
        max_predictions: int = 20,
        mask_token_rate: float = 0.8,
        random_token_rate: float = 0.1,
        max_ngram: int = 1,
    ):
        super().__init__(
            vocabulary_size,
            mask_id,
            unselectable_ids,
            mask_rate=mask_rate,
            max_predictions=max_predictions,
            mask_token_rate=mask_token_rate,
            random_token_rate=random_token_rate,
        )
        word_starts = np.asarray(word_starts, dtype=bool)
        if word_starts.shape != (self.vocabulary_size,):
            raise ValueError(
                f"word_starts must be a bool vector of length vocabulary_size="
                f"{self.vocabulary_size}, got shape {word_starts.shape}."
            )
        outside = [i for i in self.unselectable_ids if not 0 <= i < self.vocabulary_size]
        if outside:
            raise ValueError(
                f"unselectable_ids must be in [0, {self.vocabulary_size}), got {outside}."
            )
        if int(max_ngram) != max_ngram or max_ngram < 1:
            raise ValueError(f"max_ngram must be an integer >= 1, got {max_ngram}.")
        self.word_starts = word_starts
        self.max_ngram = int(max_ngram)
        selectable = np.ones(self.vocabulary_size, dtype=bool)
        selectable[self.unselectable_ids] = False
        self._selectable = selectable
        weights = 1.0 / np.arange(1, self.max_ngram + 1)
        cdf = np.cumsum(weights) / weights.sum()
        cdf[-1] = 1.0
        self._ngram_cdf = cdf.astype(np.float32)

    def __call__(self, token_ids: tf.RaggedTensor, seed: tf.Tensor | None = None) -> dict:
        """Masks ``token_ids`` (int ragged ``[B, (T)]``, ids may be flagged).

        Args:
            token_ids: the batch to mask.
            seed: optional ``[2]`` int32/int64 stateless seed; same seed, same
                masks. Without it, stateful random ops draw new masks each call.

        Returns:
            A dict with ``token_ids`` (ragged, masked, real ids), and dense
            ``[B, P]`` ``mask_positions`` (int32, ascending, padded 0),
            ``mask_ids`` (int32, the original real ids, padded 0) and
            ``mask_weights`` (float32, 1 for real predictions, 0 for padding).
        """
        token_ids = tf.cast(token_ids, tf.int32)
        if seed is None:
            chunk_seed = order_seed = value_seed = None
        else:
            chunk_seed, order_seed, value_seed = tf.unstack(
                tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
            )
        real_ids = remove_continuation_flags(token_ids, self.vocabulary_size)
        ids = real_ids.flat_values
        row = token_ids.value_rowids()
        position = tf.range(tf.size(ids, out_type=tf.int64)) - tf.gather(
            token_ids.row_splits, row
        )
        selectable = tf.gather(tf.constant(self._selectable), ids)
        word_start = tf.gather(tf.constant(self.word_starts), ids) & (
            token_ids.flat_values < self.vocabulary_size
        )
        after_unselectable = ~tf.concat([[True], selectable[:-1]], axis=0)
        starts = word_start | ~selectable | after_unselectable | (position == 0)

        # Words: [W] first tokens and lengths; the selectable ones: [M].
        word_of_token = tf.cumsum(tf.cast(starts, tf.int64)) - 1
        first_token = tf.where(starts)[:, 0]
        word_length = tf.concat([first_token[1:], tf.shape(ids, tf.int64)], axis=0) - first_token
        selectable_words = tf.where(tf.gather(selectable, first_token))[:, 0]
        unit_of_word = self._units(selectable_words, first_token, position, chunk_seed)

        # Units: [U] token counts and rows, tried in a random order per row.
        unit_length = tf.math.segment_sum(
            tf.cast(tf.gather(word_length, selectable_words), tf.int32), unit_of_word
        )
        unit_start = tf.concat([[True], unit_of_word[1:] != unit_of_word[:-1]], axis=0)
        unit_start = unit_start[: tf.size(unit_of_word)]
        unit_first_token = tf.gather(first_token, tf.boolean_mask(selectable_words, unit_start))
        unit_row = tf.gather(row, unit_first_token)
        batch_size = token_ids.nrows()
        units = tf.RaggedTensor.from_value_rowids(unit_length, unit_row, nrows=batch_size)
        keys = units.with_flat_values(_uniform(tf.shape(unit_length), order_seed))
        order = tf.argsort(keys.to_tensor(2.0), axis=1, stable=True)
        budget = self._budget(real_ids, selectable)
        take = _greedy_take(tf.gather(units.to_tensor(0), order, batch_dims=1), budget)
        take = tf.gather(take, tf.argsort(order, axis=1), batch_dims=1)
        unit_taken = tf.RaggedTensor.from_tensor(take, lengths=units.row_lengths()).flat_values

        # Back to tokens.
        word_taken = tf.scatter_nd(
            selectable_words[:, tf.newaxis],
            tf.cast(tf.gather(unit_taken, unit_of_word), tf.int32),
            tf.shape(first_token, tf.int64),
        )
        chosen = real_ids.with_flat_values(tf.gather(word_taken, word_of_token) > 0)
        positions = tf.ragged.boolean_mask(
            real_ids.with_flat_values(tf.cast(position, tf.int32)), chosen
        )
        original_ids = tf.ragged.boolean_mask(real_ids, chosen)
        new_values = self._chooser(value_seed).get_mask_values(original_ids).flat_values
        masked = tf.tensor_scatter_nd_update(ids, tf.where(chosen.flat_values), new_values)
        shape = tf.stack([batch_size, tf.constant(self.max_predictions, batch_size.dtype)])
        return {
            "token_ids": real_ids.with_flat_values(masked),
            "mask_positions": positions.to_tensor(0, shape=shape),
            "mask_ids": original_ids.to_tensor(0, shape=shape),
            "mask_weights": tf.ones_like(positions, tf.float32).to_tensor(0.0, shape=shape),
        }

    def _budget(self, real_ids: tf.RaggedTensor, selectable: tf.Tensor) -> tf.Tensor:
        """``[B]`` int32 tokens to predict per row."""
        count = tf.reduce_sum(tf.cast(real_ids.with_flat_values(selectable), tf.int32), axis=1)
        wanted = tf.cast(tf.round(self.mask_rate * tf.cast(count, tf.float64)), tf.int32)
        budget = tf.minimum(self.max_predictions, tf.maximum(1, wanted))
        return tf.where(count > 0, budget, 0)

    def _units(
        self,
        selectable_words: tf.Tensor,
        first_token: tf.Tensor,
        position: tf.Tensor,
        seed: tf.Tensor | None,
    ) -> tf.Tensor:
        """``[M]`` int64 unit index of each selectable word (ascending from 0)."""
        count = tf.size(selectable_words, out_type=tf.int64)
        if self.max_ngram == 1:
            return tf.range(count)
        # A run of consecutive selectable words starts a row or follows an
        # unselectable token, i.e. a gap in the word indices.
        run_start = (tf.gather(position, tf.gather(first_token, selectable_words)) == 0) | (
            tf.concat([[True], selectable_words[1:] - selectable_words[:-1] > 1], axis=0)[:count]
        )
        run = tf.cumsum(tf.cast(run_start, tf.int64)) - 1
        run_first = tf.where(run_start)[:, 0]
        run_end = tf.concat([run_first[1:], [count]], axis=0)
        # Chunk k of a run starts after the run's first k drawn lengths.
        draw = _uniform(tf.shape(selectable_words), seed)
        cdf = tf.constant(self._ngram_cdf)
        lengths = 1 + tf.searchsorted(cdf, draw, side="right", out_type=tf.int64)
        offsets = tf.cumsum(lengths, exclusive=True)
        first = tf.gather(run_first, run)
        chunk_first = first + offsets - tf.gather(offsets, first)
        chunk_first = tf.boolean_mask(chunk_first, chunk_first < tf.gather(run_end, run))
        chunk_start = tf.scatter_nd(
            chunk_first[:, tf.newaxis], tf.ones_like(chunk_first), count[tf.newaxis]
        )
        return tf.cumsum(chunk_start) - 1

    def _chooser(self, seed: tf.Tensor | None) -> tf_text.MaskValuesChooser:
        """The 80/10/10 value chooser of ``MaskedLMMasker`` (stateless with a seed)."""
        if seed is None:
            return tf_text.MaskValuesChooser(
                self.vocabulary_size, self.mask_id, self.mask_token_rate, self.random_token_rate
            )
        return _StatelessMaskValuesChooser(
            self.vocabulary_size,
            self.mask_id,
            self.mask_token_rate,
            self.random_token_rate,
            seed,
        )
