"""tfptlm.metrics: fine-tuning metrics as plain, JSON-ready dicts.

Thin wrappers over the ecosystem: scikit-learn for classification, seqeval
for named entities, the SQuAD v1.1 definition (with CJK tokens) for
extractive QA, sacrebleu and rouge-score (CJK-aware) for generated text, and
sandboxed execution of generated code against its tests. Fractions are in
0..1 everywhere.

Example:

>>> from tfptlm.metrics import classification_metrics, entity_metrics, squad_metrics
>>> classification_metrics([0, 1], [0, 0], label_names=["no", "yes"])["accuracy"]
0.5
>>> entity_metrics([["B-PER", "O"]], [["B-PER", "O"]], scheme="iob2")["entity_f1"]
1.0
>>> squad_metrics({"q1": "the Eiffel Tower"}, {"q1": ["Eiffel Tower"]})["exact_match"]
1.0
>>> bleu(["a cat sat on the mat"], ["a cat sat on the mat"])["bleu"]
1.0
>>> run_code_tests("def f(x):\\n    return 2 * x", ["assert f(2) == 4"]).passed
1
"""

from __future__ import annotations

from tfptlm.metrics.classification import classification_metrics, save_confusion_matrix_png
from tfptlm.metrics.code_execution import CodeResult, pass_share, run_code_tests
from tfptlm.metrics.generation import CJKAwareTokenizer, bleu, perplexity, rouge
from tfptlm.metrics.ner import entity_metrics
from tfptlm.metrics.squad import exact_match_score, f1_score, normalize_answer, squad_metrics

__all__ = [
    "CJKAwareTokenizer",
    "CodeResult",
    "bleu",
    "classification_metrics",
    "entity_metrics",
    "exact_match_score",
    "f1_score",
    "normalize_answer",
    "pass_share",
    "perplexity",
    "rouge",
    "run_code_tests",
    "save_confusion_matrix_png",
    "squad_metrics",
]
