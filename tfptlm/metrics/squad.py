"""Extractive-QA metrics: the SQuAD v1.1 exact match and token F1, plus CJK text.

The definition is the official SQuAD v1.1 evaluation: answers are normalized
(lowercase, ASCII punctuation removed, English articles a/an/the removed,
whitespace collapsed), exact match compares the normalized strings, F1 counts
the tokens two answers share, and each question takes its best score over its
ground-truth answers. Scores here are fractions in 0..1 (the official script
prints percentages).

Extension for Chinese and Japanese, as MLQA scores Chinese: when a text holds
CJK characters, every CJK character is its own token and all Unicode
punctuation (category P: 。，、！？：；“”《》 ...) is removed too. Text without
CJK characters is scored exactly as by the official script.

Example:

>>> exact_match_score("The Denver Broncos", "Denver Broncos")
1.0
>>> round(f1_score("北京大学", "北京"), 4)
0.6667
>>> squad_metrics({"q1": "Denver Broncos"}, {"q1": ["Denver Broncos"], "q2": ["Paris"]})
{'exact_match': 0.5, 'f1': 0.5, 'questions': 2, 'unanswered': 1}
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from typing import Any, Mapping, Sequence

_ASCII_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")

# Characters that are each their own token: CJK ideographs and Japanese kana.
# (Hangul is written with spaces between words, so it is split on whitespace.)
_CJK_CHARACTER_RANGES = (
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK Unified Ideographs Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0x20000, 0x2A6DF),  # Extension B
    (0x2A700, 0x2EBEF),  # Extensions C-F
    (0x2F800, 0x2FA1F),  # Compatibility Ideographs Supplement
    (0x30000, 0x323AF),  # Extensions G-H
)
# CJK punctuation blocks: a text holding only these is CJK text too.
_CJK_PUNCTUATION_RANGES = (
    (0x3000, 0x303F),  # CJK Symbols and Punctuation
    (0xFE30, 0xFE4F),  # CJK Compatibility Forms
    (0xFF00, 0xFFEF),  # Halfwidth and Fullwidth Forms
)


def _in_ranges(character: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    code = ord(character)
    return any(low <= code <= high for low, high in ranges)


def _is_cjk_character(character: str) -> bool:
    return _in_ranges(character, _CJK_CHARACTER_RANGES)


def _is_cjk_text(text: str) -> bool:
    return any(
        _in_ranges(character, _CJK_CHARACTER_RANGES + _CJK_PUNCTUATION_RANGES)
        for character in text
    )


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalization; in CJK text also Unicode punctuation and char splitting.

    For CJK text every CJK character is surrounded by spaces, so the result
    splits into the F1 tokens and exact match ignores spacing between them:
    ``normalize_answer("《北京大学》") == "北 京 大 学"``.
    """
    text = text.lower()
    if _is_cjk_text(text):
        text = "".join(
            f" {character} " if _is_cjk_character(character) else character
            for character in text
            if character not in _ASCII_PUNCTUATION
            and not unicodedata.category(character).startswith("P")
        )
    else:
        text = "".join(character for character in text if character not in _ASCII_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match_score(prediction: str, ground_truth: str) -> float:
    """1.0 when both normalize to the same string, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def f1_score(prediction: str, ground_truth: str) -> float:
    """Harmonic mean of token precision and recall, tokens counted with multiplicity."""
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    shared = sum((Counter(prediction_tokens) & Counter(ground_truth_tokens)).values())
    if shared == 0:
        return 0.0
    precision = shared / len(prediction_tokens)
    recall = shared / len(ground_truth_tokens)
    return 2 * precision * recall / (precision + recall)


def _best_over_ground_truths(metric, prediction: str, ground_truths: Sequence[str]) -> float:
    return max(metric(prediction, ground_truth) for ground_truth in ground_truths)


def squad_metrics(
    predictions: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
) -> dict[str, Any]:
    """Mean exact match and F1 (0..1) over the questions in `references`.

    `references` maps each question id to its ground-truth answers. A question
    without a prediction scores 0 and is counted in "unanswered"; a prediction
    for an id that is not in `references` is an error.
    """
    unknown = [question_id for question_id in predictions if question_id not in references]
    if unknown:
        shown = ", ".join(repr(question_id) for question_id in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise ValueError(f"predictions for question ids not in the references: {shown}{more}")
    if not references:
        raise ValueError("no questions: references is empty")

    exact_match = f1 = 0.0
    unanswered = 0
    for question_id, ground_truths in references.items():
        if isinstance(ground_truths, str) or not ground_truths:
            raise ValueError(
                f"question {question_id!r}: references must be a non-empty list of answer "
                f"strings, got {ground_truths!r}"
            )
        if question_id not in predictions:
            unanswered += 1
            continue
        prediction = predictions[question_id]
        if not isinstance(prediction, str):
            raise ValueError(
                f"question {question_id!r}: the prediction must be a string, got {prediction!r}"
            )
        exact_match += _best_over_ground_truths(exact_match_score, prediction, ground_truths)
        f1 += _best_over_ground_truths(f1_score, prediction, ground_truths)
    questions = len(references)
    return {
        "exact_match": exact_match / questions,
        "f1": f1 / questions,
        "questions": questions,
        "unanswered": unanswered,
    }
