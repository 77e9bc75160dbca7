"""Stop a run the moment its loss or weights stop being finite, before anything is saved.

``keras.callbacks.TerminateOnNaN`` is not enough for long runs: by default it
only sets ``stop_training``, so ``on_epoch_end``/``on_train_end`` still run
and a checkpoint callback saves the NaN weights as the latest checkpoint (and
the run then exits 0); with ``raise_error=True`` it names the batch of the
epoch, not the step, and a loss that is still finite after an update that
made the weights NaN is never caught. :class:`NaNGuard` raises at the first
non-finite loss and checks the weights at every epoch end and at the end of
training, so, placed before the checkpoint callback, NaN weights are never
written.

Example:

>>> guard = NaNGuard(checkpoint_dir="runs/bert/checkpoints")           # doctest: +SKIP
>>> model.fit(data, callbacks=[guard, CheckpointEveryEpoch(manager)])  # doctest: +SKIP
Traceback (most recent call last):
tfptlm.training.nan_guard.TrainingDivergedError: training stopped at step 6: the loss is nan; ...
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import tensorflow as tf

from tfptlm.models.loading import non_finite_weight


class TrainingDivergedError(ValueError):
    """The loss or the weights became NaN or infinite; nothing after that step was saved.

    A ``ValueError``, so that the ``tfptlm`` command reports it in one line
    and exits with status 1.
    """


class NaNGuard(keras.callbacks.Callback):
    """Raises :class:`TrainingDivergedError` at the first non-finite loss or weight.

    Put it before any callback that saves the model: Keras calls callbacks in
    list order, so the guard raises before they run, and an exception (unlike
    ``stop_training``) skips the remaining ``on_epoch_end``/``on_train_end``.

    Args:
        checkpoint_dir: where the run's TF checkpoints are (named in the
            message with the latest one, which holds finite weights); None
            when the run keeps none.

    Example:

    >>> callbacks = [NaNGuard(out / "checkpoints"), CheckpointEveryEpoch(manager)]  # doctest: +SKIP
    """

    def __init__(self, checkpoint_dir: str | Path | None = None):
        super().__init__()
        self.checkpoint_dir = checkpoint_dir

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._stop(f"the loss is {float(loss)}")

    def on_epoch_end(self, epoch, logs=None):
        self._check_weights()

    def on_train_end(self, logs=None):
        self._check_weights()

    def _check_weights(self) -> None:
        bad = non_finite_weight(self.model)
        if bad is not None:
            self._stop(f"weight {bad} holds NaN or infinite values")

    def _stop(self, what: str) -> None:
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if self.checkpoint_dir is None:
            saved = "nothing was saved"
        else:
            latest = tf.train.latest_checkpoint(str(self.checkpoint_dir))
            saved = (
                f"the last good checkpoint is {latest}, kept as the latest"
                if latest
                else f"no checkpoint was written to {self.checkpoint_dir}"
            )
        raise TrainingDivergedError(
            f"training stopped at step {step}: {what}; {saved}. Lower training.learning_rate, "
            "set training.clip_norm or check the data, and run again"
        )
