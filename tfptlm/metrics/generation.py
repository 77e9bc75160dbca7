"""Text-generation metrics: perplexity, BLEU (sacrebleu) and ROUGE (rouge-score).

Scores are fractions in 0..1 (sacrebleu prints BLEU in 0..100; here it is
divided by 100). Chinese and Japanese text needs its own tokenization:

* BLEU uses sacrebleu's ``zh`` tokenizer for Chinese (every CJK character is
  a token, the rest as ``13a``) and the standard ``13a`` tokenizer otherwise.
* ROUGE uses rouge-score's own tokenizer for English, which keeps only
  ``[a-z0-9]`` and so would drop every Chinese character. For other
  languages every CJK ideograph or kana is a token, other runs of letters and
  digits (any script) are words, punctuation is dropped, all lowercased.

With ``language=None`` the language is detected from the texts: ``"zh"``
when at least 10% of their letters and digits are CJK characters (mixed
Chinese-English text is tokenized well by the CJK rules), else ``"en"``.

Example:

>>> perplexity(math.log(100))
100.00000000000004
>>> bleu(["the cat sat on the mat"], ["the cat sat on the mat"])["bleu"]
1.0
>>> rouge(["北京大学"], ["北京"])["rouge1"]
0.6666666666666666
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from rouge_score import rouge_scorer, tokenizers
from sacrebleu.metrics import BLEU

from tfptlm.metrics.squad import _CJK_CHARACTER_RANGES, _is_cjk_character

_ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
_CJK_SHARE_FOR_CHINESE = 0.1
_CJK_CLASS = "".join(f"{chr(low)}-{chr(high)}" for low, high in _CJK_CHARACTER_RANGES)
# One CJK character, or a run of other letters/digits (``_`` is not a letter).
_CJK_AWARE_TOKEN = re.compile(f"[{_CJK_CLASS}]|[^\\W_{_CJK_CLASS}]+")
# exp(x) overflows a float above this.
_MAX_EXP_ARGUMENT = math.log(1.7976931348623157e308)

References = Sequence[str | Sequence[str]]


class CJKAwareTokenizer(tokenizers.Tokenizer):
    """rouge-score tokenizer: CJK characters one by one, other words whole, lowercased.

    Example:

    >>> CJKAwareTokenizer().tokenize("我用TensorFlow 2训练，Über!")
    ['我', '用', 'tensorflow', '2', '训', '练', 'über']
    """

    def tokenize(self, text: str) -> list[str]:
        return _CJK_AWARE_TOKEN.findall(text.lower())


def perplexity(mean_token_loss: float) -> float:
    """``exp`` of the mean per-token cross-entropy (natural log); ``inf`` on overflow.

    Example:

    >>> round(perplexity(math.log(50257)))
    50257
    """
    loss = float(mean_token_loss)
    if math.isnan(loss) or loss < 0:
        raise ValueError(f"mean_token_loss must be a cross-entropy >= 0, got {loss}")
    return math.inf if loss > _MAX_EXP_ARGUMENT else math.exp(loss)


def _texts(values: Sequence[str], name: str) -> list[str]:
    if isinstance(values, str):
        raise TypeError(f"{name} must be a sequence of strings, not one string")
    values = list(values)
    for position, value in enumerate(values):
        if not isinstance(value, str):
            raise TypeError(f"{name}[{position}] must be a string, got {value!r:.60}")
    return values


def _reference_lists(predictions: list[str], references: References) -> list[list[str]]:
    """One list of reference strings per prediction (a plain string is one reference)."""
    if isinstance(references, str):
        raise TypeError("references must be a sequence, one entry per prediction")
    references = list(references)
    if len(references) != len(predictions):
        raise ValueError(
            f"{len(predictions)} predictions but {len(references)} references; "
            "they must pair up"
        )
    if not predictions:
        raise ValueError("no examples: predictions and references are empty")
    lists = []
    for position, reference in enumerate(references):
        texts = [reference] if isinstance(reference, str) else list(reference)
        if not texts:
            raise ValueError(f"references[{position}] has no reference text")
        lists.append(_texts(texts, f"references[{position}]"))
    return lists


def _language(language: str | None, texts: list[str]) -> str:
    if language is not None:
        return language.lower()
    characters = [character for text in texts for character in text if character.isalnum()]
    cjk = sum(map(_is_cjk_character, characters))
    return "zh" if characters and cjk / len(characters) >= _CJK_SHARE_FOR_CHINESE else "en"


def bleu(
    predictions: Sequence[str],
    references: References,
    language: str | None = None,
) -> dict[str, Any]:
    """Corpus BLEU with sacrebleu, as a fraction, with its precisions and signature.

    Args:
        predictions: one generated text per example.
        references: per example, one reference string or a list of them.
        language: ``"zh"`` (sacrebleu ``zh`` tokenizer), any other code
            (``13a``), or None to detect Chinese from the texts.

    Returns:
        ``{"bleu", "precisions" (1- to 4-gram), "brevity_penalty", "signature"}``.

    Example:

    >>> scores = bleu(["今天天气很好"], ["今天天气很好"], language="zh")
    >>> scores["bleu"], scores["signature"].split("|")[3]
    (1.0, 'tok:zh')
    """
    predictions = _texts(predictions, "predictions")
    reference_lists = _reference_lists(predictions, references)
    language = _language(language, predictions + [r for refs in reference_lists for r in refs])
    # sacrebleu wants reference streams: stream k holds the k-th reference of
    # every example, None where an example has fewer.
    streams = max(map(len, reference_lists))
    reference_streams = [
        [refs[k] if k < len(refs) else None for refs in reference_lists] for k in range(streams)
    ]
    metric = BLEU(tokenize="zh" if language == "zh" else "13a")
    score = metric.corpus_score(predictions, reference_streams)
    return {
        "bleu": min(score.score / 100, 1.0),
        "precisions": [min(p / 100, 1.0) for p in score.precisions],
        "brevity_penalty": score.bp,
        "signature": str(metric.get_signature()),
    }


def rouge(
    predictions: Sequence[str],
    references: References,
    language: str | None = None,
) -> dict[str, Any]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measures (rouge-score), CJK-aware.

    With several references per example, each example takes its best score
    (rouge-score's ``score_multi``).

    Args:
        predictions: one generated text per example.
        references: per example, one reference string or a list of them.
        language: ``"en"`` (rouge-score's tokenizer), any other code (the
            CJK-aware tokenizer), or None to detect Chinese from the texts.

    Returns:
        ``{"rouge1", "rouge2", "rougeL", "language"}``.

    Example:

    >>> scores = rouge(["the cat sat"], ["the cat sat down"])
    >>> round(scores["rouge1"], 4), scores["language"]
    (0.8571, 'en')
    """
    predictions = _texts(predictions, "predictions")
    reference_lists = _reference_lists(predictions, references)
    language = _language(language, predictions + [r for refs in reference_lists for r in refs])
    scorer = rouge_scorer.RougeScorer(
        list(_ROUGE_TYPES), tokenizer=None if language == "en" else CJKAwareTokenizer()
    )
    totals = dict.fromkeys(_ROUGE_TYPES, 0.0)
    for prediction, refs in zip(predictions, reference_lists):
        scores = scorer.score_multi(refs, prediction)
        for rouge_type in _ROUGE_TYPES:
            totals[rouge_type] += scores[rouge_type].fmeasure
    result: dict[str, Any] = {name: total / len(predictions) for name, total in totals.items()}
    result["language"] = language
    return result
