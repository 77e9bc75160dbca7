"""What corpus cleaning removed and why: one :class:`Removal` per unit, a :class:`CleaningReport` in all.

Example:

>>> report = CleaningReport(files=["a.txt"], config={}, documents_in=2, documents_out=1)
>>> report.add(Removal("a.txt", 4, "document", "exact_duplicate", "Hi.", duplicate_of={"file": "a.txt", "line": 1}))
>>> report.to_dict()["removed"], report.to_dict()["removals"][0]["duplicate_of"]
({'exact_duplicate': 1}, {'file': 'a.txt', 'line': 1})
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field

@dataclass
class Removal:
    """A removed line or document: where it was, why, and what it duplicates.

    ``line`` is 1-based (a document's first line). ``duplicate_of`` is
    ``{"file", "line"}`` of the kept document, for exact and near duplicates;
    ``similarity`` is the estimated Jaccard similarity of a near duplicate.
    ``text`` is the original text (lines joined by newlines).
    """

    file: str
    line: int
    unit: str
    reason: str
    text: str
    detail: str = ""
    duplicate_of: dict | None = None
    similarity: float | None = None

    def to_dict(self, with_text: bool = True) -> dict:
        """The non-empty fields as a JSON-ready dict."""
        fields = {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, "")}
        if not with_text:
            fields.pop("text", None)
        return fields


@dataclass
class CleaningReport:
    """Counts in and out, what each repair changed, and every removal with its reason."""

    files: list[str]
    config: dict
    documents_in: int = 0
    documents_out: int = 0
    lines_in: int = 0
    lines_out: int = 0
    characters_in: int = 0
    characters_out: int = 0
    #: Documents that lost all their lines to the line filters (their lines are in ``removals``).
    documents_emptied: int = 0
    #: Lines changed by each repair step (a line can be changed by several).
    lines_changed: Counter = field(default_factory=Counter)
    #: Removed units per reason.
    removed: Counter = field(default_factory=Counter)
    #: Kept documents that had at least one near duplicate removed (one cluster each).
    near_duplicate_clusters: int = 0
    #: Kept documents that had at least one exact duplicate removed.
    exact_duplicate_groups: int = 0
    removals: list[Removal] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, removal: Removal) -> None:
        """Records one removed unit."""
        self.removed[removal.reason] += 1
        self.removals.append(removal)

    def to_dict(self) -> dict:
        """The report as JSON-ready data (removals without their text)."""
        data = {k: v for k, v in dataclasses.asdict(self).items() if k != "removals"}
        data["removed"] = dict(self.removed.most_common())
        data["lines_changed"] = dict(self.lines_changed)
        data["documents_per_second"] = round(self.documents_in / self.seconds, 1) if self.seconds else None
        data["removals"] = [r.to_dict(with_text=False) for r in self.removals]
        return data

    def summary(self) -> str:
        """A few lines for people: counts in and out, and removals per reason."""
        rows = [
            f"Documents: {self.documents_in:,} in, {self.documents_out:,} out; lines: {self.lines_in:,} in, "
            f"{self.lines_out:,} out; characters: {self.characters_in:,} in, {self.characters_out:,} out",
        ]
        if self.removed:
            rows.append("Removed: " + ", ".join(f"{reason} {n:,}" for reason, n in self.removed.most_common()))
        if self.documents_emptied:
            rows.append(f"Documents emptied by the line filters: {self.documents_emptied:,}")
        if self.near_duplicate_clusters or self.exact_duplicate_groups:
            rows.append(
                f"Duplicate groups: {self.exact_duplicate_groups:,} exact, {self.near_duplicate_clusters:,} near"
            )
        if self.lines_changed:
            rows.append("Lines changed: " + ", ".join(f"{k} {n:,}" for k, n in self.lines_changed.items() if n))
        rows.append(f"Time: {self.seconds:.1f}s ({self.documents_in / max(self.seconds, 1e-9):,.0f} documents/s)")
        return "\n".join(rows)
