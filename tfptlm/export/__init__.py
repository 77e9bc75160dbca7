"""tfptlm.export: SavedModels for TF Serving that take raw strings.

Example:

>>> from tfptlm.export import export_saved_model
>>> export_saved_model("runs/sst2", "exports/sst2")   # doctest: +SKIP
PosixPath('exports/sst2/1')
"""

from tfptlm.export.saved_model import export_saved_model

__all__ = ["export_saved_model"]
