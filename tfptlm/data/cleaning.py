"""Cleaning a pretraining corpus: repairs and filters per line, deduplication per document.

The corpus format is the one ``tfptlm pretrain`` reads (see
:mod:`tfptlm.data.text_corpus`): one sentence per line with blank lines between
documents, or one document per line. The cleaner keeps that format and works in
this order, each step switchable in :class:`CleaningConfig`:

1. every line: Unicode normalization, control characters, markup, URLs,
   whitespace (:func:`tfptlm.data.text_cleaning.cleaning_steps`);
2. line filters: a line that became empty, the script filter (with
   ``script_unit="line"``) and the line length limits;
3. document filters: the document length limits and the script filter (with
   ``script_unit="document"``); a document whose lines were all removed is gone;
4. exact duplicates (case and whitespace ignored) and near duplicates (MinHash
   LSH, :mod:`tfptlm.data.dedup`) of an earlier kept document.

Every removed line or document is recorded with its file, line number, reason
and, for duplicates, the kept document it repeats (:class:`Removal`).

Example:

>>> report = clean_corpus(["raw/*.txt"], "clean.txt", CleaningConfig(keep_scripts=("latin",)))  # doctest: +SKIP
>>> report.removed  # doctest: +SKIP
Counter({'near_duplicate': 12, 'script': 7, 'exact_duplicate': 3})
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from tfptlm.data.cleaning_config import CleaningConfig
from tfptlm.data.cleaning_report import CleaningReport, Removal
from tfptlm.data.dedup import NearDuplicateIndex, dedup_key, shingle_kind, shingles
from tfptlm.data.text_cleaning import cleaning_steps
from tfptlm.data.unicode_scripts import count_words, script_shares
from tfptlm.text_files import expand_file_patterns, read_lines

__all__ = ["CleaningConfig", "CleaningReport", "CorpusCleaner", "Removal", "SourceDocument", "clean_corpus",
           "read_source_documents"]


@dataclass
class SourceDocument:
    """One document as read: its file and its non-blank ``(line number, text)`` lines."""

    file: str
    lines: list[tuple[int, str]]


class CorpusCleaner:
    """Cleans documents one at a time, remembering what it kept for deduplication.

    Example:

    >>> cleaner = CorpusCleaner(CleaningConfig(near_dedup=False), files=["a.txt"])
    >>> cleaner.clean(SourceDocument("a.txt", [(1, "<p>Hello</p>"), (2, "\\x00")]))
    ['Hello']
    >>> [(r.line, r.reason) for r in cleaner.report.removals]
    [(2, 'empty_after_cleaning')]
    """

    def __init__(
        self,
        config: CleaningConfig,
        files: Sequence[str] = (),
        on_removal: Callable[[Removal], None] | None = None,
    ) -> None:
        self.config = config
        self.report = CleaningReport(files=list(files), config=dataclasses.asdict(config))
        self._on_removal = on_removal
        self._steps = cleaning_steps(config.normalization, config.remove_control, config.remove_markup,
                                     config.remove_urls)
        self._kept: list[dict] = []  # index -> {"file", "line"} of each kept document
        self._hashes: dict[bytes, int] = {}
        self._index = (NearDuplicateIndex(config.threshold, config.num_perm, config.seed)
                       if config.near_dedup else None)
        self._groups: dict[str, set[int]] = {"exact_duplicate": set(), "near_duplicate": set()}

    def clean(self, document: SourceDocument) -> list[str] | None:
        """The cleaned lines of ``document``, or ``None`` when it is removed (the reason is recorded)."""
        report = self.report
        report.documents_in += 1
        report.lines_in += len(document.lines)
        report.characters_in += sum(len(text) for _, text in document.lines)
        lines = [(number, original, self._repair(original)) for number, original in document.lines]
        kept = [(number, original, text) for number, original, text in lines
                if not self._line_removed(document.file, number, original, text)]
        if not kept:
            report.documents_emptied += 1
            return None
        texts = [text for _, _, text in kept]
        original = "\n".join(o for _, o, _ in kept)
        reason, detail, duplicate, similarity = self._document_verdict(texts)
        if reason:
            duplicate_of = self._kept[duplicate] if duplicate is not None else None
            self._remove(Removal(document.file, kept[0][0], "document", reason, original, detail,
                                 duplicate_of, similarity))
            if duplicate is not None:
                self._groups[reason].add(duplicate)
            return None
        self._kept.append({"file": document.file, "line": kept[0][0]})
        report.documents_out += 1
        report.lines_out += len(texts)
        report.characters_out += sum(map(len, texts))
        return texts

    def finish(self) -> CleaningReport:
        """The report, with the duplicate group counts filled in."""
        self.report.exact_duplicate_groups = len(self._groups["exact_duplicate"])
        self.report.near_duplicate_clusters = len(self._groups["near_duplicate"])
        return self.report

    def _repair(self, text: str) -> str:
        for name, step in self._steps:
            repaired = step(text)
            if repaired != text:
                self.report.lines_changed[name] += 1
                text = repaired
        return text

    def _remove(self, removal: Removal) -> None:
        self.report.add(removal)
        if self._on_removal:
            self._on_removal(removal)

    def _line_removed(self, file: str, number: int, original: str, text: str) -> bool:
        config = self.config
        reason, detail = None, ""
        if not text:
            reason = "empty_after_cleaning"
        elif config.keep_scripts and config.script_unit == "line" and not self._script_ok(text):
            reason, detail = "script", self._script_detail(text)
        else:
            reason, detail = _length_verdict([text], "line", config)
        if reason:
            self._remove(Removal(file, number, "line", reason, original, detail))
        return reason is not None

    def _document_verdict(self, texts: list[str]) -> tuple[str | None, str, int | None, float | None]:
        """``(reason, detail, index of the kept duplicate, similarity)``; registers a kept document."""
        config = self.config
        reason, detail = _length_verdict(texts, "doc", config)
        if reason:
            return reason, detail, None, None
        joined = " ".join(texts)
        if config.keep_scripts and config.script_unit == "document" and not self._script_ok(joined):
            return "script", self._script_detail(joined), None, None
        key = dedup_key(joined) if config.exact_dedup else None
        if key in self._hashes:
            return "exact_duplicate", "case and whitespace ignored", self._hashes[key], None
        if self._index is not None:
            kind = shingle_kind(joined, config.shingle)
            n = config.char_ngram if kind == "char" else config.word_ngram
            match = self._index.match_or_add(len(self._kept), shingles(joined, kind, n))
            if match:
                return "near_duplicate", f"{kind} {n}-gram shingles", match[0], round(match[1], 4)
        if key is not None:
            self._hashes[key] = len(self._kept)
        return None, "", None, None

    def _script_ok(self, text: str) -> bool:
        shares = script_shares(text)
        return not shares or sum(shares.get(s, 0.0) for s in self.config.keep_scripts) >= self.config.min_script_share

    def _script_detail(self, text: str) -> str:
        shares = script_shares(text)
        kept = sum(shares.get(s, 0.0) for s in self.config.keep_scripts)
        main = max(shares, key=shares.get)
        return f"{kept:.0%} of letters in {'/'.join(self.config.keep_scripts)} (mostly {main})"


def _length_verdict(lines: list[str], unit: str, config: CleaningConfig) -> tuple[str | None, str]:
    """``(reason, detail)`` when ``lines`` break a length limit of ``unit`` ("line" or "doc")."""
    name = "line" if unit == "line" else "document"
    for measure, size in (("chars", len), ("words", count_words)):
        low, high = getattr(config, f"min_{unit}_{measure}"), getattr(config, f"max_{unit}_{measure}")
        if low is None and high is None:
            continue
        value = sum(map(size, lines))
        if low is not None and value < low:
            return f"{name}_too_short", f"{value} {measure} < min_{unit}_{measure} {low}"
        if high is not None and value > high:
            return f"{name}_too_long", f"{value} {measure} > max_{unit}_{measure} {high}"
    return None, ""


def read_source_documents(path: str, one_document_per_line: bool = False) -> Iterator[SourceDocument]:
    """The documents of one corpus file, with their line numbers (blank lines separate documents).

    Reads with :func:`tfptlm.text_files.read_lines`, so invalid UTF-8 raises
    ``ValueError`` naming the file and line.

    Example:

    >>> next(read_source_documents("corpus.txt"))  # doctest: +SKIP
    SourceDocument(file='corpus.txt', lines=[(1, 'First sentence.'), (2, 'Second.')])
    """
    lines: list[tuple[int, str]] = []
    for number, text in enumerate(read_lines(path), start=1):
        if text:
            lines.append((number, text))
        if lines and (one_document_per_line or not text):
            yield SourceDocument(path, lines)
            lines = []
    if lines:
        yield SourceDocument(path, lines)


def clean_corpus(
    patterns: str | Sequence[str],
    output: str | os.PathLike,
    config: CleaningConfig | None = None,
    report_path: str | os.PathLike | None = None,
    removed_path: str | os.PathLike | None = None,
    show_progress: bool = True,
) -> CleaningReport:
    """Cleans the corpus files matching ``patterns`` into ``output`` (same format).

    Args:
        patterns: file paths or glob patterns.
        output: the cleaned corpus (written only when the whole input was read).
        config: the cleaning steps and their settings (default: :class:`CleaningConfig`).
        report_path: write the report JSON here (counts, removals per reason, every removal).
        removed_path: write every removed unit as a JSON line with its original text here.
        show_progress: show a tqdm progress bar over the bytes read.

    Raises:
        FileNotFoundError: a pattern matches nothing.
        ValueError: invalid UTF-8 (names the file and line), or ``output`` is one of the inputs.

    Example:

    >>> report = clean_corpus("raw.txt", "clean.txt", removed_path="removed.jsonl")  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
    Documents: 1,000 in, 950 out; ...
    """
    import tqdm

    config = config or CleaningConfig()
    files = expand_file_patterns(patterns)
    targets = [os.fspath(p) for p in (output, report_path, removed_path) if p is not None]
    for target in targets:
        if any(os.path.exists(target) and os.path.samefile(target, f) for f in files):
            raise ValueError(f"{target} is also an input file; write the cleaned corpus somewhere else")
    started = time.perf_counter()
    removed_file = open(f"{removed_path}.partial", "w", encoding="utf-8") if removed_path else None
    output_partial = f"{os.fspath(output)}.partial"
    try:
        cleaner = CorpusCleaner(config, files, on_removal=removed_file and (
            lambda r: removed_file.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")))
        progress = tqdm.tqdm(total=sum(os.path.getsize(f) for f in files), unit="B", unit_scale=True,
                             desc="Cleaning", disable=not show_progress)
        with progress, open(output_partial, "w", encoding="utf-8") as out:
            written = 0
            for path in files:
                done = progress.n
                for document in read_source_documents(path, config.one_document_per_line):
                    progress.update(sum(len(t.encode("utf-8")) + 1 for _, t in document.lines))
                    lines = cleaner.clean(document)
                    if lines is None:
                        continue
                    if config.one_document_per_line:
                        out.write(" ".join(lines) + "\n")
                    else:
                        out.write(("\n" if written else "") + "\n".join(lines) + "\n")
                    written += 1
                progress.update(done + os.path.getsize(path) - progress.n)  # blank lines, stripped spaces
    except BaseException:
        for partial in (output_partial, f"{removed_path}.partial" if removed_path else None):
            if partial and os.path.exists(partial):
                os.remove(partial)
        raise
    finally:
        if removed_file:
            removed_file.close()
    os.replace(output_partial, output)
    if removed_path:
        os.replace(f"{removed_path}.partial", removed_path)
    report = cleaner.finish()
    report.seconds = time.perf_counter() - started
    if report_path:
        with open(report_path, "w", encoding="utf-8") as f:
            json.dump(report.to_dict(), f, indent=2, ensure_ascii=False)
            f.write("\n")
    return report
