"""Token attributions by integrated gradients (Sundararajan et al. 2017) for text classifiers.

For the word vectors ``x`` of a packed text and a baseline ``b``, the
attribution of token ``i`` is

    (x_i - b_i) . integral_0^1 dF(b + a (x - b)) / dx_i da

summed over the embedding dimensions, with ``F`` the target class's score.
The integral is a quadrature rule over ``steps`` points of ``a`` (the midpoint
Riemann sum by default, or Gauss-Legendre), and every point is one row of a
batch: ``steps`` points cost ``ceil(steps / batch_size)`` forward and backward
passes. Completeness: the attributions sum to ``F(x) - F(b)``, up to the
quadrature error, which `Attributions.completeness_error` reports.

Choices (and why):

- The path moves only the word vectors; positions, segments and the padding
  mask stay as they are, so the baseline is "the same sequence with no words".
- Baseline ``"pad"`` (default): the word vector of each token but
  ``[CLS]``/``[SEP]`` becomes the ``[PAD]`` vector (the model's own "nothing
  here" token); ``"zeros"``: the zero vector. The packing tokens
  (``[CLS]``, ``[SEP]``) keep their vectors, so their attribution is exactly 0
  and everything goes to the words (``[UNK]`` stands for a word and is
  attributed like one).
- Score ``"probability"`` (default): the softmax probability of the target
  class, so attributions are in probability units and sum to
  ``p(x) - p(baseline)``; ``"logit"``: its logit.
- Target: the predicted class unless given.
- Rule: the midpoint sum. A classifier can switch sharply somewhere on the
  path; Gauss-Legendre, whose points crowd at the ends, then converges no
  sooner than evenly spaced points (measured on the tiny classifier of
  tests/test_explain.py, probability of its text: error 2.5e-3 vs 8.6e-4 at
  64 points, 2.4e-6 vs 3.3e-7 at 128; 4.8e-2 vs 5.1e-2 at 32).

Example:

>>> result = integrated_gradients(classifier, inputs, target=1, steps=50)
>>> result.attributions.sum(), result.score - result.baseline_score   # ~equal
>>> result.completeness_error                                          # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from tfptlm.analysis.embedding_path import classifier_logits, explainable_backbone, word_vectors

METHODS = ("riemann_midpoint", "gauss_legendre")
BASELINES = ("pad", "zeros")
SCORES = ("probability", "logit")


@dataclass
class Attributions:
    """Integrated gradients of one packed text.

    attributions: one value per token ``[length]`` (0 on [CLS] and [SEP]).
    target: the explained class id. score / baseline_score: ``F`` at the text
    and at the baseline. completeness_error: ``|sum(attributions) - (score -
    baseline_score)|``.
    """

    attributions: np.ndarray
    target: int
    score: float
    baseline_score: float

    @property
    def completeness_error(self) -> float:
        return abs(float(self.attributions.sum()) - (self.score - self.baseline_score))


def quadrature(steps: int, method: str = "riemann_midpoint") -> tuple[np.ndarray, np.ndarray]:
    """Points ``a`` in (0, 1) and their weights (summing to 1) for integrating over ``[0, 1]``.

    Example:
        >>> quadrature(2, "riemann_midpoint")
        (array([0.25, 0.75]), array([0.5, 0.5]))
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if method == "gauss_legendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return (nodes + 1) / 2, weights / 2
    if method == "riemann_midpoint":
        return (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def baseline_vectors(backbone: keras.Model, token_ids: np.ndarray, keep_ids: list[int], pad_id: int,
                     baseline: str = "pad") -> np.ndarray:
    """The baseline word vectors ``[length, E]`` of one packed text (see the module notes).

    Tokens in ``keep_ids`` (the packing tokens) keep their vectors; the others
    get ``pad_id``'s vector (``baseline="pad"``) or zeros (``"zeros"``).
    """
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
    vectors = keras.ops.convert_to_numpy(word_vectors(backbone, token_ids[None]))[0]
    words = ~np.isin(token_ids, keep_ids)
    if baseline == "zeros":
        vectors[words] = 0
    else:
        vectors[words] = keras.ops.convert_to_numpy(word_vectors(backbone, np.array([[pad_id]], "int32")))[0, 0]
    return vectors


def _target_score(logits: tf.Tensor, target: int, score: str) -> tf.Tensor:
    if score == "probability":
        return tf.nn.softmax(logits, axis=-1)[:, target]
    return logits[:, target]


def integrated_gradients(
    classifier: keras.Model,
    inputs: dict,
    target: int | None = None,
    steps: int = 50,
    baseline: str = "pad",
    score: str = "probability",
    method: str = "riemann_midpoint",
    batch_size: int = 64,
) -> Attributions:
    """Integrated gradients of one packed text (``token_ids``, ``segment_ids``, ``padding_mask``: ``[1, length]``).

    Args:
        classifier: a `TextClassifier` on a BERT, RoBERTa or ALBERT backbone.
        inputs: the packed text, as the classifier's preprocessor makes it.
        target: the class to explain; None explains the predicted class.
        steps: quadrature points on the path.
        baseline: ``"pad"`` or ``"zeros"`` (see the module notes).
        score: ``"probability"`` or ``"logit"`` of the target class.
        method: ``"riemann_midpoint"`` or ``"gauss_legendre"``.
        batch_size: path points per forward/backward pass.
    """
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    backbone = explainable_backbone(classifier)
    tokenizer = classifier.preprocessor.tokenizer
    inputs = {name: np.asarray(value, "int32") for name, value in inputs.items()}
    if inputs["token_ids"].shape[0] != 1 or batch_size < 1:
        raise ValueError(
            f"integrated_gradients explains one text ([1, length] inputs) with batch_size >= 1; got "
            f"inputs of shape {inputs['token_ids'].shape} and batch_size={batch_size}"
        )
    token_ids = inputs["token_ids"][0]
    x = keras.ops.convert_to_numpy(word_vectors(backbone, token_ids[None]))[0]
    keep = [tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id]
    b = baseline_vectors(backbone, token_ids, keep, tokenizer.pad_id, baseline)
    ends = classifier_logits(classifier, np.stack([x, b]), {k: np.repeat(v, 2, 0) for k, v in inputs.items()})
    if target is None:
        target = int(np.argmax(keras.ops.convert_to_numpy(ends)[0]))
    if not 0 <= target < len(classifier.label_names):
        raise ValueError(f"target class {target} is out of range for labels {classifier.label_names}")
    end_scores = keras.ops.convert_to_numpy(_target_score(ends, target, score))
    alphas, weights = quadrature(steps, method)
    average_gradient = np.zeros_like(x)
    for begin in range(0, steps, batch_size):
        alpha = alphas[begin : begin + batch_size].astype(x.dtype)[:, None, None]
        path = tf.constant(b[None] + alpha * (x - b)[None])
        repeated = {k: np.repeat(v, len(alpha), 0) for k, v in inputs.items()}
        with tf.GradientTape() as tape:
            tape.watch(path)
            total = tf.reduce_sum(_target_score(classifier_logits(classifier, path, repeated), target, score))
        gradients = tape.gradient(total, path).numpy()
        average_gradient += np.tensordot(weights[begin : begin + batch_size], gradients, axes=1)
    attributions = ((x - b) * average_gradient).sum(-1)
    return Attributions(attributions, target, float(end_scores[0]), float(end_scores[1]))
