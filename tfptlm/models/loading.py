"""Loading saved ``.keras`` models whose classes may live in optional modules.

Example:

>>> backbone = load_keras_model("runs/bert_tiny/backbone.keras")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import keras


def load_keras_model(path: str | Path) -> keras.Model:
    """`keras.saving.load_model` without compiling, after registering the classes it needs.

    Every tfptlm backbone and task class is registered first. `HubBackbone`
    lives in `tfptlm.models.hub`, which imports keras-hub (a few seconds); it
    is imported only when the saved model uses it.
    """
    import tfptlm.models  # noqa: F401  (registers the backbones)
    import tfptlm.tasks  # noqa: F401  (registers the task models)

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved model at {path}")
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    if "HubBackbone" in json.dumps(config):
        import tfptlm.models.hub  # noqa: F401  (registers HubBackbone)
    return keras.saving.load_model(path, compile=False)
