"""Read extractive question-answering data in the SQuAD v1.1 JSON format.

::

    {"version": "1.1",
     "data": [{"title": "...",
               "paragraphs": [{"context": "...",
                               "qas": [{"id": "...", "question": "...",
                                        "answers": [{"text": "...", "answer_start": 17}]}]}]}]}

Everything is validated before training starts: the JSON itself (a syntax
error names the line and column), every field and its type, unique ids, and
that each answer's text is found in the context at its ``answer_start``. A bad
question is a :class:`DataFileError` naming the file, the JSON path and the id,
or, with ``skip_bad_rows=True``, it is skipped and counted. SQuAD v2
unanswerable questions (``is_impossible: true``) are not supported.

Example:

>>> data = read_squad("xquad/xquad.en.json")  # doctest: +SKIP
>>> example = data.examples[0]  # doctest: +SKIP
>>> example.answers, example.source  # doctest: +SKIP
([('308', 34)], 'xquad/xquad.en.json: data[0].paragraphs[0].qas[0] (id 56beb4343aeaaa14008c925b)')
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from tfptlm.data.data_errors import DataFileError, ReadResult
from tfptlm.data.encoded_lines import read_text

_MAX_SKIPPED_EXAMPLES = 10


@dataclass
class QAExample:
    """One question with its context and answers as ``(text, char_start)`` in ``context``."""

    id: str
    question: str
    context: str
    answers: list[tuple[str, int]]
    source: str


class _Bad(Exception):
    """A problem with one question, paragraph or article."""


def _type_name(value) -> str:
    return "null" if value is None else type(value).__name__


def _get(container: dict, key: str, kind: type | tuple[type, ...], where: str):
    if key not in container:
        raise _Bad(f"{where}: missing field {key!r}")
    value = container[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        kinds = (kind,) if isinstance(kind, type) else kind
        expected = " or ".join(k.__name__ for k in kinds)
        raise _Bad(f"{where}: field {key!r} must be {expected}, got {_type_name(value)}")
    return value


def _answer(answer, index: int, context: str, where: str) -> tuple[str, int]:
    at = f"{where} answers[{index}]"
    if not isinstance(answer, dict):
        raise _Bad(f"{at}: expected an object, got {_type_name(answer)}")
    text = _get(answer, "text", str, at)
    start = _get(answer, "answer_start", int, at)
    if not text:
        raise _Bad(f"{at}: empty answer text")
    found = context[start : start + len(text)] if start >= 0 else ""
    if start < 0 or found != text:
        near = [i for i in range(len(context)) if context.startswith(text, i)][:5]
        hint = (
            f"; the text occurs at {near}" if near else "; the text does not occur in the context"
        )
        raise _Bad(
            f"{at}: answer {text!r} is not in the context at answer_start {start}: "
            f"found {found!r}{hint}"
        )
    return text, start


def read_squad(
    path: str | os.PathLike,
    *,
    skip_bad_rows: bool = False,
    require_answers: bool = True,
) -> ReadResult:
    """Reads and validates the questions of a SQuAD v1.1 JSON file.

    Args:
        path: the file (UTF-8, or with a UTF-8/16/32 byte order mark).
        skip_bad_rows: skip and count bad questions (and broken paragraphs or
            articles, counted by their questions) instead of raising.
        require_answers: if False, a question may have no (or an empty)
            ``answers`` list, as in data for prediction only.

    Returns:
        :class:`ReadResult`; each example's ``source`` is its JSON path and id.

    Raises:
        FileNotFoundError: the file does not exist.
        DataFileError: invalid JSON (names line and column), no ``data`` list,
            a bad or duplicate question (unless ``skip_bad_rows``), or no
            usable question at all.

    Example:

    >>> read_squad("dev.json", require_answers=False).examples[0].answers  # doctest: +SKIP
    []
    """
    path = os.fspath(path)
    text = read_text(path, "SQuAD file")
    try:
        root = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFileError(
            f"{path}:{error.lineno}: not valid JSON: {error.msg} "
            f"(line {error.lineno}, column {error.colno})"
        ) from None
    if not isinstance(root, dict) or not isinstance(root.get("data"), list):
        got = "no 'data' field" if isinstance(root, dict) and "data" not in root else (
            f"'data' is {_type_name(root.get('data'))}" if isinstance(root, dict)
            else f"the file holds a {_type_name(root)}"
        )
        raise DataFileError(
            f"{path}: expected a SQuAD v1.1 object {{'version': ..., 'data': [...]}}; {got}"
        )

    examples: list[QAExample] = []
    skipped_examples: list[str] = []
    skipped = 0
    seen: dict[str, str] = {}

    def bad(message: str, count: int = 1) -> None:
        nonlocal skipped
        if not skip_bad_rows:
            raise DataFileError(message)
        skipped += count
        if len(skipped_examples) < _MAX_SKIPPED_EXAMPLES:
            skipped_examples.append(message)

    def question_count(value) -> int:
        """How many questions a broken article or paragraph holds (at least 1)."""
        if isinstance(value, dict):
            if isinstance(value.get("qas"), list):
                return max(1, len(value["qas"]))
            if isinstance(value.get("paragraphs"), list):
                return max(1, sum(question_count(p) for p in value["paragraphs"]))
        return 1

    for a, article in enumerate(root["data"]):
        where = f"{path}: data[{a}]"
        try:
            if not isinstance(article, dict):
                raise _Bad(f"{where}: expected an object, got {_type_name(article)}")
            paragraphs = _get(article, "paragraphs", list, where)
        except _Bad as error:
            bad(str(error), question_count(article))
            continue
        for p, paragraph in enumerate(paragraphs):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            try:
                if not isinstance(paragraph, dict):
                    raise _Bad(f"{where}: expected an object, got {_type_name(paragraph)}")
                context = _get(paragraph, "context", str, where)
                if not context.strip():
                    raise _Bad(f"{where}: empty context")
                questions = _get(paragraph, "qas", list, where)
            except _Bad as error:
                bad(str(error), question_count(paragraph))
                continue
            for q, qa in enumerate(questions):
                where = f"{path}: data[{a}].paragraphs[{p}].qas[{q}]"
                try:
                    if not isinstance(qa, dict):
                        raise _Bad(f"{where}: expected an object, got {_type_name(qa)}")
                    qid = _get(qa, "id", (str, int), where)
                    qid = str(qid)
                    where = f"{where} (id {qid})"
                    if qid in seen:
                        raise _Bad(f"{where}: duplicate id, first used at {seen[qid]}")
                    seen[qid] = where
                    question = _get(qa, "question", str, where).strip()
                    if not question:
                        raise _Bad(f"{where}: empty question")
                    if qa.get("is_impossible") is True:
                        raise _Bad(
                            f"{where}: unanswerable SQuAD v2 question (is_impossible: true); "
                            "only SQuAD v1.1 (every question answerable) is supported"
                        )
                    if "answers" in qa or require_answers:
                        raw_answers = _get(qa, "answers", list, where)
                    else:
                        raw_answers = []
                    if require_answers and not raw_answers:
                        raise _Bad(
                            f"{where}: no answers (pass require_answers=False for "
                            "prediction-only data)"
                        )
                    answers = [_answer(x, i, context, where) for i, x in enumerate(raw_answers)]
                except _Bad as error:
                    bad(str(error))
                    continue
                examples.append(QAExample(qid, question, context, answers, where))

    if not examples:
        detail = (
            f"; {skipped} bad questions were skipped, the first: {skipped_examples[0]}"
            if skipped
            else ""
        )
        raise DataFileError(f"{path}: no usable questions in the file{detail}")
    return ReadResult(examples, skipped, skipped_examples)
