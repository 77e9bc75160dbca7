"""Adversarial fine-tuning: FGM, PGD and FreeLB perturbations of the word embeddings.

Where the perturbation goes: on the rows of the backbone's word-embedding
matrix (``backbone.token_embedding.embeddings``) that the batch uses, as in
the widely used FGM/PGD recipes for BERT. The trainer adds ``delta`` to the
matrix, runs the task model, and puts the matrix back exactly (it keeps a copy,
so no rounding drift). This needs no hook in the model: any backbone with a
``token_embedding`` layer works (BERT, ALBERT, RoBERTa, keras-hub encoders).
``delta`` is non-zero only on the rows the batch uses, because the gradient of
the other rows is zero; a token used several times in a batch gets one
perturbation (the gradient summed over its uses).

With ``g`` the gradient of the clean loss with respect to the matrix and
``||.||`` the Frobenius norm over all of ``delta``:

- ``fgm``: ``delta = epsilon * g / ||g||``; one extra forward/backward pass.
- ``pgd``: ``delta_0 = 0``, ``delta_k = P(delta_{k-1} + alpha * g_{k-1} / ||g_{k-1}||)``
  for k = 1..K, with ``g_{k-1}`` the gradient at ``delta_{k-1}`` and ``P`` the
  projection on the ball ``||delta|| <= epsilon``; K extra passes, and only the
  last one's weight gradients are used.
- ``freelb``: the same K steps, the weight gradients of all K passes averaged
  (FreeLB, Zhu et al. 2020, here with ``delta_0 = 0`` instead of a random start).

The weights are trained on ``clean loss + weight * adversarial loss`` (FreeLB:
the mean of its K losses). ``loss`` in the logs is the clean loss, so it
compares with plain training; ``adversarial_loss`` is logged next to it.

Example:

>>> trainer = AdversarialTrainer(classifier, method="pgd", epsilon=1.0, alpha=0.3, steps=3)
>>> trainer.compile(optimizer=keras.optimizers.AdamW(2e-5))   # the task's loss and metrics
>>> trainer.fit(dataset, epochs=1)                            # doctest: +SKIP
>>> classifier.save("model.keras")                            # the plain task model
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfptlm.config import ADVERSARIAL_METHODS
from tfptlm.training.task_trainer import TaskTrainer


def word_embedding_table(task: keras.Model):
    """The word-embedding matrix ``[vocabulary, embedding_dim]`` of a task model's backbone."""
    backbone = getattr(task, "backbone", None)
    layer = getattr(backbone, "token_embedding", None)
    if layer is None:
        raise ValueError(
            f"adversarial training perturbs the word embeddings, but {type(task).__name__}'s "
            f"backbone ({type(backbone).__name__}) has no token_embedding layer"
        )
    return layer.embeddings


def normalized_step(gradient: tf.Tensor, size: float) -> tf.Tensor:
    """``size * gradient / ||gradient||`` (Frobenius norm; zero stays zero).

    Example:
        >>> normalized_step(tf.constant([[3.0, 4.0]]), 1.0).numpy()
        array([[0.6, 0.8]], dtype=float32)
    """
    norm = tf.norm(gradient)
    return size * gradient / tf.maximum(norm, 1e-12)


def project_to_ball(delta: tf.Tensor, epsilon: float) -> tf.Tensor:
    """``delta`` scaled back onto ``||delta|| <= epsilon`` if it lies outside."""
    norm = tf.norm(delta)
    return delta * tf.minimum(1.0, epsilon / tf.maximum(norm, 1e-12))


def _dense(gradient) -> tf.Tensor:
    return tf.convert_to_tensor(gradient)


def _add(first, second, weight: float):
    """``first + weight * second`` for gradients that may be None or IndexedSlices."""
    if second is None:
        return first
    if first is None:
        return weight * _dense(second)
    if isinstance(first, tf.IndexedSlices) or isinstance(second, tf.IndexedSlices):
        first, second = _dense(first), _dense(second)
    return first + weight * second


