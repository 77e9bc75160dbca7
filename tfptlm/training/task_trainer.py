"""A model that fits a task with its own training step while reporting the task's loss and metrics.

`AdversarialTrainer` and `PrivateTrainer` wrap a task this way: they share its
variables, so checkpoints and ``task.save`` hold the plain task model (save the
task, not the trainer), and their logs carry the task's ``loss`` and metrics
next to their own.

Example:

>>> class MyTrainer(TaskTrainer):                      # doctest: +SKIP
...     def train_step(self, data):
...         x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
...         ...                                        # gradients, apply them
...         return self.record(x, y, y_pred, sample_weight, loss)
"""

from __future__ import annotations

import keras
import tensorflow as tf


class TaskTrainer(keras.Model):
    """Base class: calls, compiles and evaluates ``task``; subclasses define ``train_step``."""

    def __init__(self, task: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.task = task

    def call(self, inputs, training=None):
        return self.task(inputs, training=training)

    def compile(self, optimizer="adam", **kwargs) -> None:
        """Compiles the task (its default loss and metrics) and the trainer, which reports them."""
        self.task.compile(optimizer=optimizer, **kwargs)
        super().compile(optimizer=optimizer, jit_compile=kwargs.get("jit_compile", "auto"))

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self.task(x, training=False)
        loss = self.task.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)
        return self.record(x, y, y_pred, sample_weight, loss)

    def record(self, x, y, y_pred, sample_weight, loss) -> dict:
        """Updates the task's loss tracker (Keras names it ``loss``) and metrics; returns all results."""
        batch = tf.shape(tf.nest.flatten(x)[0])[0]
        next(m for m in self.task.metrics if m.name == "loss").update_state(loss, sample_weight=batch)
        self.task.compute_metrics(x, y, y_pred, sample_weight)
        return self.get_metrics_result()
