"""Reading the user's text files: glob expansion and strict UTF-8 lines.

Shared by tokenizer training and corpus reading, so both report a missing file
or a bad byte the same way, naming the pattern, file and line.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence

_BOM = "\ufeff"


def expand_file_patterns(patterns: str | Sequence[str]) -> list[str]:
    """Expands glob patterns and plain paths into a list of files.

    Raises ``FileNotFoundError`` naming the pattern when a glob matches
    nothing or a plain path does not exist.

    Example:

    >>> expand_file_patterns(["a.txt", "shards/*.txt"])  # doctest: +SKIP
    ['a.txt', 'shards/00.txt', 'shards/01.txt']
    """
    if isinstance(patterns, (str, os.PathLike)):
        patterns = [patterns]
    if not patterns:
        raise ValueError("No text files were given.")
    files = []
    for pattern in map(os.fspath, patterns):
        if glob.has_magic(pattern):
            matches = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
            if not matches:
                raise FileNotFoundError(f"No file matches the pattern {pattern!r}.")
            files.extend(matches)
        elif os.path.isfile(pattern):
            files.append(pattern)
        else:
            raise FileNotFoundError(f"Corpus file not found: {pattern!r}.")
    return files


def read_lines(path: str):
    """Yields the stripped lines of a UTF-8 text file.

    A leading BOM and ``\\r\\n`` line ends are accepted. Invalid UTF-8 raises
    ``ValueError`` naming the file and the 1-based line number.

    Example:

    >>> [line for line in read_lines("corpus.txt")]  # doctest: +SKIP
    ['First sentence.', '', 'Next document.']
    """
    with open(path, "rb") as f:
        for line_number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{path}, line {line_number}: invalid UTF-8 byte sequence "
                    f"{raw[error.start:error.end]!r} at character {error.start + 1}. "
                    "Corpus files must be UTF-8 encoded."
                ) from None
            if line_number == 1 and line.startswith(_BOM):
                line = line[len(_BOM) :]
            yield line.strip()
