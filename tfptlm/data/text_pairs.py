"""Read (source, target) text pairs for sequence-to-sequence and causal-LM fine-tuning.

Four layouts, each validated before training starts; a bad row is a
:class:`DataFileError` naming the file and line (and column), or, with
``skip_bad_rows=True``, it is skipped and counted in the :class:`ReadResult`:

* Parallel files (:func:`read_parallel_files`): line *i* of the source file
  pairs with line *i* of the target file (Multi30k, LCSTS).
* Column files (:func:`read_pair_columns`): a source and a target column of
  a TSV, CSV or JSON Lines file (the Anki/Tatoeba ``cmn.txt`` is a TSV
  without header). Same rules as :func:`~tfptlm.data.read_labeled_file`.
* Dialogues (:func:`read_dialogues`): the DailyDialog format, one dialogue
  per line, each utterance ended by ``__eou__``; every turn after the first
  becomes a (context, response) pair.
* MBPP (:func:`read_mbpp`): Python programming tasks with their tests.

Line-based files (all but the column files) may be gzip-compressed
(``.gz``). Every file is UTF-8, or UTF-8/UTF-16/UTF-32 with a byte order
mark; ``\\r\\n`` line ends are read as ``\\n``. Texts are stripped of
surrounding whitespace.

Example:

>>> data = read_parallel_files("multi30k/val.en.gz", "multi30k/val.de.gz")  # doctest: +SKIP
>>> data.examples[0]  # doctest: +SKIP
TextPair(source='A group of men are loading cotton onto a truck',
         target='Eine Gruppe von Männern lädt Baumwolle auf einen Lastwagen', line=1)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tfptlm.data.data_errors import DataFileError, ReadResult
from tfptlm.data.encoded_lines import read_text, split_lines
from tfptlm.data.labeled_files import BadRows, Column, read_columns

_MBPP_KEYS = ("text", "code", "task_id", "test_list")


@dataclass
class TextPair:
    """A source text and its target (translation, summary, response), with the 1-based line."""

    source: str
    target: str
    line: int


@dataclass
class CodeTask:
    """One MBPP task: the prompt for the model, the reference code and the ``assert`` tests."""

    task_id: int
    prompt: str
    code: str
    tests: list[str]
    setup_code: str


def read_text_lines(path: str, what: str = "Data file") -> list[str]:
    """The lines of a text file (gunzipped if it ends in ``.gz``), without line ends."""
    return [line.rstrip("\r\n") for line in split_lines(read_text(os.fspath(path), what))]


def _without_trailing_blank_lines(lines: list[str]) -> list[str]:
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    return lines[:end]


def read_parallel_files(
    source_file: str | os.PathLike,
    target_file: str | os.PathLike,
    *,
    skip_bad_rows: bool = False,
) -> ReadResult:
    """Pairs line *i* of ``source_file`` with line *i* of ``target_file``.

    Blank lines at the end of a file are ignored; then both files must have
    the same number of lines. An empty line on either side is a bad row.

    Raises:
        FileNotFoundError: a file does not exist.
        DataFileError: the line counts differ (naming both files and counts,
            even with ``skip_bad_rows``), an empty line (unless
            ``skip_bad_rows``), an undecodable byte, or no pair at all.

    Example:

    >>> data = read_parallel_files("lcsts/test.src.txt", "lcsts/test.tgt.txt")  # doctest: +SKIP
    >>> len(data.examples), data.examples[0].line  # doctest: +SKIP
    (10666, 1)
    """
    source_path, target_path = os.fspath(source_file), os.fspath(target_file)
    sources = _without_trailing_blank_lines(read_text_lines(source_path, "Source file"))
    targets = _without_trailing_blank_lines(read_text_lines(target_path, "Target file"))
    if len(sources) != len(targets):
        raise DataFileError(
            f"{source_path} has {len(sources)} lines but {target_path} has {len(targets)}; "
            "line i of the source file must pair with line i of the target file"
        )
    pairs: list[TextPair] = []
    bad = BadRows(skip_bad_rows)
    for line_number, (source, target) in enumerate(zip(sources, targets), start=1):
        source, target = source.strip(), target.strip()
        source_at, target_at = f"{source_path}:{line_number}", f"{target_path}:{line_number}"
        if not source and not target:
            bad(f"{source_at}: empty line, also in {target_at}")
        elif not source:
            bad(f"{source_at}: empty source line (its target is {target_at})")
        elif not target:
            bad(f"{target_at}: empty target line (its source is {source_at})")
        else:
            pairs.append(TextPair(source, target, line_number))
    return bad.result(f"{source_path} and {target_path}", pairs, "pairs")


def read_pair_columns(
    path: str | os.PathLike,
    source_column: Column,
    target_column: Column | None,
    *,
    file_format: str | None = None,
    has_header: bool = True,
    delimiter: str | None = None,
    skip_bad_rows: bool = False,
) -> ReadResult:
    """Reads a source and a target column of a TSV, CSV or JSON Lines file.

    Columns, formats and row checks are those of
    :func:`~tfptlm.data.read_labeled_file`: a header name or 0-based index
    (negative from the end) for TSV/CSV, a key for JSONL; the format comes
    from the extension (``.tsv``/``.tab``, ``.csv``, ``.jsonl``/``.json``)
    unless ``file_format`` is given. An empty source or target is a bad row.
    ``target_column=None`` reads the sources alone (to predict), with target
    ``""``.

    Example:

    >>> data = read_pair_columns("anki_cmn_eng/cmn.txt", 0, 1, file_format="tsv",
    ...                          has_header=False)  # doctest: +SKIP
    >>> data.examples[0]  # doctest: +SKIP
    TextPair(source='Hi.', target='嗨。', line=1)
    """
    path = os.fspath(path)
    columns = {"source": source_column, "target": target_column}
    pairs: list[TextPair] = []
    bad = BadRows(skip_bad_rows)

    def on_row(line_number: int, values: dict[str, str] | None, problem: str | None) -> None:
        where = f"{path}:{line_number}"
        if problem is not None:
            bad(f"{where}: {problem}")
            return
        texts = {role: value.strip() for role, value in values.items()}
        for role, text in texts.items():
            if not text:
                bad(f"{where}: empty {role} (column {columns[role]!r})")
                return
        pairs.append(TextPair(texts["source"], texts.get("target", ""), line_number))

    read_columns(
        path,
        list(columns.items()),
        on_row,
        file_format=file_format,
        has_header=has_header,
        delimiter=delimiter,
        what="Text pair file",
    )
    return bad.result(path, pairs, "pairs")


def read_dialogues(
    path: str | os.PathLike,
    *,
    speakers: Sequence[str] = ("A: ", "B: "),
    turn_separator: str = "\n",
    max_turns: int | None = None,
    utterance_separator: str = "__eou__",
    skip_bad_rows: bool = False,
) -> ReadResult:
    """Turns DailyDialog dialogues into (context, response) pairs, one per turn after the first.

    Format: one dialogue per line, every utterance followed by
    ``utterance_separator`` (``"Hi . __eou__ Hello ! __eou__"``; spaces
    around it are optional, the last one may be missing). Anything after a
    tab is ignored, so the ``text<TAB>topic<TAB>acts<TAB>emotions`` lines of
    XDailyDialog's ``*_human.txt`` read the same. Blank lines are skipped.
    Speakers take turns, so utterance *k* is spoken by
    ``speakers[k % len(speakers)]``.

    For each turn *t* >= 1 the context is the previous turns (the last
    ``max_turns`` of them, if given), each prefixed by its speaker marker and
    joined by ``turn_separator``; the response is turn *t* without marker.
    ``speakers=("", "")`` with ``turn_separator=" [SEP] "`` gives
    separator-token contexts instead.

    A line with an empty utterance or fewer than two utterances is a bad row.

    Example:

    >>> data = read_dialogues("xdailydialog/zh_dev_human.txt")  # doctest: +SKIP
    >>> data.examples[1]  # doctest: +SKIP
    TextPair(source='A: 你会用筷子吗？\\nB: 怎么不会？看。',
             target='太厉害了。你觉得我们的中国菜怎么样？', line=1)
    """
    path = os.fspath(path)
    speakers = list(speakers)
    if not speakers:
        raise ValueError("speakers must name at least one speaker marker")
    if max_turns is not None and max_turns < 1:
        raise ValueError(f"max_turns must be >= 1 or None, got {max_turns}")
    if not utterance_separator:
        raise ValueError("utterance_separator must not be empty")
    pairs: list[TextPair] = []
    bad = BadRows(skip_bad_rows)
    for line_number, line in enumerate(read_text_lines(path, "Dialogue file"), start=1):
        text = line.split("\t", 1)[0]
        if not text.strip():
            continue
        utterances = [utterance.strip() for utterance in text.split(utterance_separator)]
        if not utterances[-1]:
            utterances.pop()  # after the closing separator
        where = f"{path}:{line_number}"
        if "" in utterances:
            bad(f"{where}: utterance {utterances.index('') + 1} is empty")
            continue
        if len(utterances) < 2:
            bad(
                f"{where}: a dialogue needs at least 2 utterances separated by "
                f"{utterance_separator!r}, found {len(utterances)}"
            )
            continue
        turns = [
            speakers[k % len(speakers)] + utterance for k, utterance in enumerate(utterances)
        ]
        for t in range(1, len(utterances)):
            first = 0 if max_turns is None else max(0, t - max_turns)
            pairs.append(TextPair(turn_separator.join(turns[first:t]), utterances[t], line_number))
    return bad.result(path, pairs, "dialogues")


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_mbpp(
    path: str | os.PathLike,
    task_ids: Iterable[int] | None = None,
    *,
    prompt_tests: int = 1,
) -> list[CodeTask]:
    """Reads MBPP tasks (JSON Lines: ``text``, ``code``, ``task_id``, ``test_list``, ...).

    The prompt is the problem statement followed, line by line, by its first
    ``prompt_tests`` tests, which show the function's name and signature (the
    MBPP paper shows all three: ``prompt_tests=3``). ``\\r\\n`` in the code,
    tests and setup code becomes ``\\n``. ``test_setup_code`` may be missing;
    ``challenge_test_list`` is not read. Every line is checked, also those of
    tasks left out by ``task_ids``.

    Args:
        path: the JSONL file (``.gz`` allowed).
        task_ids: keep only these tasks (in file order), e.g. ``range(11, 511)``
            for the MBPP test split; each must be in the file.
        prompt_tests: how many tests the prompt shows.

    Raises:
        DataFileError: bad JSON, a missing key or a value of the wrong type
            (naming file, line and key), a repeated ``task_id``, an unknown
            id in ``task_ids``, or no task.

    Example:

    >>> tasks = read_mbpp("mbpp/mbpp.jsonl", task_ids=[2])  # doctest: +SKIP
    >>> print(tasks[0].prompt)  # doctest: +SKIP
    Write a function to find the similar elements from the given two tuple lists.
    assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)
    """
    path = os.fspath(path)
    if prompt_tests < 0:
        raise ValueError(f"prompt_tests must be >= 0, got {prompt_tests}")
    wanted = None if task_ids is None else set(task_ids)
    tasks: list[CodeTask] = []
    first_line: dict[int, int] = {}
    for line_number, line in enumerate(read_text_lines(path, "MBPP file"), start=1):
        where = f"{path}:{line_number}"
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFileError(
                f"{where}: not valid JSON: {error.msg} at column {error.colno}"
            ) from None
        if not isinstance(record, dict):
            raise DataFileError(f"{where}: expected a JSON object, got {type(record).__name__}")
        for key in _MBPP_KEYS:
            if key not in record:
                raise DataFileError(f"{where}: missing key {key!r}")
        task_id = record["task_id"]
        if isinstance(task_id, bool) or not isinstance(task_id, int):
            raise DataFileError(
                f"{where}: the value of key 'task_id' must be an integer, got {task_id!r:.40}"
            )
        if task_id in first_line:
            raise DataFileError(
                f"{where}: task_id {task_id} again (first on line {first_line[task_id]})"
            )
        first_line[task_id] = line_number
        setup_code = record.get("test_setup_code") or ""
        for key, value in (("text", record["text"]), ("code", record["code"]),
                           ("test_setup_code", setup_code)):
            if not isinstance(value, str):
                raise DataFileError(
                    f"{where}: the value of key {key!r} must be a string, "
                    f"got {type(value).__name__}"
                )
        tests = record["test_list"]
        if (
            not isinstance(tests, list)
            or not tests
            or not all(isinstance(test, str) and test.strip() for test in tests)
        ):
            raise DataFileError(
                f"{where}: the value of key 'test_list' must be a non-empty list of test strings"
            )
        if not record["text"].strip() or not record["code"].strip():
            empty = "text" if not record["text"].strip() else "code"
            raise DataFileError(f"{where}: the value of key {empty!r} is empty")
        if wanted is not None and task_id not in wanted:
            continue
        tests = [_normalize_newlines(test).strip() for test in tests]
        prompt = "\n".join([record["text"].strip(), *tests[:prompt_tests]])
        tasks.append(
            CodeTask(
                task_id,
                _normalize_newlines(prompt),
                _normalize_newlines(record["code"]),
                tests,
                _normalize_newlines(setup_code),
            )
        )
    if wanted is not None:
        unknown = sorted(wanted - first_line.keys())
        if unknown:
            shown = ", ".join(map(str, unknown[:10])) + (" ..." if len(unknown) > 10 else "")
            raise DataFileError(f"{path}: no task with task_id {shown} ({len(unknown)} missing)")
    if not tasks:
        raise DataFileError(f"{path}: no MBPP tasks in the file")
    return tasks
