"""Which writing system (script) a letter belongs to, and word counts that treat CJK fairly.

Python's ``unicodedata`` has no script property, so the script is read from the
first word of the character's Unicode name (``LATIN SMALL LETTER A`` -> latin,
``CJK UNIFIED IDEOGRAPH-4E2D`` -> han, ``HIRAGANA LETTER A`` -> hiragana).
Letters of scripts not in :data:`SCRIPTS` count as ``"other"``.

Example:

>>> script_shares("Hello 世界")
{'latin': 0.7142857142857143, 'han': 0.2857142857142857}
>>> count_words("BERT 模型很好")
5
"""

from __future__ import annotations

import functools
import unicodedata
from collections import Counter

#: Script names understood by the script filter (``--keep-scripts``).
SCRIPTS = (
    "latin", "greek", "cyrillic", "armenian", "hebrew", "arabic", "syriac", "thaana", "devanagari",
    "bengali", "gurmukhi", "gujarati", "oriya", "tamil", "telugu", "kannada", "malayalam", "sinhala",
    "thai", "lao", "tibetan", "myanmar", "georgian", "hangul", "ethiopic", "khmer", "mongolian",
    "han", "hiragana", "katakana", "bopomofo",
)
_NAME_PREFIXES = {"cjk": "han", "ideographic": "han", "katakana-hiragana": "katakana", "fullwidth": None,
                  "halfwidth": None}
#: Scripts written without spaces between words: every letter counts as a word.
UNSPACED_SCRIPTS = frozenset({"han", "hiragana", "katakana"})


@functools.lru_cache(maxsize=65536)
def script_of(character: str) -> str | None:
    """The script of a letter (``"latin"``, ``"han"``, ... or ``"other"``); ``None`` for non-letters.

    Full-width and half-width forms take the script of the letter they stand for.

    Example:

    >>> script_of("a"), script_of("中"), script_of("ア"), script_of("7")
    ('latin', 'han', 'katakana', None)
    """
    if not unicodedata.category(character).startswith("L"):
        return None
    words = unicodedata.name(character, "").lower().split()
    if words and words[0] in _NAME_PREFIXES:
        mapped = _NAME_PREFIXES[words[0]]
        words = [mapped] if mapped else words[1:]
    return words[0] if words and words[0] in SCRIPTS else "other"


def script_shares(text: str) -> dict[str, float]:
    """The share of ``text``'s letters in each script (empty when it has no letters).

    Example:

    >>> script_shares("abc 123")
    {'latin': 1.0}
    """
    counts = Counter(script for script in map(script_of, text) if script is not None)
    total = sum(counts.values())
    return {script: count / total for script, count in counts.items()}


def count_words(text: str) -> int:
    """Whitespace-separated words, where each Han or kana letter counts as one word.

    Example:

    >>> count_words("Hello world"), count_words("今天很好"), count_words("I ♥ 北京")
    (2, 4, 4)
    """
    words = 0
    for token in text.split():
        in_run = False
        for character in token:
            if script_of(character) in UNSPACED_SCRIPTS:
                words += 1
                in_run = False
            elif not in_run:
                words += 1
                in_run = True
    return words


def check_script_names(names) -> tuple[str, ...]:
    """Lower-cased script names, or ``ValueError`` naming an unknown one and the known ones.

    Example:

    >>> check_script_names(["Latin", "han"])
    ('latin', 'han')
    """
    names = tuple(name.strip().lower() for name in names if name.strip())
    unknown = [name for name in names if name not in SCRIPTS]
    if unknown:
        raise ValueError(
            f"unknown script {unknown[0]!r} in keep_scripts (--keep-scripts); known scripts: {', '.join(SCRIPTS)}"
        )
    return names