@keras.saving.register_keras_serializable(package="tfptlm")
class AdversarialTrainer(TaskTrainer):
    """Fits ``task`` on clean and adversarially perturbed word embeddings (see the module).

    Save the task, not the trainer (see `tfptlm.training.task_trainer`).

    Args:
        task: a task model with a ``backbone`` that has a ``token_embedding``.
        method: ``fgm``, ``pgd`` or ``freelb``.
        epsilon: the size of the perturbation (FGM) or radius of its ball (PGD, FreeLB).
        alpha: the size of each PGD/FreeLB step.
        steps: the number K of PGD/FreeLB steps.
        weight: the weight of the adversarial loss next to the clean loss.
    """

    def __init__(self, task: keras.Model, method: str = "fgm", epsilon: float = 1.0,
                 alpha: float = 0.3, steps: int = 3, weight: float = 1.0, **kwargs):
        super().__init__(task, **kwargs)
        if method not in ADVERSARIAL_METHODS[1:]:
            raise ValueError(f"method must be one of {', '.join(ADVERSARIAL_METHODS[1:])}; got {method!r}")
        for name, value in (("epsilon", epsilon), ("alpha", alpha), ("steps", steps)):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        word_embedding_table(task)  # fails early without one
        self.method, self.epsilon, self.alpha = method, float(epsilon), float(alpha)
        self.steps, self.weight = int(steps), float(weight)
        self.adversarial_loss_tracker = keras.metrics.Mean(name="adversarial_loss")

    @property
    def metrics(self) -> list:
        # The task's loss tracker and compiled metrics, then the adversarial loss.
        return [*self.task.metrics, self.adversarial_loss_tracker]

    def get_config(self) -> dict:
        return {
            "task": keras.saving.serialize_keras_object(self.task),
            "method": self.method, "epsilon": self.epsilon, "alpha": self.alpha,
            "steps": self.steps, "weight": self.weight,
        }

    @classmethod
    def from_config(cls, config: dict) -> "AdversarialTrainer":
        config = dict(config)
        config["task"] = keras.saving.deserialize_keras_object(config["task"])
        return cls(**config)

    # -- the passes ---------------------------------------------------------

    def _pass(self, x, y, sample_weight, sources: list, table, original, delta=None):
        """Loss, predictions and gradients (for ``sources``) with ``original + delta`` as the matrix."""
        if delta is not None:
            table.assign(original + delta)
        with tf.GradientTape() as tape:
            y_pred = self.task(x, training=True)
            loss = self.task.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            scaled = self.optimizer.scale_loss(loss) if self.optimizer is not None else loss
        return loss, y_pred, tape.gradient(scaled, sources)

    def _attack(self, x, y, sample_weight, variables: list):
        """All passes of one step; the matrix is back to its value when this returns.

        Returns the clean loss, clean predictions, clean gradients of
        ``variables``, the adversarial loss, the adversarial gradients of
        ``variables`` and the final ``delta``.
        """
        table = word_embedding_table(self.task)
        original = tf.identity(table.value)
        with_table = [*variables, table]
        clean_loss, y_pred, gradients = self._pass(x, y, sample_weight, with_table, table, original)
        clean_gradients, gradient = gradients[:-1], _dense(gradients[-1])
        if self.method == "fgm":
            delta = normalized_step(gradient, self.epsilon)
            adversarial_loss, _, gradients = self._pass(x, y, sample_weight, variables, table, original, delta)
            table.assign(original)
            return clean_loss, y_pred, clean_gradients, adversarial_loss, gradients, delta
        delta = tf.zeros_like(original)
        losses, summed = [], [None] * len(variables)
        for step in range(self.steps):
            delta = project_to_ball(delta + normalized_step(gradient, self.alpha), self.epsilon)
            trains = self.method == "freelb" or step == self.steps - 1
            sources = with_table if trains else [table]
            loss, _, gradients = self._pass(x, y, sample_weight, sources, table, original, delta)
            gradient = _dense(gradients[-1])
            if trains:
                losses.append(loss)
                summed = [_add(total, new, 1.0) for total, new in zip(summed, gradients[:-1])]
        table.assign(original)
        count = float(len(losses))
        adversarial_gradients = [None if g is None else g / count for g in summed]
        return clean_loss, y_pred, clean_gradients, tf.add_n(losses) / count, adversarial_gradients, delta

    def perturbation(self, x, y, sample_weight=None) -> tf.Tensor:
        """The ``delta`` [vocabulary, embedding_dim] that a training step on this batch would use.

        The weights are left as they are (for checks and analysis).
        """
        return self._attack(x, y, sample_weight, [])[-1]

    # -- Keras steps --------------------------------------------------------

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        variables = self.trainable_variables
        clean_loss, y_pred, clean_gradients, adversarial_loss, adversarial_gradients, _ = self._attack(
            x, y, sample_weight, variables
        )
        gradients = [
            _add(clean, adversarial, self.weight)
            for clean, adversarial in zip(clean_gradients, adversarial_gradients)
        ]
        self.optimizer.apply_gradients(zip(gradients, variables))
        self.adversarial_loss_tracker.update_state(adversarial_loss)
        return self.record(x, y, y_pred, sample_weight, clean_loss)


def adversarial_trainer(task: keras.Model, settings) -> keras.Model:
    """The model to fit for ``training.adversarial`` ``settings``: ``task`` itself when the method is ``none``.

    Example:
        >>> model_to_fit = adversarial_trainer(classifier, config.training.adversarial)
    """
    if settings.method == "none":
        return task
    return AdversarialTrainer(
        task, method=settings.method, epsilon=settings.epsilon, alpha=settings.alpha,
        steps=settings.steps, weight=settings.weight,
    )
