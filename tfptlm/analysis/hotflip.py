"""A gradient-guided word-flip attack on classifiers (HotFlip, Ebrahimi et al. 2018).

For each text the model still labels correctly, the attack replaces one
token at a time: with ``g_i`` the gradient of the loss at position ``i``'s
word embedding ``e_i`` (from the one-hot view, the first-order change of the
loss when ``e_i`` becomes ``e_v`` is ``(e_v - e_i) . g_i``), it flips the
position and replacement with the largest promised increase, then checks the
prediction again. It stops when the prediction is wrong or after
``max_flips`` flips; each position is flipped at most once. Positions and
replacements are whole-word vocabulary entries only (no special tokens or
``##`` pieces; stop-words too unless ``skip_stop_words``), so the attacked
token ids still read as words.

The per-position gradients come from the gradient of the word-embedding
matrix, which TensorFlow returns per looked-up position (``IndexedSlices``,
in row-major order of the token ids): no hook in the model is needed.

Example:

>>> result = hotflip_attack(classifier, inputs, labels, candidate_ids, max_flips=3)
>>> result.predictions, result.flips                      # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from tfptlm.training.adversarial import word_embedding_table


@dataclass
class FlipResult:
    """What `hotflip_attack` did to a batch.

    token_ids: the attacked ids ``[batch, length]``; predictions: the class
    predicted for them; flips: the number of flipped positions per example.
    """

    token_ids: np.ndarray
    predictions: np.ndarray
    flips: np.ndarray


def position_gradients(model: keras.Model, inputs: dict, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``[batch, classes]`` and the loss gradient at each position's word embedding ``[batch, length, dim]``.

    The loss is the summed cross-entropy, so each example's gradient is its own.
    """
    table = word_embedding_table(model)
    with tf.GradientTape() as tape:
        logits = model(inputs, training=False)
        loss = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
    gradient = tape.gradient(loss, table)
    ids = np.asarray(inputs["token_ids"])
    if not isinstance(gradient, tf.IndexedSlices) or gradient.values.shape[0] != ids.size:
        raise ValueError(
            f"{type(model.backbone).__name__} uses its word-embedding matrix outside the token "
            "lookup (e.g. a tied output head); the attack needs one gradient per position"
        )
    return np.asarray(logits), gradient.values.numpy().reshape(ids.shape + (-1,))


def hotflip_attack(
    model: keras.Model,
    inputs: dict,
    labels: np.ndarray,
    candidate_ids: np.ndarray,
    max_flips: int = 3,
    flippable: np.ndarray | None = None,
) -> FlipResult:
    """Attacks a batch of packed inputs (``token_ids``, ``segment_ids``, ``padding_mask``).

    Args:
        model: a classifier whose backbone has a ``token_embedding``.
        inputs: the packed batch (numpy or tensors).
        labels: int ``[batch]`` true classes.
        candidate_ids: the token ids that may be flipped and flipped in.
        max_flips: the most positions flipped per example.
        flippable: optional bool ``[batch, length]``: positions that may be
            flipped (default: positions holding a candidate id).
    """
    if max_flips < 1:
        raise ValueError(f"max_flips must be >= 1, got {max_flips}")
    inputs = {name: np.array(value) for name, value in inputs.items()}
    ids = inputs["token_ids"]
    labels = np.asarray(labels)
    candidate_ids = np.asarray(candidate_ids)
    table = np.asarray(word_embedding_table(model))
    candidate_rows = table[candidate_ids]  # [C, dim]
    allowed = np.isin(ids, candidate_ids) if flippable is None else np.array(flippable, bool)
    flips = np.zeros(len(ids), "int32")
    logits, gradients = position_gradients(model, inputs, labels)
    predictions = logits.argmax(-1)
    for round_ in range(max_flips):
        active = (predictions == labels) & allowed.any(axis=1)
        if not active.any():
            break
        # Promised loss increase of each (position, candidate): g . e_v - g . e_current.
        gains = gradients @ candidate_rows.T - np.einsum("btd,btd->bt", gradients, table[ids])[..., None]
        gains[~allowed] = -np.inf
        best = gains.reshape(len(ids), -1).argmax(axis=1)
        positions, candidates = np.unravel_index(best, gains.shape[1:])
        for example in np.flatnonzero(active):
            ids[example, positions[example]] = candidate_ids[candidates[example]]
            allowed[example, positions[example]] = False
            flips[example] += 1
        if round_ == max_flips - 1:  # no further flip: the predictions are enough
            logits = np.asarray(model(inputs, training=False))
        else:
            logits, gradients = position_gradients(model, inputs, labels)
        predictions = logits.argmax(-1)
    return FlipResult(ids, predictions, flips)
