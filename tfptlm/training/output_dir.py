"""Check, before any long work, that a run can write its output directory.

Example:

>>> check_output_dir("runs/bert_tiny")   # doctest: +SKIP
>>> check_output_dir("/proc/run")        # doctest: +SKIP
Traceback (most recent call last):
tfptlm.training.output_dir.OutputDirError: cannot write the output directory /proc/run: ...
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class OutputDirError(OSError, ValueError):
    """The output directory cannot be created or written.

    Both an ``OSError`` (what it is) and a ``ValueError`` (so that the
    ``tfptlm`` command reports it in one line and exits with status 1).
    """


def check_output_dir(path: str | os.PathLike) -> None:
    """Raises :class:`OutputDirError` naming ``path`` unless a run can write it.

    Nothing is left behind: the directory is not created, a probe file is
    written and removed in ``path``, or, when ``path`` does not exist yet, in
    its nearest existing parent (where it would be created).

    Example:

    >>> check_output_dir("runs/sst2")  # doctest: +SKIP
    """
    path = Path(path)
    nearest = path  # the directory itself, or the parent it would be created in
    while not os.path.exists(nearest) and nearest != nearest.parent:
        nearest = nearest.parent
    place = "it" if nearest == path else f"its parent {nearest}"
    if not nearest.is_dir():
        raise OutputDirError(f"cannot write the output directory {path}: {place} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=nearest):
            pass
    except OSError as error:
        raise OutputDirError(
            f"cannot write the output directory {path}: {place} is not writable ({error.strerror})"
        ) from None
