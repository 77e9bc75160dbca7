"""The settings of corpus cleaning (``tfptlm clean``), validated when created.

Example:

>>> CleaningConfig(keep_scripts=("Latin", "han")).keep_scripts
('latin', 'han')
>>> CleaningConfig(threshold=1.5)
Traceback (most recent call last):
ValueError: threshold (--threshold) must be in (0, 1], got 1.5
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tfptlm.data.dedup import SHINGLE_KINDS
from tfptlm.data.text_cleaning import NORMALIZATIONS
from tfptlm.data.unicode_scripts import check_script_names

_LENGTH_LIMITS = ("line_chars", "line_words", "doc_chars", "doc_words")


@dataclass
class CleaningConfig:
    """What ``tfptlm clean`` does, step by step (see :mod:`tfptlm.data.cleaning`).

    Valued fields have the same-named CLI option (``min_doc_words`` ->
    ``--min-doc-words``); the switches are turned off by ``--keep-control``,
    ``--keep-markup``, ``--no-exact-dedup`` and ``--no-near-dedup``, on by
    ``--remove-urls`` and ``--one-document-per-line``. Length limits are off
    (``None``) unless set; a Han or kana character counts as one word.

    Example:

    >>> CleaningConfig(keep_scripts=("latin", "han"), min_doc_words=20).threshold
    0.8
    """

    one_document_per_line: bool = False
    #: ``"NFKC"`` (folds full-width forms and ligatures), ``"NFC"`` or ``"none"``.
    normalization: str = "NFKC"
    remove_control: bool = True
    remove_markup: bool = True
    remove_urls: bool = False
    #: Scripts to keep (names in :data:`tfptlm.data.unicode_scripts.SCRIPTS`); empty: no script filter.
    keep_scripts: tuple[str, ...] = ()
    #: A unit passes when at least this share of its letters is in ``keep_scripts``
    #: (units without letters pass).
    min_script_share: float = 0.5
    script_unit: str = "line"
    min_line_chars: int | None = None
    max_line_chars: int | None = None
    min_line_words: int | None = None
    max_line_words: int | None = None
    min_doc_chars: int | None = None
    max_doc_chars: int | None = None
    min_doc_words: int | None = None
    max_doc_words: int | None = None
    exact_dedup: bool = True
    near_dedup: bool = True
    #: ``"word"`` n-grams, ``"char"`` n-grams (Chinese, Japanese) or ``"auto"`` (per document).
    shingle: str = "auto"
    word_ngram: int = 5
    char_ngram: int = 5
    #: Estimated Jaccard similarity at or above which a document is a near duplicate.
    threshold: float = 0.8
    num_perm: int = 128
    seed: int = 1

    def __post_init__(self) -> None:
        self.keep_scripts = check_script_names(self.keep_scripts)
        _check_choice("normalization", self.normalization, NORMALIZATIONS)
        _check_choice("script_unit", self.script_unit, ("line", "document"))
        _check_choice("shingle", self.shingle, SHINGLE_KINDS)
        if not 0 < self.min_script_share <= 1:
            raise ValueError(_bad("min_script_share", self.min_script_share, "must be in (0, 1]"))
        if not 0 < self.threshold <= 1:
            raise ValueError(_bad("threshold", self.threshold, "must be in (0, 1]"))
        for name in ("word_ngram", "char_ngram", "num_perm"):
            if getattr(self, name) < 1:
                raise ValueError(_bad(name, getattr(self, name), "must be at least 1"))
        for limit in _LENGTH_LIMITS:
            low, high = getattr(self, f"min_{limit}"), getattr(self, f"max_{limit}")
            for name, value in ((f"min_{limit}", low), (f"max_{limit}", high)):
                if value is not None and value < 0:
                    raise ValueError(_bad(name, value, "must not be negative"))
            if low is not None and high is not None and low > high:
                raise ValueError(_bad(f"min_{limit}", low, f"is above max_{limit} = {high}"))


def _bad(name: str, value, problem: str) -> str:
    return f"{name} (--{name.replace('_', '-')}) {problem}, got {value!r}"


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(_bad(name, value, f"must be one of {', '.join(choices)}"))
