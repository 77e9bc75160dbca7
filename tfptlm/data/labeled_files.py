"""Read labelled text for fine-tuning from TSV, CSV or JSON Lines files.

One example per row: a text, an optional second text (for sentence-pair tasks)
and an optional label. Columns are picked by header name or by 0-based index
(negative indices count from the end). Rows are validated before training
starts: a bad row is a :class:`DataFileError` naming the file, the line and the
column, or, with ``skip_bad_rows=True``, it is skipped and counted — never
dropped silently.

* TSV (``.tsv``, ``.tab``): tab separated, no quoting (quote characters are
  ordinary text, as in GLUE).
* CSV (``.csv``): comma separated, ``"`` quoting, so a quoted field may hold
  the delimiter or line breaks.
* JSON Lines (``.jsonl``, ``.json``): one JSON object per line, columns are
  keys; blank lines are ignored.

Files are UTF-8, or UTF-8/UTF-16/UTF-32 with a byte order mark.

Example:

>>> data = read_labeled_file("sst2/dev.tsv", text_column=0, label_column=1)  # doctest: +SKIP
>>> data.examples[0]  # doctest: +SKIP
LabeledText(text="it 's a charming and often affecting journey .", text_pair=None,
            label='1', source='sst2/dev.tsv:2')
>>> infer_label_names([data])  # doctest: +SKIP
['0', '1']
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from tfptlm.data.data_errors import DataFileError, ReadResult
from tfptlm.data.encoded_lines import read_text, split_lines

FILE_FORMATS = ("tsv", "csv", "jsonl")
_EXTENSIONS = {".tsv": "tsv", ".tab": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}
_MAX_SKIPPED_EXAMPLES = 10
_MAX_LISTED_NAMES = 20
_INTEGER = re.compile(r"[+-]?\d+")

Column = str | int
# on_row(line_number, values by role or None, problem or None)
RowHandler = Callable[[int, dict[str, str] | None, str | None], None]


@dataclass
class LabeledText:
    """One example: text, optional second text, optional label, and where it came from."""

    text: str
    text_pair: str | None
    label: str | None
    source: str


def _list_names(names: Sequence[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:_MAX_LISTED_NAMES])
    if len(names) > _MAX_LISTED_NAMES:
        shown += f", ... ({len(names)} in all)"
    return f"[{shown}]"


def _column_text(column: Column) -> str:
    return f"column {column!r}"


def _guess_format(path: str, file_format: str | None) -> str:
    if file_format is not None:
        if file_format not in FILE_FORMATS:
            raise ValueError(
                f"Unknown file_format {file_format!r}; choose one of {list(FILE_FORMATS)}."
            )
        return file_format
    extension = os.path.splitext(path)[1].lower()
    if extension not in _EXTENSIONS:
        raise ValueError(
            f"Cannot tell the format of {path!r} from its extension {extension!r}: "
            "pass file_format='tsv' (.tsv, .tab), 'csv' (.csv) or 'jsonl' (.jsonl, .json)."
        )
    return _EXTENSIONS[extension]


class BadRows:
    """Collects bad rows: raises :class:`DataFileError`, or with ``skip`` counts the row.

    The first few messages of skipped rows are kept for the :class:`ReadResult`.

    Example:

    >>> bad = BadRows(skip=True)
    >>> bad("f.tsv:3: empty text (column 0)")
    >>> data = bad.result("f.tsv", ["an example"])
    >>> data.skipped, data.skipped_examples
    (1, ['f.tsv:3: empty text (column 0)'])
    """

    def __init__(self, skip: bool):
        self.skip = skip
        self.skipped = 0
        self.messages: list[str] = []

    def __call__(self, message: str) -> None:
        if not self.skip:
            raise DataFileError(message)
        self.skipped += 1
        if len(self.messages) < _MAX_SKIPPED_EXAMPLES:
            self.messages.append(message)

    def result(self, where: str, examples: list, what: str = "examples") -> ReadResult:
        """The :class:`ReadResult`; no examples at all is a :class:`DataFileError`."""
        if not examples:
            detail = (
                f"; {self.skipped} bad rows were skipped, the first: {self.messages[0]}"
                if self.skipped
                else ""
            )
            raise DataFileError(f"{where}: no usable {what} in the file{detail}")
        return ReadResult(examples, self.skipped, self.messages)


class _Columns:
    """The configured ``(role, column)`` pairs; roles whose column is None are left out."""

    def __init__(self, roles: Sequence[tuple[str, Column | None]]):
        self.roles = [(role, column) for role, column in roles if column is not None]
        for role, column in self.roles:
            if isinstance(column, bool) or not isinstance(column, (str, int)):
                raise TypeError(
                    f"The {role} column must be a column name (str) or an index (int), "
                    f"got {column!r}."
                )


def _records(
    text: str, file_format: str, delimiter: str
) -> Iterator[tuple[int, list[str] | Exception]]:
    """Yields ``(first_line, fields)`` for each non-blank record, or an error."""
    if file_format == "tsv":
        reader = csv.reader(
            split_lines(text), delimiter=delimiter, quoting=csv.QUOTE_NONE, strict=False
        )
    else:
        reader = csv.reader(split_lines(text), delimiter=delimiter, strict=True)
    while True:
        first_line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield first_line, error
            continue
        if all(not value.strip() for value in fields):
            continue  # blank line
        yield first_line, fields


def _resolve(column: Column, header: list[str] | None, width: int) -> int:
    if isinstance(column, str):
        return header.index(column)  # checked against the header before
    return column + width if column < 0 else column


def _read_delimited(path, text, file_format, columns, has_header, delimiter, on_row) -> None:
    """Checks the header and field counts, then hands each row's fields to ``on_row``."""
    header: list[str] | None = None
    width: int | None = None  # the field count every row must have
    width_from = ""
    indices: dict[str, int] = {}
    for line_number, fields in _records(text, file_format, delimiter):
        where = f"{path}:{line_number}"
        if header is None and has_header:
            if isinstance(fields, Exception):
                raise DataFileError(f"{where}: cannot parse the header: {fields}")
            header = [name.strip() for name in fields]
            for role, column in columns.roles:
                if isinstance(column, str):
                    if column not in header:
                        raise DataFileError(
                            f"{where}: the header has no {role} column {column!r}; "
                            f"its columns are {_list_names(header)} (column {column!r})"
                        )
                    if header.count(column) > 1:
                        raise DataFileError(
                            f"{where}: the header names the {role} column {column!r} "
                            f"{header.count(column)} times; use a column index instead "
                            f"(column {column!r})"
                        )
                elif not -len(header) <= column < len(header):
                    raise DataFileError(
                        f"{where}: the header has {len(header)} columns, so there is no "
                        f"{role} column {column} (column {column})"
                    )
            width, width_from = len(header), "the header has"
            indices = {role: _resolve(column, header, width) for role, column in columns.roles}
            continue
        if isinstance(fields, Exception):
            on_row(line_number, None, f"cannot parse the row: {fields}")
            continue
        if width is None:
            width, width_from = len(fields), "the first row has"
            indices = {role: _resolve(column, None, width) for role, column in columns.roles}
        missing = [c for role, c in columns.roles if not 0 <= indices[role] < len(fields)]
        if len(fields) != width or missing:
            if missing or len(fields) < width:
                kind, hint = "too few", ""
            else:
                kind = "too many"
                hint = (
                    "; a text may contain a tab"
                    if file_format == "tsv"
                    else f"; quote fields that contain {delimiter!r}"
                )
            detail = f" ({_column_text(missing[0])})" if missing else ""
            on_row(
                line_number,
                None,
                f"{kind} fields: the row has {len(fields)}, {width_from} {width}{hint}{detail}",
            )
            continue
        on_row(line_number, {role: fields[index] for role, index in indices.items()}, None)


