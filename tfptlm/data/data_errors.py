"""The error raised by the fine-tuning data readers for a bad file or row.

Every message starts with where the problem is, so that a user can open the
file at that line:

    path:LINE: what is wrong (column 'x')

Example:

>>> raise DataFileError("dev.tsv:7: empty text (column 'text')")  # doctest: +SKIP
Traceback (most recent call last):
tfptlm.data.data_errors.DataFileError: dev.tsv:7: empty text (column 'text')
"""

from __future__ import annotations


class DataFileError(ValueError):
    """A labelled data file has a bad row (or a bad header, or no usable rows)."""
