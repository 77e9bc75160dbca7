"""Callbacks for long runs: step checkpoints, stopping at a step, throughput.

Example:

>>> meter = ThroughputMeter(tokens_per_step=32 * 128)
>>> model.fit(dataset, steps_per_epoch=200, epochs=10,                 # doctest: +SKIP
...           callbacks=[StopAtStep(1000), CheckpointEveryEpoch(manager), meter])
>>> meter.tokens_per_second                                           # doctest: +SKIP
"""

from __future__ import annotations

import time

import keras
import tensorflow as tf


class CheckpointEveryEpoch(keras.callbacks.Callback):
    """Saves a ``tf.train.CheckpointManager`` checkpoint after every epoch and at the end.

    Pretraining fits epochs of ``checkpoint_every`` steps, so it checkpoints
    every ``checkpoint_every`` steps; fine-tuning checkpoints every epoch. A
    checkpoint is named by its step (``ckpt-200``) and each step is saved once.
    See :mod:`tfptlm.training.checkpoints` for what a checkpoint holds and why a
    half-written one is never taken as the latest.
    """

    def __init__(self, manager: tf.train.CheckpointManager):
        super().__init__()
        self.manager = manager
        self._saved_step: int | None = None

    def _step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def _save(self) -> None:
        step = self._step()
        if step != self._saved_step:
            self.manager.save(checkpoint_number=step)
            self._saved_step = step

    def on_train_begin(self, logs=None):
        self._saved_step = self._step()  # the step a run starts at is on disk already (or is 0)

    def on_epoch_end(self, epoch, logs=None):
        self._save()

    def on_train_end(self, logs=None):
        self._save()


class StopAtStep(keras.callbacks.Callback):
    """Stops training once the optimizer has taken ``total_steps`` steps."""

    def __init__(self, total_steps: int):
        super().__init__()
        self.total_steps = total_steps

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) >= self.total_steps:
            self.model.stop_training = True


class ThroughputMeter(keras.callbacks.Callback):
    """Measures training tokens per second, leaving out the first (tracing) step.

    Only the time spent in training steps counts, not evaluation.
    """

    def __init__(self, tokens_per_step: int):
        super().__init__()
        self.tokens_per_step = tokens_per_step
        self.seconds = 0.0
        self.steps = 0
        self._seen_first_step = False
        self._start = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self._seen_first_step:
            self.seconds += time.perf_counter() - self._start
            self.steps += 1
        self._seen_first_step = True

    @property
    def tokens_per_second(self) -> float:
        return self.steps * self.tokens_per_step / self.seconds if self.seconds else 0.0
