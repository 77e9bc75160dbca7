"""tfptlm.export: SavedModels for TF Serving and TFLite files for phones, taking raw strings.

Example:

>>> from tfptlm.export import export_saved_model
>>> export_saved_model("runs/sst2", "exports/sst2")   # doctest: +SKIP
PosixPath('exports/sst2/1')
>>> export_saved_model("runs/gpt_dialogue", "exports/chat", max_new_tokens=32)  # doctest: +SKIP
PosixPath('exports/chat/1')
"""

from tfptlm.export.generation import export_generator
from tfptlm.export.saved_model import export_saved_model
from tfptlm.export.tflite import TFLiteClassifier, export_tflite, run_tflite

__all__ = ["TFLiteClassifier", "export_generator", "export_saved_model", "export_tflite", "run_tflite"]
