"""Run-time switches: XLA compilation and mixed precision."""

from __future__ import annotations

import keras
import tensorflow as tf


def accelerator_available() -> bool:
    """True when TensorFlow sees a GPU or TPU."""
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def native_bfloat16_matmul() -> bool:
    """True where bfloat16 matrix products run on bfloat16 units.

    That is a GPU or TPU, or a CPU with AMX or AVX512-BF16 (read from
    ``/proc/cpuinfo``; False where that file does not exist).
    """
    if accelerator_available():
        return True
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            flags = set(cpuinfo.read().split())
    except OSError:
        return False
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def vocabulary_logits_dtype() -> str | None:
    """The dtype for a vocabulary-sized output product (an MLM head's last matmul).

    Under the ``mixed_bfloat16`` policy on hardware with bfloat16 units, None
    (the policy: a bfloat16 product, 1.11x faster BERT-small pretraining on an
    AMX CPU, benchmarks/NOTES.md); otherwise float32, which is more accurate
    and, on CPUs without bfloat16 units, 3.6x faster than a bfloat16 product.
    The logits are cast to float32 either way.

    Example:
        >>> head = MaskedLMHead(30522, dtype=vocabulary_logits_dtype())
    """
    if keras.mixed_precision.global_policy().name == "mixed_bfloat16" and native_bfloat16_matmul():
        return None
    return "float32"


def resolve_jit_compile(setting: bool | str) -> bool:
    """Turns the ``training.jit_compile`` switch (``auto``, true, false) into a bool.

    ``auto`` turns XLA on for GPU and TPU only. On the CPU XLA made BERT-small
    pretraining slower in both precisions (CPU time per step, interleaved
    A/B in one process, benchmarks/NOTES.md): 0.94x in float32 and 0.61x in
    mixed bfloat16, where oneDNN's AMX bfloat16 products beat XLA's.
    """
    if setting == "auto":
        return accelerator_available()
    if isinstance(setting, bool):
        return setting
    raise ValueError(f"jit_compile must be auto, true or false, got {setting!r}")


def set_precision(policy: str) -> None:
    """Sets Keras's global dtype policy (``float32``, ``mixed_bfloat16``, ``mixed_float16``)."""
    keras.mixed_precision.set_global_policy(policy)
