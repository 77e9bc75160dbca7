"""Template probe of a masked language model: which identity terms does it expect at ``[MASK]``?

For each template of a terms file (``[templates]`` section, see
`tfptlm.analysis.identity_terms`), every term of the chosen row (one per
category: "he", "she") is scored at the template's ``[MASK]``. A term of
several word pieces gets as many mask tokens, and its log-probability is
the sum of its pieces' log-probabilities. The report gives per template the
log-probability of each term, the probabilities normalized within the row
(they sum to 1) and the log-probability ratio ``a/b`` between categories
(log P(a) - log P(b); 0 = no preference), and per group the means over its
templates.

Example:

>>> pretrainer, tokenizer = load_mlm("runs/bert_pretrain")                   # doctest: +SKIP
>>> template_probe(pretrainer, tokenizer, load_terms("en"))["groups"]["gender"]  # doctest: +SKIP
{'templates': 7, 'mean_probability': {...}, 'mean_log_ratio': {'male/female': 0.41}}
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import keras
import numpy as np

from tfptlm.analysis.identity_terms import MASK, IdentityTerms

PRETRAINER_FILE = "pretrainer.keras"


def load_mlm(model_dir: str | Path):
    """The pretrainer and tokenizer of a ``tfptlm pretrain`` output with a masked-LM objective."""
    from tfptlm.config import MLM_OBJECTIVES, load_config
    from tfptlm.finetuning.backbones import load_model_dir

    model_dir = Path(model_dir)
    config = load_config(model_dir / "config.yaml")
    if config.objective not in MLM_OBJECTIVES:
        raise ValueError(
            f"{model_dir} holds a {config.objective} pretraining run; the template probe needs a "
            f"masked LM ({', '.join(MLM_OBJECTIVES)})"
        )
    return load_model_dir(model_dir, PRETRAINER_FILE, "a `tfptlm pretrain` output directory holds both")


def _ids(tokenizer, text: str) -> list[int]:
    return keras.ops.convert_to_numpy(tokenizer.tokenize(text)).tolist() if text else []


def term_pieces(tokenizer, prefix: str, term: str) -> list[int]:
    """The ids of ``term`` as tokenized after ``prefix`` (so BPE/SentencePiece see the space)."""
    before, joined = _ids(tokenizer, prefix), _ids(tokenizer, prefix + term)
    if len(joined) > len(before) and joined[: len(before)] == before:
        return joined[len(before):]
    return _ids(tokenizer, term)


def term_log_probabilities(pretrainer, tokenizer, text: str, terms: list[str]) -> np.ndarray:
    """log P(term at the ``[MASK]`` of ``text``) for each term (summed over its pieces)."""
    prefix, suffix = text.split(MASK)
    before, after = _ids(tokenizer, prefix), _ids(tokenizer, suffix)
    pieces = [term_pieces(tokenizer, prefix, term) for term in terms]
    rows = [
        [tokenizer.cls_id, *before, *[tokenizer.mask_id] * len(p), *after, tokenizer.sep_id] for p in pieces
    ]
    length, width = max(map(len, rows)), max(map(len, pieces))
    token_ids = np.full((len(rows), length), tokenizer.pad_id, "int32")
    padding_mask = np.zeros((len(rows), length), "int32")
    positions = np.zeros((len(rows), width), "int32")
    for i, (row, piece) in enumerate(zip(rows, pieces)):
        token_ids[i, : len(row)], padding_mask[i, : len(row)] = row, 1
        positions[i, : len(piece)] = np.arange(len(piece)) + 1 + len(before)
    logits = pretrainer(
        {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids), "padding_mask": padding_mask,
         "mask_positions": positions},
        training=False,
    )["mlm"]
    log_probs = keras.ops.convert_to_numpy(keras.ops.log_softmax(keras.ops.cast(logits, "float32"), axis=-1))
    return np.array([sum(log_probs[i, j, t] for j, t in enumerate(p)) for i, p in enumerate(pieces)])


def template_probe(pretrainer, tokenizer, terms: IdentityTerms) -> dict:
    """The probe report (see the module docstring) for every template of ``terms``."""
    if not terms.templates:
        raise ValueError(f"{terms.source} has no [templates] section to probe a masked LM with")
    results = []
    for template in terms.templates:
        group = terms.group(template.group)
        words = list(group.rows[template.row])
        log_p = term_log_probabilities(pretrainer, tokenizer, template.text, words)
        normalized = np.exp(log_p - log_p.max())
        normalized /= normalized.sum()
        results.append({
            "group": group.name,
            "template": template.text,
            "terms": dict(zip(group.categories, words)),
            "log_probability": dict(zip(group.categories, map(float, log_p))),
            "probability": dict(zip(group.categories, map(float, normalized))),
            "log_ratio": {
                f"{a}/{b}": float(log_p[i] - log_p[j])
                for (i, a), (j, b) in combinations(enumerate(group.categories), 2)
            },
        })
    groups = {}
    for name in dict.fromkeys(r["group"] for r in results):
        mine = [r for r in results if r["group"] == name]
        groups[name] = {
            "templates": len(mine),
            "mean_probability": {c: float(np.mean([r["probability"][c] for r in mine])) for c in mine[0]["terms"]},
            "mean_log_ratio": {k: float(np.mean([r["log_ratio"][k] for r in mine])) for k in mine[0]["log_ratio"]},
        }
    return {"terms": terms.source, "kind": "mlm_template_probe", "templates": results, "groups": groups}
