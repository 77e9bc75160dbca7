"""Differentially private training (DP-SGD, Abadi et al. 2016) inside ``model.fit``.

Every step of :class:`PrivateTrainer`:

1. per-example gradients of all trainable variables, vectorized with
   ``tf.vectorized_map`` over a per-example loss and its gradient (no Python loop);
2. each example's gradient scaled to a global L2 norm (over all variables) of at
   most ``l2_norm_clip``; gradients already inside the bound are unchanged;
3. the clipped gradients summed, Gaussian noise of standard deviation
   ``noise_multiplier * l2_norm_clip`` added once per batch, the result divided
   by the batch size; then the normal optimizer step.

Decisions, stated once:

- Dropout is off in the private step (the forward pass runs with
  ``training=False``), as in Li et al. 2022 ("Large language models can be
  strong differentially private learners"); it also keeps random state out of
  the vectorized per-example function.
- Mixed precision: ``mixed_bfloat16`` works (variables and their gradients stay
  float32); ``mixed_float16`` is refused by the config check, its loss scaling
  would act on the per-example gradients before clipping.
- The privacy unit is one element of the training stream: a labelled row for
  fine-tuning, a packed block of ``max_sequence_length`` tokens for causal-LM
  pretraining (a text repeated k times, e.g. a canary, gets the group-privacy
  guarantee of k units, not one).
- The noise key is drawn from the OS (``os.urandom``) and kept in memory only:
  whoever knows ``training.seed`` cannot regenerate the noise. Each step's
  noise is ``stateless_normal`` keyed on that key and the optimizer step, so a
  resumed run never reuses earlier noise.
- Accounting (Google's ``dp-accounting``): ``steps`` compositions of the
  Poisson-subsampled Gaussian with sampling rate ``q = batch_size / N``, RDP
  (default) or PLD accountant. tfptlm's pipelines shuffle and batch instead of
  Poisson sampling, so the epsilon is the usual approximation (as in TF
  Privacy's Keras tutorials), not a proof for shuffled batches.
- ``delta`` defaults to 1e-5; a warning is printed when it is not below 1/N.

Example:

>>> plan = plan_privacy(config.training.privacy, examples=6920, batch_size=32, steps=650)
>>> trainer = plan.trainer(classifier)      # fits the classifier with DP-SGD
>>> trainer.compile(optimizer=keras.optimizers.AdamW(1e-3))
>>> trainer.fit(dataset, epochs=3)          # doctest: +SKIP
>>> plan.report(steps=650)["privacy_epsilon"]   # doctest: +SKIP
3.1
>>> classifier.save("model.keras")          # the plain task model
"""

from __future__ import annotations

import dataclasses
import os

import dp_accounting
import keras
import tensorflow as tf

from tfptlm.training.task_trainer import TaskTrainer

ACCOUNTANTS = {"rdp": dp_accounting.rdp.RdpAccountant, "pld": dp_accounting.pld.PLDAccountant}


# -- the DP-SGD step ---------------------------------------------------------

