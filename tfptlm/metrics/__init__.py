"""tfptlm.metrics: fine-tuning metrics as plain, JSON-ready dicts.

Thin wrappers over the ecosystem: scikit-learn for classification, seqeval
for named entities, and the SQuAD v1.1 definition (with CJK tokens) for
extractive QA. Fractions are in 0..1 everywhere.

Example:

>>> from tfptlm.metrics import classification_metrics, entity_metrics, squad_metrics
>>> classification_metrics([0, 1], [0, 0], label_names=["no", "yes"])["accuracy"]
0.5
>>> entity_metrics([["B-PER", "O"]], [["B-PER", "O"]], scheme="iob2")["entity_f1"]
1.0
>>> squad_metrics({"q1": "the Eiffel Tower"}, {"q1": ["Eiffel Tower"]})["exact_match"]
1.0
"""

from __future__ import annotations

from tfptlm.metrics.classification import classification_metrics, save_confusion_matrix_png
from tfptlm.metrics.ner import entity_metrics
from tfptlm.metrics.squad import exact_match_score, f1_score, normalize_answer, squad_metrics

__all__ = [
    "classification_metrics",
    "entity_metrics",
    "exact_match_score",
    "f1_score",
    "normalize_answer",
    "save_confusion_matrix_png",
    "squad_metrics",
]
