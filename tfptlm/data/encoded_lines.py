"""BOM-aware decoding of data files, shared by the fine-tuning readers.

A file may start with a byte order mark: UTF-8 (``EF BB BF``), UTF-16 LE/BE or
UTF-32 LE/BE. Without a BOM the file must be UTF-8. A byte sequence that does
not decode is a :class:`DataFileError` naming the file and the 1-based line.

Example:

>>> for line_number, line in read_lines_with_numbers("dev.tsv"):  # doctest: +SKIP
...     print(line_number, line)
1 text	label
2 it 's a charming and often affecting journey . 	1
"""

from __future__ import annotations

import codecs
import gzip
import os
from collections.abc import Iterator

from tfptlm.data.data_errors import DataFileError

# Longest first: the UTF-32 LE BOM starts with the UTF-16 LE BOM.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def detect_encoding(data: bytes) -> tuple[str, int]:
    """Returns ``(codec, bom_length)`` for the bytes of a whole file.

    Example:

    >>> detect_encoding(b"\\xef\\xbb\\xbfhello")
    ('utf-8', 3)
    >>> detect_encoding(b"hello")
    ('utf-8', 0)
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec, len(bom)
    return "utf-8", 0


def read_text(path: str | os.PathLike, what: str = "Data file") -> str:
    """Reads and decodes a whole file (BOM stripped, line ends untouched; ``.gz`` gunzipped).

    Raises ``FileNotFoundError`` naming the path when it does not exist and
    :class:`DataFileError` naming the file and line of an undecodable byte.

    Example:

    >>> read_text("train.jsonl")[:20]  # doctest: +SKIP
    '{"text": "good", "la'
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path!r}.")
    try:
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as error:
        raise DataFileError(f"{path}: cannot decompress the gzip file: {error}") from None
    codec, bom_length = detect_encoding(data)
    data = data[bom_length:]
    try:
        return data.decode(codec)
    except UnicodeDecodeError as error:
        # Everything before the bad byte decodes, so its newlines give the line.
        line_number = data[: error.start].decode(codec, errors="replace").count("\n") + 1
        bom_note = f" (found a {codec} byte order mark)" if bom_length else ""
        raise DataFileError(
            f"{path}:{line_number}: invalid {codec.upper()} byte sequence "
            f"{data[error.start:error.end]!r}{bom_note}. Data files must be UTF-8, "
            "or UTF-16/UTF-32 with a byte order mark."
        ) from None


def split_lines(text: str) -> list[str]:
    """Splits on ``\\n`` only, keeping the line ends (for the ``csv`` module).

    Unlike ``str.splitlines`` this never splits on ``\\x0b``, ``\\x1c`` or
    ``\\u2028``, which can occur inside text fields.

    Example:

    >>> split_lines("a\\tb\\r\\nc\\u2028d\\n")
    ['a\\tb\\r\\n', 'c\\u2028d\\n']
    """
    lines = text.split("\n")
    last = lines.pop()
    result = [line + "\n" for line in lines]
    if last:
        result.append(last)
    return result


def read_lines_with_numbers(
    path: str | os.PathLike, what: str = "Data file"
) -> Iterator[tuple[int, str]]:
    """Yields ``(line_number, line)``; only the trailing ``\\n``/``\\r`` is removed.

    Example:

    >>> list(read_lines_with_numbers("tags.bmes"))[:2]  # doctest: +SKIP
    [(1, '吴 B-NAME'), (2, '重 M-NAME')]
    """
    for line_number, line in enumerate(split_lines(read_text(path, what)), start=1):
        yield line_number, line.rstrip("\r\n")
