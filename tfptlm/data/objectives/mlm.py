"""Dynamic masked-language-model masking (BERT 80/10/10), in the TF graph.

Built on tensorflow_text's ``RandomItemSelector``, ``MaskValuesChooser`` and
``mask_language_model``. Every call draws fresh masks, so masks change every
epoch. Passing a ``seed`` (a ``[2]`` int tensor) makes a call repeatable: it
then uses stateless random ops only.

Example:

>>> masker = MaskedLMMasker(vocabulary_size=100, mask_id=4,
...                         unselectable_ids=[0, 1, 2, 3, 4])
>>> out = masker(tf.ragged.constant([[2, 10, 11, 12, 3]]))
>>> sorted(out)
['mask_ids', 'mask_positions', 'mask_weights', 'token_ids']
>>> out["mask_positions"].shape
TensorShape([1, 20])
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
import tensorflow_text as tf_text


def _stateless_shuffle_fn(seed: tf.Tensor):
    """Returns a shuffle function for ``RandomItemSelector`` using ``seed``.

    The selector shuffles each row separately; the row's first flat position
    (unique per row) is folded into the seed so rows get independent draws.
    """

    def shuffle(positions: tf.Tensor) -> tf.Tensor:
        row_seed = tf.random.experimental.stateless_fold_in(
            seed, tf.cast(tf.reduce_min(positions), tf.int64)
        )
        noise = tf.random.stateless_uniform(tf.shape(positions), seed=row_seed)
        return tf.gather(positions, tf.argsort(noise))

    return shuffle


class _StatelessMaskValuesChooser(tf_text.MaskValuesChooser):
    """``MaskValuesChooser`` whose random draws come from a stateless seed."""

    def __init__(self, vocab_size, mask_token, mask_token_rate, random_token_rate, seed):
        super().__init__(vocab_size, mask_token, mask_token_rate, random_token_rate)
        self._seed = seed

    def get_mask_values(self, masked_lm_ids: tf.RaggedTensor) -> tf.RaggedTensor:
        ids = masked_lm_ids.flat_values
        choice_seed, token_seed = tf.unstack(tf.random.experimental.stateless_split(self._seed, 2))
        choice = tf.random.stateless_uniform(tf.shape(ids), seed=choice_seed)
        random_ids = tf.random.stateless_uniform(
            tf.shape(ids), seed=token_seed, maxval=self.vocab_size, dtype=ids.dtype
        )
        use_mask = choice < self._mask_token_rate
        use_random = (choice >= self._mask_token_rate) & (
            choice < self._mask_token_rate + self.random_token_rate
        )
        values = tf.where(use_mask, tf.cast(self.mask_token, ids.dtype), ids)
        values = tf.where(use_random, random_ids, values)
        return masked_lm_ids.with_flat_values(values)


class MaskedLMMasker:
    """Selects and masks tokens of a ragged batch for the MLM objective.

    ``mask_rate`` of each row's selectable tokens are chosen (rounded up, at
    least 1 when the row has any, at most ``max_predictions``). Of those,
    ``mask_token_rate`` become ``mask_id``, ``random_token_rate`` a random id in
    ``[0, vocabulary_size)``, the rest stay unchanged. Ids in
    ``unselectable_ids`` (special tokens, padding) are never chosen.

    Args:
        vocabulary_size: size of the vocabulary (random replacement range).
        mask_id: id of the ``[MASK]`` token.
        unselectable_ids: ids never chosen for prediction.
        mask_rate: fraction of selectable tokens to predict.
        max_predictions: predictions per row; the width ``P`` of the outputs.
        mask_token_rate: fraction of chosen tokens replaced by ``mask_id``.
        random_token_rate: fraction of chosen tokens replaced by a random id.

    Example:

    >>> masker = MaskedLMMasker(1000, mask_id=4, unselectable_ids=[0, 2, 3, 4],
    ...                         max_predictions=3)
    >>> out = masker(tf.ragged.constant([[2, 7, 8, 9, 3], [2, 5, 3]]))
    >>> out["mask_weights"].numpy()
    array([[1., 0., 0.],
           [1., 0., 0.]], dtype=float32)
    """

    def __init__(
        self,
        vocabulary_size: int,
        mask_id: int,
        unselectable_ids: Sequence[int],
        mask_rate: float = 0.15,
        max_predictions: int = 20,
        mask_token_rate: float = 0.8,
        random_token_rate: float = 0.1,
    ):
        if not 0.0 < mask_rate <= 1.0:
            raise ValueError(f"mask_rate must be in (0, 1], got {mask_rate}.")
        if max_predictions < 1:
            raise ValueError(f"max_predictions must be >= 1, got {max_predictions}.")
        if mask_token_rate < 0 or random_token_rate < 0 or mask_token_rate + random_token_rate > 1:
            raise ValueError(
                "mask_token_rate and random_token_rate must be >= 0 and sum to <= 1, "
                f"got {mask_token_rate} and {random_token_rate}."
            )
        self.vocabulary_size = int(vocabulary_size)
        self.mask_id = int(mask_id)
        self.unselectable_ids = sorted({int(i) for i in unselectable_ids} | {self.mask_id})
        self.mask_rate = mask_rate
        self.max_predictions = int(max_predictions)
        self.mask_token_rate = mask_token_rate
        self.random_token_rate = random_token_rate

    def __call__(self, token_ids: tf.RaggedTensor, seed: tf.Tensor | None = None) -> dict:
        """Masks ``token_ids`` (int32 ragged ``[B, (T)]``).

        Args:
            token_ids: the batch to mask.
            seed: optional ``[2]`` int32/int64 stateless seed; same seed, same
                masks. Without it, stateful random ops draw new masks each call.

        Returns:
            A dict with ``token_ids`` (ragged, masked), and dense ``[B, P]``
            ``mask_positions`` (int32, padded 0), ``mask_ids`` (int32, the
            original ids, padded 0) and ``mask_weights`` (float32, 1 for real
            predictions, 0 for padding).
        """
        token_ids = tf.cast(token_ids, tf.int32)
        if seed is None:
            shuffle_fn = None
            chooser = tf_text.MaskValuesChooser(
                self.vocabulary_size, self.mask_id, self.mask_token_rate, self.random_token_rate
            )
        else:
            seed = tf.cast(seed, tf.int64)
            select_seed, value_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
            shuffle_fn = _stateless_shuffle_fn(select_seed)
            chooser = _StatelessMaskValuesChooser(
                self.vocabulary_size,
                self.mask_id,
                self.mask_token_rate,
                self.random_token_rate,
                value_seed,
            )
        selector = tf_text.RandomItemSelector(
            max_selections_per_batch=self.max_predictions,
            selection_rate=self.mask_rate,
            unselectable_ids=self.unselectable_ids,
            shuffle_fn=shuffle_fn,
        )
        masked_ids, positions, original_ids = tf_text.mask_language_model(
            token_ids, item_selector=selector, mask_values_chooser=chooser
        )
        batch_size = token_ids.nrows()
        shape = tf.stack([batch_size, tf.constant(self.max_predictions, batch_size.dtype)])
        weights = tf.ones_like(positions, dtype=tf.float32)
        return {
            "token_ids": masked_ids,
            "mask_positions": tf.cast(positions, tf.int32).to_tensor(0, shape=shape),
            "mask_ids": tf.cast(original_ids, tf.int32).to_tensor(0, shape=shape),
            "mask_weights": weights.to_tensor(0.0, shape=shape),
        }
