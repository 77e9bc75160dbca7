"""Character-level noise: keyboard typos, adjacent swaps, deletions and insertions.

Words are the text's whitespace-separated chunks; spacing and punctuation are
kept. A word with at least two ASCII letters is perturbed with probability
``rate``, at one of its letters drawn at random (other scripts, e.g. Chinese,
are left alone). Every draw comes from one ``random.Random``, so a seed gives
the same noise every time:

- ``typo``: a letter becomes one of its QWERTY keyboard neighbours;
- ``swap``: two adjacent, different letters trade places;
- ``delete``: a letter is dropped;
- ``insert``: a keyboard neighbour of a letter is typed right after it.

The case of a replaced letter is kept.

Example:

>>> add_character_noise("a charming journey", "swap", rate=1.0, seed=0)
'a charmign ojurney'
"""

from __future__ import annotations

import random
import re

#: The noise kinds of `add_character_noise`.
CHARACTER_NOISE = ("typo", "swap", "delete", "insert")

#: The keys around each letter on a QWERTY keyboard (same row and the rows above/below).
KEYBOARD_NEIGHBOURS = {
    "q": "wa", "w": "qeas", "e": "wrsd", "r": "etdf", "t": "ryfg", "y": "tugh", "u": "yihj",
    "i": "uojk", "o": "ipkl", "p": "ol", "a": "qwsz", "s": "awedxz", "d": "serfcx",
    "f": "drtgvc", "g": "ftyhbv", "h": "gyujnb", "j": "huikmn", "k": "jiolm", "l": "kop",
    "z": "asx", "x": "zsdc", "c": "xdfv", "v": "cfgb", "b": "vghn", "n": "bhjm", "m": "njk",
}


def _neighbour(letter: str, rng: random.Random) -> str:
    key = rng.choice(KEYBOARD_NEIGHBOURS[letter.lower()])
    return key.upper() if letter.isupper() else key


def _letters(word: str) -> list[int]:
    return [i for i, c in enumerate(word) if c.isascii() and c.isalpha()]


def perturb_word(word: str, kind: str, rng: random.Random) -> str:
    """``word`` with one ``kind`` of error at a letter drawn by ``rng`` (unchanged under 2 letters).

    Example:
        >>> perturb_word("film", "delete", random.Random(1))
        'flm'
    """
    letters = _letters(word)
    if len(letters) < 2:
        return word
    if kind == "swap":
        pairs = [i for i in letters if i + 1 < len(word) and i + 1 in letters and word[i] != word[i + 1]]
        if not pairs:
            return word
        i = rng.choice(pairs)
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    i = rng.choice(letters)
    if kind == "typo":
        return word[:i] + _neighbour(word[i], rng) + word[i + 1:]
    if kind == "delete":
        return word[:i] + word[i + 1:]
    if kind == "insert":
        return word[: i + 1] + _neighbour(word[i], rng) + word[i + 1:]
    raise ValueError(f"unknown character noise {kind!r}; choose one of {', '.join(CHARACTER_NOISE)}")


def add_character_noise(text: str, kind: str, rate: float, seed: int | random.Random = 0) -> str:
    """``text`` with each word of 2+ letters perturbed (``kind``) with probability ``rate``.

    ``seed`` is an int or a ``random.Random`` to draw from (pass one generator
    to noise many texts in turn). Rate 0 returns ``text`` unchanged.
    """
    if kind not in CHARACTER_NOISE:
        raise ValueError(f"unknown character noise {kind!r}; choose one of {', '.join(CHARACTER_NOISE)}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"the noise rate is a share of words in [0, 1], got {rate}")
    rng = seed if isinstance(seed, random.Random) else random.Random(seed)
    chunks = re.split(r"(\s+)", text)
    for index, chunk in enumerate(chunks):
        if len(_letters(chunk)) >= 2 and rng.random() < rate:
            chunks[index] = perturb_word(chunk, kind, rng)
    return "".join(chunks)
