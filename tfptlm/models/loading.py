"""Loading saved ``.keras`` models safely: no code from the file runs, and a damaged file is an error.

Example:

>>> backbone = load_keras_model("runs/bert_tiny/backbone.keras")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import json
import zipfile
import zlib
from pathlib import Path

import keras
import numpy as np
from keras.src.saving.serialization_lib import SafeModeScope

#: What reading a damaged ``.keras`` archive raises (zip, deflate, h5py, JSON and Keras errors).
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, TypeError, ValueError)


class ModelFileError(ValueError):
    """A saved model file is damaged, not a ``.keras`` archive, or would run code to load."""


def load_keras_model(path: str | Path) -> keras.Model:
    """`keras.saving.load_model` in safe mode, without compiling, after registering the classes it needs.

    Safe mode never runs code stored in the file (Python bytecode of a
    ``Lambda`` layer is refused, and only Keras and registered classes are
    built), even after Keras's global switch that turns safe mode off. A truncated
    or corrupted archive (the zip's CRC checks fail), a class that is not
    registered, weights that do not fit the model, or weights holding NaN or
    infinite values raise :class:`ModelFileError` naming the file: a model is
    never returned half-loaded.

    Every tfptlm backbone and task class is registered first. `HubBackbone`
    lives in `tfptlm.models.hub`, which imports keras-hub (a few seconds); it
    is imported only when the saved model uses it.

    Example:

    >>> load_keras_model("runs/sst2/model.keras")  # doctest: +SKIP
    <TextClassifier name=text_classifier, built=True>
    """
    importlib.import_module("tfptlm.models")  # registers the backbones
    importlib.import_module("tfptlm.tasks")  # registers the task models

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved model at {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
        if "HubBackbone" in json.dumps(config):
            importlib.import_module("tfptlm.models.hub")  # registers HubBackbone
        # Keras lets a global enable_unsafe_deserialization() override safe_mode=True;
        # its scope puts safe mode back for this load (and restores the setting after).
        with SafeModeScope(True):
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except _DAMAGED as error:
        raise ModelFileError(
            f"cannot load {path} ({type(error).__name__}: {error}); if the file is damaged "
            "or truncated, save or copy it again"
        ) from error
    bad = non_finite_weight(model)
    if bad is not None:
        raise ModelFileError(f"{path}: weight {bad} holds NaN or infinite values")
    return model


def non_finite_weight(model: keras.Model) -> str | None:
    """The path of the first floating-point weight of ``model`` with a NaN or infinite value, or None.

    Example:

    >>> non_finite_weight(model)  # doctest: +SKIP
    'bert_backbone/transformer_encoder_block/output_dense/kernel'
    """
    for variable in model.weights:
        if not keras.backend.is_float_dtype(variable.dtype):
            continue
        if not np.isfinite(keras.ops.convert_to_numpy(variable).astype(np.float32)).all():
            return variable.path
    return None