def _read_jsonl(text, columns, on_row):
    for line_number, line in enumerate(split_lines(text), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            hint = ""
            if line_number == 1 and line.startswith("["):
                hint = " (the file looks like one JSON array; write one object per line)"
            on_row(line_number, None, f"not valid JSON: {error.msg} at column {error.colno}{hint}")
            continue
        if not isinstance(record, dict):
            on_row(line_number, None, f"expected a JSON object, got {type(record).__name__}")
            continue
        values = {}
        for role, key in columns.roles:
            value = record.get(key)
            if value is None:
                values[role] = ""
            elif isinstance(value, str):
                values[role] = value
            elif role == "label" and isinstance(value, (int, float, bool)):
                values[role] = str(value)
            else:
                on_row(
                    line_number,
                    None,
                    f"the {role} must be a string, got {type(value).__name__} {value!r:.40} "
                    f"({_column_text(key)})",
                )
                break
        else:
            on_row(line_number, values, None)


def read_labeled_file(
    path: str | os.PathLike,
    text_column: Column,
    label_column: Column | None = None,
    text_pair_column: Column | None = None,
    *,
    file_format: str | None = None,
    has_header: bool = True,
    delimiter: str | None = None,
    label_names: Sequence[str] | None = None,
    skip_bad_rows: bool = False,
) -> ReadResult:
    """Reads and validates the examples of one labelled file.

    Args:
        path: the file.
        text_column: header name (TSV/CSV with a header), 0-based index
            (negative counts from the end; TSV/CSV) or key (JSONL) of the text.
        label_column: the label column, or None for unlabelled data (then every
            ``label`` is None). Labels are strings (JSON numbers and booleans
            are converted with ``str``).
        text_pair_column: the second text of sentence-pair tasks, or None.
        file_format: "tsv", "csv" or "jsonl"; default from the extension.
        has_header: TSV/CSV only: the first non-blank row names the columns.
        delimiter: TSV/CSV only: default tab (TSV) or comma (CSV).
        label_names: if given, every label must be one of them.
        skip_bad_rows: skip and count bad rows instead of raising.

    Returns:
        :class:`ReadResult`; texts and labels are stripped of surrounding
        whitespace, and each example knows its ``path:line``.

    Raises:
        FileNotFoundError: the file does not exist.
        DataFileError: a bad header, a bad row (unless ``skip_bad_rows``), an
            undecodable byte, or no usable example at all; the message names
            the file, line and column.

    Example:

    >>> read_labeled_file("pairs.csv", "premise", "label", "hypothesis")  # doctest: +SKIP
    ReadResult(examples=[LabeledText(text='A man sleeps.', text_pair='A person rests.',
                label='entailment', source='pairs.csv:2'), ...], skipped=0, skipped_examples=[])
    """
    known_labels: list[str] | None = None
    if label_names is not None:
        if label_column is None:
            raise ValueError("label_names was given but label_column is None.")
        known_labels = [str(name) for name in label_names]
    known_set = set(known_labels or ())
    path = os.fspath(path)
    roles = [("text", text_column), ("text pair", text_pair_column), ("label", label_column)]
    column_of = dict(roles)
    examples: list[LabeledText] = []
    bad = BadRows(skip_bad_rows)

    def on_row(line_number: int, values: dict[str, str] | None, problem: str | None) -> None:
        where = f"{path}:{line_number}"
        if problem is not None:
            bad(f"{where}: {problem}")
            return
        cleaned = {role: value.strip() for role, value in values.items()}
        for role in ("text", "text pair"):
            if role in cleaned and not cleaned[role]:
                bad(f"{where}: empty {role} ({_column_text(column_of[role])})")
                return
        label = cleaned.get("label")
        if "label" in cleaned:
            if not label:
                bad(f"{where}: missing label ({_column_text(column_of['label'])})")
                return
            if known_labels is not None and label not in known_set:
                bad(
                    f"{where}: label {label!r} is not one of the label names "
                    f"{_list_names(known_labels)} ({_column_text(column_of['label'])})"
                )
                return
        examples.append(LabeledText(cleaned["text"], cleaned.get("text pair"), label, where))

    read_columns(
        path,
        roles,
        on_row,
        file_format=file_format,
        has_header=has_header,
        delimiter=delimiter,
        what="Labeled data file",
    )
    return bad.result(path, examples)


def read_columns(
    path: str | os.PathLike,
    roles: Sequence[tuple[str, Column | None]],
    on_row: RowHandler,
    *,
    file_format: str | None = None,
    has_header: bool = True,
    delimiter: str | None = None,
    what: str = "Data file",
) -> None:
    """Checks the options, reads the file, and hands every non-blank row to ``on_row``.

    The machinery of :func:`read_labeled_file`, shared with other readers of
    column files. ``roles`` pairs a role name (used in messages, e.g.
    ``"source"``) with its column; roles whose column is None are left out.
    ``on_row(line_number, values, problem)`` gets either the raw (unstripped)
    field of each role, or a problem that makes the row bad (it names the
    column where one is to blame). A bad header raises :class:`DataFileError`.

    Example:

    >>> rows = []
    >>> read_columns("cmn.txt", [("source", 0), ("target", 1)],
    ...              lambda line, values, problem: rows.append((line, values, problem)),
    ...              file_format="tsv", has_header=False)  # doctest: +SKIP
    >>> rows[0]  # doctest: +SKIP
    (1, {'source': 'Hi.', 'target': '嗨。'}, None)
    """
    path = os.fspath(path)
    file_format = _guess_format(path, file_format)
    columns = _Columns(roles)
    if file_format == "jsonl":
        if delimiter is not None:
            raise ValueError("delimiter applies to TSV and CSV files, not JSON Lines.")
        for role, column in columns.roles:
            if not isinstance(column, str):
                raise TypeError(
                    f"JSON Lines columns are keys (str); the {role} column is {column!r}."
                )
    else:
        delimiter = delimiter if delimiter is not None else ("\t" if file_format == "tsv" else ",")
        if not has_header:
            for role, column in columns.roles:
                if isinstance(column, str):
                    raise ValueError(
                        f"The {role} column {column!r} is a name, but has_header=False; "
                        "use a 0-based column index."
                    )
    text = read_text(path, what)
    if file_format == "jsonl":
        _read_jsonl(text, columns, on_row)
    else:
        _read_delimited(path, text, file_format, columns, has_header, delimiter, on_row)


def infer_label_names(datasets: Sequence[ReadResult]) -> list[str]:
    """Returns the sorted unique labels of the datasets.

    Labels sort numerically when all are integers (``"2" < "10"``), otherwise
    as strings. Unlabelled examples are ignored; no label at all is an error.

    Example:

    >>> examples = [LabeledText("a", None, "10", "f:1"), LabeledText("b", None, "2", "f:2")]
    >>> data = ReadResult(examples)
    >>> infer_label_names([data])
    ['2', '10']
    """
    labels = {ex.label for data in datasets for ex in data.examples if ex.label is not None}
    if not labels:
        raise ValueError("Cannot infer label names: the datasets have no labels.")
    if all(_INTEGER.fullmatch(label) for label in labels):
        return sorted(labels, key=lambda label: (int(label), label))
    return sorted(labels)


def check_labels_known(data: ReadResult, label_names: Sequence[str]) -> None:
    """Raises `DataFileError` naming the first example whose label is not in ``label_names``.

    Held-out files are checked against the labels learned from the training
    file, so that a label the model never saw is not silently made a class.

    Example:

    >>> check_labels_known(ReadResult([LabeledText("a", None, "neutral", "dev.tsv:4")]), ["neg", "pos"])
    Traceback (most recent call last):
    ...
    tfptlm.data.data_errors.DataFileError: dev.tsv:4: label 'neutral' is not in the training data's labels ['neg', 'pos']; list every label in data.label_names
    """
    known = set(label_names)
    for example in data.examples:
        if example.label is not None and example.label not in known:
            raise DataFileError(
                f"{example.source}: label {example.label!r} is not in the training data's labels "
                f"{_list_names(list(label_names))}; list every label in data.label_names"
            )
