"""What the fine-tuning data readers return, and the error they raise for a bad file or row.

Every message starts with where the problem is, so that a user can open the
file at that line:

    path:LINE: what is wrong (column 'x')

Example:

>>> raise DataFileError("dev.tsv:7: empty text (column 'text')")  # doctest: +SKIP
Traceback (most recent call last):
tfptlm.data.data_errors.DataFileError: dev.tsv:7: empty text (column 'text')
"""

from __future__ import annotations

from dataclasses import dataclass, field


class DataFileError(ValueError):
    """A labelled data file has a bad row (or a bad header, or no usable rows)."""


@dataclass
class ReadResult:
    """The examples read from one file, and the bad rows skipped with ``skip_bad_rows=True``.

    ``skipped_examples`` keeps the first few error messages of skipped rows.
    """

    examples: list
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)
