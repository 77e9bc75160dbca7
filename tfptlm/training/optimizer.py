"""AdamW with linear warm-up then linear decay, as BERT was trained.

Example:

>>> optimizer = create_optimizer(learning_rate=1e-4, total_steps=10_000,
...                              warmup_steps=1_000)
"""

from __future__ import annotations

import keras
from keras import ops

#: Substrings of variable names kept out of weight decay: biases and the
#: layer-norm scale (``gamma``) and offset (``beta``).
NO_DECAY_NAMES = ("bias", "gamma", "beta")


@keras.saving.register_keras_serializable(package="tfptlm")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Rises linearly from 0 to ``peak`` over ``warmup_steps``, then falls linearly to 0.

    The rate at ``total_steps`` and after is 0.
    """

    def __init__(self, peak: float, total_steps: int, warmup_steps: int):
        if total_steps <= 0:
            raise ValueError(f"total_steps must be positive, got {total_steps}")
        if not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                f"warmup_steps must be in [0, total_steps={total_steps}], got {warmup_steps}"
            )
        self.peak = peak
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = ops.maximum(float(self.warmup_steps), 1.0)
        rising = self.peak * step / warmup
        decay_length = ops.maximum(float(self.total_steps - self.warmup_steps), 1.0)
        falling = self.peak * (float(self.total_steps) - step) / decay_length
        rate = ops.where(step < self.warmup_steps, rising, falling)
        return ops.clip(rate, 0.0, self.peak)

    def get_config(self) -> dict:
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
        }


def create_optimizer(
    learning_rate: float,
    total_steps: int,
    warmup_steps: int,
    weight_decay: float = 0.01,
    clip_norm: float | None = 1.0,
    epsilon: float = 1e-6,
) -> keras.optimizers.AdamW:
    """Returns AdamW on a warm-up/decay schedule, without decay on biases and layer norms.

    ``clip_norm`` clips the global gradient norm (``None`` or 0 turns it off).
    """
    optimizer = keras.optimizers.AdamW(
        learning_rate=WarmupLinearDecay(learning_rate, total_steps, warmup_steps),
        weight_decay=weight_decay,
        epsilon=epsilon,
        global_clipnorm=clip_norm or None,
    )
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY_NAMES))
    return optimizer
