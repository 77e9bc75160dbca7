"""Run-time switches: XLA compilation and mixed precision."""

from __future__ import annotations

import keras
import tensorflow as tf


def accelerator_available() -> bool:
    """True when TensorFlow sees a GPU or TPU."""
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def resolve_jit_compile(setting: bool | str) -> bool:
    """Turns the ``training.jit_compile`` switch (``auto``, true, false) into a bool.

    ``auto`` turns XLA on for GPU and TPU and off on the CPU, where
    ``benchmarks/pretrain_throughput.py`` measured XLA slower for BERT
    pretraining (slightly in float32, much in bfloat16).
    """
    if setting == "auto":
        return accelerator_available()
    if isinstance(setting, bool):
        return setting
    raise ValueError(f"jit_compile must be auto, true or false, got {setting!r}")


def set_precision(policy: str) -> None:
    """Sets Keras's global dtype policy (``float32``, ``mixed_bfloat16``, ``mixed_float16``)."""
    keras.mixed_precision.set_global_policy(policy)
