"""Word-level substitutions with nearest neighbours in a model's own word-embedding space.

Candidates are whole-word vocabulary entries only: tokens made of letters
(WordPiece), or a word-start marker (``Ġ`` byte-level BPE, ``▁``
SentencePiece) followed by letters; special tokens, ``##`` pieces,
punctuation and numbers are never used. A word's neighbour is the other
entry with the highest cosine similarity of their embedding rows.

Example:

>>> neighbours = EmbeddingNeighbours.from_model(classifier, tokenizer)
>>> neighbours.nearest("good")                                     # doctest: +SKIP
'great'
>>> substitute_words("a good film", neighbours, count=1, rng=random.Random(0))  # doctest: +SKIP
'a great film'
"""

from __future__ import annotations

import random
import re

import numpy as np

from tfptlm.training.adversarial import word_embedding_table

#: Word-start markers of byte-level BPE and SentencePiece vocabularies.
WORD_START_MARKERS = ("Ġ", "▁")

#: English function words that are left alone by default (a short, common list).
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves s t don""".split()
)


def whole_word_entries(vocabulary: list[str], special_tokens: set[str] = frozenset()) -> dict[str, int]:
    """Maps each whole word of ``vocabulary`` (tokens in id order) to its id.

    Example:
        >>> whole_word_entries(["[PAD]", "good", "##ly", "Ġfilm", "film"])
        {'film': 3}
    """
    marked = any(token.startswith(WORD_START_MARKERS) for token in vocabulary)
    entries: dict[str, int] = {}
    for token_id, token in enumerate(vocabulary):
        if token in special_tokens:
            continue
        word = token
        if marked:
            if not token.startswith(WORD_START_MARKERS):
                continue
            word = token[1:]
        if word.isalpha():
            entries.setdefault(word, token_id)
    return entries


def tokenizer_vocabulary(tokenizer) -> list[str]:
    """A tokenizer's tokens in id order."""
    return [tokenizer.id_to_token(i) for i in range(tokenizer.vocabulary_size)]


class EmbeddingNeighbours:
    """Nearest whole-word neighbours by cosine similarity of embedding rows.

    Args:
        embeddings: ``[vocabulary, dim]`` word-embedding matrix.
        entries: whole word -> row (`whole_word_entries`).
        lowercase: look words up lowercased (an uncased vocabulary).
    """

    def __init__(self, embeddings: np.ndarray, entries: dict[str, int], lowercase: bool = True):
        if not entries:
            raise ValueError("the vocabulary has no whole-word entries to substitute")
        self.words = list(entries)
        self.index = {word: i for i, word in enumerate(self.words)}
        rows = np.asarray(embeddings, dtype="float32")[[entries[w] for w in self.words]]
        self.unit_rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        self.lowercase = lowercase
        self._cache: dict[str, str | None] = {}

    @classmethod
    def from_model(cls, model, tokenizer) -> "EmbeddingNeighbours":
        """Neighbours in a task model's word embeddings, over its tokenizer's whole words."""
        special = {tokenizer.id_to_token(i) for i in tokenizer.special_token_ids}
        entries = whole_word_entries(tokenizer_vocabulary(tokenizer), special)
        table = np.asarray(word_embedding_table(model))
        return cls(table, entries, lowercase=getattr(tokenizer, "lowercase", False))

    def key(self, word: str) -> str:
        """How ``word`` is looked up (lowercased for an uncased vocabulary)."""
        return word.lower() if self.lowercase else word

    def __contains__(self, word: str) -> bool:
        return self.key(word) in self.index

    def nearest(self, word: str) -> str | None:
        """The closest other whole word to ``word`` (None if ``word`` is not a whole-word entry)."""
        word = self.key(word)
        if word not in self._cache:
            row = self.index.get(word)
            if row is None:
                self._cache[word] = None
            else:
                similarity = self.unit_rows @ self.unit_rows[row]
                for candidate in np.argsort(-similarity)[:8]:
                    if self.words[candidate].lower() != word.lower():
                        self._cache[word] = self.words[candidate]
                        break
                else:
                    self._cache[word] = None
        return self._cache[word]


_WORD = re.compile(r"^(\W*)([^\W\d_]+)(\W*)$")


def substitute_words(
    text: str,
    neighbours: EmbeddingNeighbours,
    count: int,
    rng: random.Random,
    skip_stop_words: bool = True,
) -> str:
    """``text`` with ``count`` words (drawn by ``rng``) replaced by their nearest neighbour.

    Words are whitespace-separated; only words (with their punctuation around
    them) that are whole-word entries qualify, stop-words too unless
    ``skip_stop_words``. A capitalized word gets a capitalized neighbour.
    Fewer than ``count`` qualifying words: all of them are replaced.
    """
    chunks = re.split(r"(\s+)", text)
    candidates = []
    for index, chunk in enumerate(chunks):
        match = _WORD.match(chunk)
        if not match or (skip_stop_words and match.group(2).lower() in STOP_WORDS):
            continue
        if neighbours.nearest(match.group(2)) is not None:
            candidates.append(index)
    for index in sorted(rng.sample(candidates, min(count, len(candidates)))):
        before, word, after = _WORD.match(chunks[index]).groups()
        new = neighbours.nearest(word)
        if word[0].isupper():
            new = new[0].upper() + new[1:]
        chunks[index] = before + new + after
    return "".join(chunks)
