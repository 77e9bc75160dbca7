"""Entity-level NER metrics with seqeval, for IOB1, IOB2 and BMES tags.

An entity counts as found only when its type and its exact token span match.
IOB1 and IOB2 are scored in seqeval's default mode, which is compatible with
CoNLL's ``conlleval`` script and reads both schemes. BMES is scored strictly:
``M-`` is read as ``I-`` and seqeval's IOBES scheme decides which spans are
entities (``B- M-* E-`` or ``S-``; an entity without its end is not one).

Example:

>>> metrics = entity_metrics([["B-PER", "I-PER", "O", "B-LOC"]],
...                          [["B-PER", "I-PER", "O", "B-ORG"]], scheme="iob2")
>>> metrics["entity_f1"], metrics["token_accuracy"]
(0.5, 0.75)
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

from seqeval.metrics import (
    accuracy_score,
    classification_report,
    f1_score,
    precision_score,
    recall_score,
)
from seqeval.scheme import IOBES

SCHEMES = ("iob1", "iob2", "bmes")
_PREFIXES = {"iob1": "BI", "iob2": "BI", "bmes": "BMIES"}
_AVERAGE_ROWS = ("micro avg", "macro avg", "weighted avg")


def _check_tags(
    true_tags: Sequence[Sequence[str]],
    predicted_tags: Sequence[Sequence[str]],
    scheme: str,
) -> None:
    """Raises ValueError naming the sentence (and token) that cannot be scored."""
    if len(true_tags) != len(predicted_tags):
        raise ValueError(
            f"{len(true_tags)} true sentences but {len(predicted_tags)} predicted ones"
        )
    if not true_tags:
        raise ValueError("no sentences to score")
    prefixes = _PREFIXES[scheme]
    for index, (true_sentence, predicted_sentence) in enumerate(zip(true_tags, predicted_tags)):
        if len(true_sentence) != len(predicted_sentence):
            raise ValueError(
                f"sentence {index}: {len(true_sentence)} true tags but "
                f"{len(predicted_sentence)} predicted tags"
            )
        for kind, sentence in (("true", true_sentence), ("predicted", predicted_sentence)):
            for position, tag in enumerate(sentence):
                valid = isinstance(tag, str) and (
                    tag == "O" or (len(tag) > 2 and tag[0] in prefixes and tag[1] == "-")
                )
                if not valid:
                    raise ValueError(
                        f"sentence {index}, token {position}: {kind} tag {tag!r} is not a "
                        f"{scheme.upper()} tag (expected 'O' or one of "
                        f"{', '.join(p + '-TYPE' for p in prefixes)})"
                    )
    if not any(true_tags):
        raise ValueError("no tokens to score: every sentence is empty")


def entity_metrics(
    true_tags: list[list[str]],
    predicted_tags: list[list[str]],
    scheme: str,
) -> dict[str, Any]:
    """Micro entity precision/recall/F1, token accuracy and per-type scores.

    `scheme` is "iob1", "iob2" or "bmes". Scores are 0 where undefined (for
    example no entity predicted at all).
    """
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tagging scheme {scheme!r}; expected one of {SCHEMES}")
    true_tags = [list(sentence) for sentence in true_tags]
    predicted_tags = [list(sentence) for sentence in predicted_tags]
    _check_tags(true_tags, predicted_tags, scheme)

    options: dict[str, Any] = {"zero_division": 0}
    if scheme == "bmes":
        true_tags = [_bmes_to_iobes(sentence) for sentence in true_tags]
        predicted_tags = [_bmes_to_iobes(sentence) for sentence in predicted_tags]
        options.update(mode="strict", scheme=IOBES)

    with warnings.catch_warnings():
        # With no entity anywhere seqeval averages an empty array (numpy warns);
        # those average rows are dropped below anyway.
        warnings.simplefilter("ignore", RuntimeWarning)
        report = classification_report(true_tags, predicted_tags, output_dict=True, **options)
    per_type = {
        entity_type: {
            "precision": float(row["precision"]),
            "recall": float(row["recall"]),
            "f1": float(row["f1-score"]),
            "support": int(row["support"]),
        }
        for entity_type, row in report.items()
        if entity_type not in _AVERAGE_ROWS
    }
    return {
        "entity_precision": float(precision_score(true_tags, predicted_tags, **options)),
        "entity_recall": float(recall_score(true_tags, predicted_tags, **options)),
        "entity_f1": float(f1_score(true_tags, predicted_tags, **options)),
        "token_accuracy": float(accuracy_score(true_tags, predicted_tags)),
        "per_type": per_type,
        "sentences": len(true_tags),
    }


def _bmes_to_iobes(sentence: list[str]) -> list[str]:
    """BMES tags with seqeval's IOBES prefixes: ``M-X`` becomes ``I-X``."""
    return ["I" + tag[1:] if tag.startswith("M-") else tag for tag in sentence]