def per_example_gradients(task: keras.Model, variables: list, x, y, sample_weight=None):
    """Per-example losses, predictions and gradients, vectorized over the batch.

    Each example runs as a batch of one (``training=False``); the returned
    gradients have a leading batch dimension: ``[batch, *variable.shape]``.

    Example:
        >>> losses, y_pred, gradients = per_example_gradients(model, model.trainable_variables, x, y)
        >>> gradients[0].shape    # doctest: +SKIP
        TensorShape([4, 12, 8])
    """
    def one(example):
        xi, yi, *wi = tf.nest.map_structure(lambda t: t[None], example)
        with tf.GradientTape() as tape:
            y_pred = task(xi, training=False)
            loss = task.compute_loss(x=xi, y=yi, y_pred=y_pred, sample_weight=wi[0] if wi else None,
                                     training=False)
        gradients = tape.gradient(loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return loss, tf.nest.map_structure(lambda t: t[0], y_pred), [tf.convert_to_tensor(g) for g in gradients]

    elements = (x, y) if sample_weight is None else (x, y, sample_weight)
    return tf.vectorized_map(one, elements, fallback_to_while_loop=False)


def clip_per_example(gradients: list, l2_norm_clip: float) -> tuple[list, tf.Tensor]:
    """Scales each example's gradients to a global L2 norm of at most ``l2_norm_clip``.

    Returns the clipped gradients and the per-example norms before clipping.

    Example:
        >>> clipped, norms = clip_per_example([tf.constant([[3.0, 4.0], [0.3, 0.4]])], 1.0)
        >>> clipped[0].numpy(), norms.numpy()
        (array([[0.6, 0.8], [0.3, 0.4]], dtype=float32), array([5. , 0.5], dtype=float32))
    """
    batch = tf.shape(gradients[0])[0]
    squares = [tf.reduce_sum(tf.reshape(tf.square(g), [batch, -1]), axis=1) for g in gradients]
    norms = tf.sqrt(tf.add_n(squares))
    scale = tf.minimum(1.0, l2_norm_clip / tf.maximum(norms, 1e-12))
    clipped = [g * tf.reshape(scale, [-1] + [1] * (len(g.shape) - 1)) for g in gradients]
    return clipped, norms


def noisy_mean(clipped: list, stddev: float, key: int, step) -> list:
    """Sum over the batch + Gaussian noise of ``stddev``, divided by the batch size.

    The noise of variable ``i`` at ``step`` is ``stateless_normal`` keyed on
    ``(key + i, step)``: the same key and step give the same noise.
    """
    batch = tf.cast(tf.shape(clipped[0])[0], clipped[0].dtype)
    step = tf.cast(step, tf.int64)
    means = []
    for index, gradient in enumerate(clipped):
        seed = tf.stack([tf.constant(key + index, tf.int64), step])
        noise = tf.random.stateless_normal(tf.shape(gradient)[1:], seed, stddev=stddev, dtype=gradient.dtype)
        means.append((tf.reduce_sum(gradient, axis=0) + noise) / batch)
    return means


class PrivateTrainer(TaskTrainer):
    """Fits ``task`` with DP-SGD (see the module); save the task, not the trainer.

    The trainer shares the task's variables (`tfptlm.training.task_trainer`),
    so checkpoints and ``task.save`` hold the plain task model. ``loss`` in the logs is the mean per-example loss;
    ``clipped_share`` the share of examples whose gradient was clipped.

    Args:
        task: the model to train (its ``compute_loss`` gives the per-example loss).
        l2_norm_clip: the bound C on each example's gradient norm.
        noise_multiplier: sigma; the noise standard deviation is sigma * C.
        noise_key: fixes the noise (tests only); None draws a secret key from the OS.
        train_backbone: False trains only the task's own layers (the head), not
            ``task.backbone``: far fewer noisy coordinates, for small budgets.
    """

    def __init__(self, task: keras.Model, l2_norm_clip: float, noise_multiplier: float,
                 noise_key: int | None = None, train_backbone: bool = True, **kwargs):
        super().__init__(task, **kwargs)
        if l2_norm_clip <= 0:
            raise ValueError(f"l2_norm_clip must be positive, got {l2_norm_clip}")
        if noise_multiplier < 0:
            raise ValueError(f"noise_multiplier must be >= 0, got {noise_multiplier}")
        self.train_backbone = train_backbone
        self.l2_norm_clip, self.noise_multiplier = float(l2_norm_clip), float(noise_multiplier)
        self.noise_key = int.from_bytes(os.urandom(6), "little") if noise_key is None else int(noise_key)
        self.clipped_share = keras.metrics.Mean(name="clipped_share")

    @property
    def metrics(self) -> list:
        return [*self.task.metrics, self.clipped_share]

    @property
    def trained_variables(self) -> list:
        """The variables DP-SGD updates: all trainable ones, or those outside the backbone."""
        if self.train_backbone:
            return self.task.trainable_variables
        backbone = {id(v) for v in self.task.backbone.trainable_variables}
        return [v for v in self.task.trainable_variables if id(v) not in backbone]

    def private_gradients(self, x, y, sample_weight=None):
        """Losses, predictions, the noisy mean of the clipped gradients, and the norms before clipping."""
        variables = self.trained_variables
        losses, y_pred, gradients = per_example_gradients(self.task, variables, x, y, sample_weight)
        clipped, norms = clip_per_example(gradients, self.l2_norm_clip)
        step = self.optimizer.iterations if self.optimizer is not None else 0
        means = noisy_mean(clipped, self.noise_multiplier * self.l2_norm_clip, self.noise_key, step)
        return losses, y_pred, means, norms

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        losses, y_pred, gradients, norms = self.private_gradients(x, y, sample_weight)
        self.optimizer.apply_gradients(zip(gradients, self.trained_variables))
        self.clipped_share.update_state(tf.cast(norms > self.l2_norm_clip, tf.float32))
        return self.record(x, y, y_pred, sample_weight, tf.reduce_mean(losses))


# -- accounting --------------------------------------------------------------

def sampled_gaussian(noise_multiplier: float, sampling_rate: float, steps: int) -> dp_accounting.DpEvent:
    """``steps`` compositions of the Poisson-subsampled Gaussian mechanism."""
    event = dp_accounting.PoissonSampledDpEvent(sampling_rate, dp_accounting.GaussianDpEvent(noise_multiplier))
    return dp_accounting.SelfComposedDpEvent(event, int(steps))


def compute_epsilon(noise_multiplier: float, sampling_rate: float, steps: int, delta: float,
                    accountant: str = "rdp") -> float:
    """Epsilon of DP-SGD at ``delta`` (dp-accounting's RDP or PLD accountant).

    Example:
        >>> round(compute_epsilon(1.1, 256 / 60000, 60 * 60000 // 256, 1e-5), 2)
        2.6
    """
    if steps == 0:
        return 0.0
    ledger = ACCOUNTANTS[accountant]()
    ledger.compose(sampled_gaussian(noise_multiplier, sampling_rate, steps))
    return float(ledger.get_epsilon(delta))


def noise_multiplier_for(target_epsilon: float, sampling_rate: float, steps: int, delta: float,
                         accountant: str = "rdp") -> float:
    """The smallest noise multiplier whose epsilon at ``delta`` is at most ``target_epsilon``.

    Example:
        >>> sigma = noise_multiplier_for(3.0, 256 / 60000, 14062, 1e-5)   # about 1.0
    """
    return float(dp_accounting.calibrate_dp_mechanism(
        ACCOUNTANTS[accountant],
        lambda sigma: sampled_gaussian(sigma, sampling_rate, steps),
        target_epsilon,
        delta,
        bracket_interval=dp_accounting.LowerEndpointAndGuess(1e-2, 1.0),
    ))


@dataclasses.dataclass
class PrivacyPlan:
    """The resolved DP-SGD settings of one run, and its privacy report."""

    l2_norm_clip: float
    noise_multiplier: float
    delta: float
    sampling_rate: float
    examples: int
    accountant: str = "rdp"
    target_epsilon: float | None = None
    train_backbone: bool = True

    def trainer(self, task: keras.Model) -> PrivateTrainer:
        """A :class:`PrivateTrainer` for ``task`` with these settings."""
        return PrivateTrainer(task, self.l2_norm_clip, self.noise_multiplier, train_backbone=self.train_backbone)

    def report(self, steps: int) -> dict:
        """``privacy_epsilon`` after ``steps`` steps, ``privacy_delta`` and the settings (for metrics.json)."""
        epsilon = compute_epsilon(self.noise_multiplier, self.sampling_rate, steps, self.delta, self.accountant)
        return {
            "privacy_epsilon": epsilon,
            "privacy_delta": self.delta,
            "privacy": {**dataclasses.asdict(self), "steps": int(steps)},
        }


def plan_privacy(settings, examples: int, batch_size: int, steps: int) -> PrivacyPlan | None:
    """Resolves ``training.privacy`` for ``examples`` training units; None when privacy is off.

    With ``target_epsilon``, the noise multiplier is solved so that ``steps``
    steps spend exactly that budget.
    """
    if not settings.enabled:
        return None
    sampling_rate = min(1.0, batch_size / examples)
    if settings.delta >= 1.0 / examples:
        print(f"Warning: training.privacy.delta {settings.delta:g} is not below 1/N = 1/{examples}; "
              f"a delta this large allows leaking a whole example")
    sigma = settings.noise_multiplier
    if settings.target_epsilon is not None:
        sigma = noise_multiplier_for(settings.target_epsilon, sampling_rate, steps, settings.delta,
                                     settings.accountant)
    plan = PrivacyPlan(settings.l2_norm_clip, float(sigma), settings.delta, sampling_rate, examples,
                       settings.accountant, settings.target_epsilon, settings.train_backbone)
    print(f"DP-SGD: clip {plan.l2_norm_clip:g}, noise multiplier {plan.noise_multiplier:.4f}, "
          f"q = {batch_size}/{examples}, {steps} steps -> epsilon "
          f"{plan.report(steps)['privacy_epsilon']:.3f} at delta {plan.delta:g} ({plan.accountant})")
    return plan


def count_examples(dataset: tf.data.Dataset) -> int:
    """The number of examples in one pass over a finite batched dataset (the N of the accounting).

    Example:
        >>> count_examples(tf.data.Dataset.range(10).batch(4))
        10
    """
    return int(sum(int(tf.shape(tf.nest.flatten(batch)[0])[0]) for batch in dataset))
