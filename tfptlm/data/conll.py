"""Read CoNLL-style token-classification files and convert tag schemes.

One token per line, columns split on whitespace (CoNLL-2003: ``word POS chunk
NER``; Chinese character files: ``char tag``). A blank line ends a sentence;
``-DOCSTART-`` lines start documents and are skipped. Tags are kept as in the
file and validated against the declared scheme:

* ``iob1``: ``I-`` starts an entity unless the previous token is in an entity
  of the same type; ``B-`` only starts an entity that directly follows one of
  the same type (the original CoNLL-2003 tags).
* ``iob2``: ``B-`` starts every entity, ``I-`` continues it.
* ``bmes``: ``B-``/``M-``/``E-`` begin, continue and end a multi-token
  entity, ``S-`` is a single-token entity.

``O`` is outside any entity in every scheme. :func:`convert_tags` converts
between the schemes and :func:`tags_to_spans` extracts entities; both read
ill-formed sequences leniently, like conlleval (e.g. an IOB2 ``I-PER`` after
``O`` starts an entity).

Example:

>>> data = read_conll("conll2003/eng.testb", scheme="iob1")  # doctest: +SKIP
>>> data.examples[0].words[:3], data.examples[0].tags[:3]  # doctest: +SKIP
(['SOCCER', '-', 'JAPAN'], ['O', 'O', 'I-LOC'])
>>> convert_tags(["I-LOC", "O", "I-PER", "B-PER"], "iob1", "iob2")
['B-LOC', 'O', 'B-PER', 'B-PER']
>>> tags_to_spans(["B-PER", "E-PER", "O", "S-LOC"], "bmes")
[('PER', 0, 2), ('LOC', 3, 4)]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from tfptlm.data.data_errors import DataFileError, ReadResult
from tfptlm.data.encoded_lines import read_lines_with_numbers

TAG_SCHEMES = ("iob1", "iob2", "bmes")
_PREFIXES = {"iob1": ("B", "I"), "iob2": ("B", "I"), "bmes": ("B", "M", "E", "S")}
_DOCSTART = "-DOCSTART-"
_MAX_SKIPPED_EXAMPLES = 10
_MAX_LISTED_NAMES = 20


@dataclass
class TaggedSentence:
    """The words of one sentence, their tags, and the ``path:line`` of the first word."""

    words: list[str]
    tags: list[str]
    source: str


def _check_scheme(scheme: str) -> None:
    if scheme not in TAG_SCHEMES:
        raise ValueError(f"Unknown tag scheme {scheme!r}; choose one of {list(TAG_SCHEMES)}.")


def _split_tag(tag: str) -> tuple[str, str]:
    """Returns ``(prefix, type)``, or ``("O", "")`` for ``O``."""
    if tag == "O":
        return "O", ""
    prefix, dash, entity_type = tag.partition("-")
    if not dash or not prefix or not entity_type:
        return "", ""
    return prefix, entity_type


def tag_problem(tag: str, scheme: str) -> str | None:
    """Returns why ``tag`` is not valid in ``scheme``, or None when it is.

    Example:

    >>> tag_problem("B-PER", "iob2") is None
    True
    >>> tag_problem("S-PER", "iob2")
    "tag 'S-PER' is not valid in the iob2 scheme (O or B-/I- + type); it fits scheme='bmes'"
    """
    prefix, _ = _split_tag(tag)
    if prefix == "O" or prefix in _PREFIXES[scheme]:
        return None
    allowed = "/".join(f"{p}-" for p in _PREFIXES[scheme])
    message = f"tag {tag!r} is not valid in the {scheme} scheme (O or {allowed} + type)"
    if not prefix:
        return message + "; tags must be O or PREFIX-TYPE"
    fits = [other for other in TAG_SCHEMES if prefix in _PREFIXES[other]]
    if fits == ["iob1", "iob2"]:
        return message + "; it fits scheme='iob1' or scheme='iob2'"
    if fits:
        return message + f"; it fits scheme={fits[0]!r}"
    return message + f"; no supported scheme ({', '.join(TAG_SCHEMES)}) uses the prefix {prefix!r}"


def tags_to_spans(tags: Sequence[str], scheme: str) -> list[tuple[str, int, int]]:
    """Returns the entities as ``(type, start, end)`` word indices, ``end`` exclusive.

    Ill-formed sequences are read leniently: a continuation tag (``I-``,
    ``M-``, ``E-``) that does not continue an open entity of its type starts a
    new one; ``B-`` always starts one; ``E-`` and ``S-`` close their entity.
    A tag whose prefix is not valid for the scheme raises ``ValueError``.

    Example:

    >>> tags_to_spans(["B-PER", "I-PER", "O", "I-LOC", "B-LOC"], "iob2")
    [('PER', 0, 2), ('LOC', 3, 4), ('LOC', 4, 5)]
    """
    _check_scheme(scheme)
    spans: list[tuple[str, int, int]] = []
    open_type: str | None = None  # type of the entity the next token may continue
    start = 0
    for index, tag in enumerate(tags):
        problem = tag_problem(tag, scheme)
        if problem is not None:
            raise ValueError(f"Word {index}: {problem}.")
        prefix, entity_type = _split_tag(tag)
        continues = prefix in ("I", "M", "E") and open_type == entity_type
        if not continues and open_type is not None:
            spans.append((open_type, start, index))
            open_type = None
        if prefix == "O":
            continue
        if not continues:
            open_type, start = entity_type, index
        if prefix in ("E", "S"):
            spans.append((entity_type, start, index + 1))
            open_type = None
    if open_type is not None:
        spans.append((open_type, start, len(tags)))
    return spans


def spans_to_tags(spans: Sequence[tuple[str, int, int]], length: int, scheme: str) -> list[str]:
    """Writes non-overlapping ``(type, start, end)`` spans as tags of ``scheme``.

    Example:

    >>> spans_to_tags([("PER", 0, 1), ("PER", 1, 3)], 4, "iob1")
    ['I-PER', 'B-PER', 'I-PER', 'O']
    """
    _check_scheme(scheme)
    tags = ["O"] * length
    previous_end, previous_type = -1, None
    for entity_type, start, end in sorted(spans, key=lambda span: span[1]):
        if not 0 <= start < end <= length or start < previous_end:
            raise ValueError(
                f"Span {(entity_type, start, end)} is empty, out of range or overlaps."
            )
        if scheme == "bmes":
            if end - start == 1:
                tags[start] = f"S-{entity_type}"
            else:
                tags[start] = f"B-{entity_type}"
                tags[start + 1 : end - 1] = [f"M-{entity_type}"] * (end - start - 2)
                tags[end - 1] = f"E-{entity_type}"
        else:
            tags[start:end] = [f"I-{entity_type}"] * (end - start)
            adjacent_same = start == previous_end and entity_type == previous_type
            if scheme == "iob2" or adjacent_same:
                tags[start] = f"B-{entity_type}"
        previous_end, previous_type = end, entity_type
    return tags


def convert_tags(tags: Sequence[str], source: str, target: str) -> list[str]:
    """Converts a tag sequence from scheme ``source`` to scheme ``target``.

    Exact for well-formed sequences (a round trip gives the input back);
    ill-formed input is read leniently, as by :func:`tags_to_spans`.

    Example:

    >>> convert_tags(["B-PER", "I-PER", "O", "B-LOC"], "iob2", "bmes")
    ['B-PER', 'E-PER', 'O', 'S-LOC']
    """
    _check_scheme(target)
    return spans_to_tags(tags_to_spans(tags, source), len(tags), target)


def read_conll(
    path: str | os.PathLike,
    *,
    word_column: int = 0,
    tag_column: int = -1,
    scheme: str = "iob2",
    skip_bad_rows: bool = False,
    label_names: Sequence[str] | None = None,
) -> ReadResult:
    """Reads and validates the tagged sentences of one CoNLL-style file.

    Args:
        path: the file (UTF-8, or with a UTF-8/16/32 byte order mark).
        word_column: 0-based index of the word among the whitespace-separated
            columns (negative counts from the end of each line).
        tag_column: index of the tag; default the last column.
        scheme: the tag scheme of the file: "iob1", "iob2" or "bmes".
        skip_bad_rows: skip and count sentences with a bad line instead of
            raising.
        label_names: if given, every tag must be one of them.

    Returns:
        :class:`ReadResult`, tags as in the file.

    Raises:
        FileNotFoundError: the file does not exist.
        DataFileError: a line with too few columns, a tag that is not valid
            in ``scheme`` or not in ``label_names`` (unless ``skip_bad_rows``),
            an undecodable byte, or no sentence at all; names file and line.

    Example:

    >>> data = read_conll("resume_ner/dev.char.bmes", scheme="bmes")  # doctest: +SKIP
    >>> len(data.examples), data.examples[0].source  # doctest: +SKIP
    (463, 'resume_ner/dev.char.bmes:1')
    """
    _check_scheme(scheme)
    path = os.fspath(path)
    known = None if label_names is None else [str(name) for name in label_names]
    known_set = set(known or ())

    sentences: list[TaggedSentence] = []
    skipped_examples: list[str] = []
    skipped = 0
    words: list[str] = []
    tags: list[str] = []
    first_line = 0
    problem: str | None = None  # the first bad line of the current sentence

    def end_sentence() -> None:
        nonlocal words, tags, problem, skipped
        if problem is not None:
            skipped += 1
            if len(skipped_examples) < _MAX_SKIPPED_EXAMPLES:
                skipped_examples.append(problem)
        elif words:
            sentences.append(TaggedSentence(words, tags, f"{path}:{first_line}"))
        words, tags, problem = [], [], None

    for line_number, line in read_lines_with_numbers(path, "CoNLL file"):
        columns = line.split()
        if not columns:
            end_sentence()
            continue
        if columns[0] == _DOCSTART:
            end_sentence()
            continue
        if not words and problem is None:
            first_line = line_number
        where = f"{path}:{line_number}"
        message = None
        word_index = word_column + len(columns) if word_column < 0 else word_column
        tag_index = tag_column + len(columns) if tag_column < 0 else tag_column
        if not (0 <= word_index < len(columns) and 0 <= tag_index < len(columns)) or (
            word_index == tag_index
        ):
            message = (
                f"{where}: too few columns: the line has {len(columns)}, the word is "
                f"column {word_column} and the tag column {tag_column} (column {tag_column})"
            )
        else:
            tag = columns[tag_index]
            bad_tag = tag_problem(tag, scheme)
            if bad_tag is not None:
                message = f"{where}: {bad_tag} (column {tag_column})"
            elif known is not None and tag not in known_set:
                shown = ", ".join(repr(name) for name in known[:_MAX_LISTED_NAMES])
                more = f", ... ({len(known)} in all)" if len(known) > _MAX_LISTED_NAMES else ""
                message = (
                    f"{where}: tag {tag!r} is not one of the label names [{shown}{more}] "
                    f"(column {tag_column})"
                )
        if message is not None:
            if not skip_bad_rows:
                raise DataFileError(message)
            if problem is None:
                problem = message
            continue
        words.append(columns[word_index])
        tags.append(columns[tag_index])
    end_sentence()

    if not sentences:
        detail = (
            f"; {skipped} bad sentences were skipped, the first: {skipped_examples[0]}"
            if skipped
            else ""
        )
        raise DataFileError(f"{path}: no sentences in the file{detail}")
    return ReadResult(sentences, skipped, skipped_examples)
