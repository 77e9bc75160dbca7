"""Seeds and the determinism switch shared by pretraining and fine-tuning.

``training.seed`` seeds Python, NumPy, TensorFlow and Keras, which fixes the
initial weights, the data pipelines' shuffles and masks, and dropout: a run
repeated on the same machine with the same config trains the same model (on
the CPU, bit for bit). ``training.deterministic`` also turns on TensorFlow's op
determinism, for GPUs and XLA, whose fastest kernels (atomic reductions)
otherwise change the last bits from run to run: kernels then take deterministic
algorithms (slower), an op without one raises an error instead of running, and
``tf.data`` keeps every pipeline's output order fixed and runs maps with
stateful ops serially (see ``tf.config.experimental.enable_op_determinism``).

Example:

>>> seed_everything(0, deterministic=True)  # doctest: +SKIP
"""

from __future__ import annotations

import keras
import tensorflow as tf


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seeds every random generator with ``seed``; ``deterministic`` adds op determinism.

    Op determinism stays on for the rest of the process.
    """
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
