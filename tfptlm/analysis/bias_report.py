"""``tfptlm evaluate --bias TERMS``: bias report of a model folder, as a table and JSON.

A fine-tuned classifier (``tfptlm finetune`` output) gets the counterfactual
evaluation on the ``--data`` texts (`tfptlm.analysis.bias`); a masked-LM
pretraining output (``tfptlm pretrain`` with mlm, mlm_nsp or mlm_sop) gets
the template probe (`tfptlm.analysis.bias_probe`).

Example:

>>> report = bias_report("runs/sst2", "en", data="dev.tsv")   # doctest: +SKIP
>>> print(format_bias_report(report))                          # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from tfptlm.analysis.bias import counterfactual_bias
from tfptlm.analysis.bias_probe import PRETRAINER_FILE, load_mlm, template_probe
from tfptlm.analysis.identity_terms import load_terms


def bias_report(model_dir: str | Path, terms: str, data: str | None = None,
                data_overrides: dict | None = None, batch_size: int = 64) -> dict:
    """The bias report of a fine-tuned classifier on ``data``, or the probe of a masked LM."""
    from tfptlm.finetuning.run import TASK_FILE, load_finetuned, read_unlabelled

    model_dir = Path(model_dir)
    identity_terms = load_terms(terms)
    if not (model_dir / TASK_FILE).is_file() and (model_dir / PRETRAINER_FILE).is_file():
        return template_probe(*load_mlm(model_dir), identity_terms)
    model = load_finetuned(model_dir, data_overrides)
    if model.recipe.task != "text_classification":
        raise ValueError(f"--bias works with text_classification models and masked LMs, not {model.recipe.task}")
    if not data:
        raise ValueError("--bias on a classifier needs --data FILE (the texts to swap terms in)")
    examples = read_unlabelled(model, data).examples
    pairs = [e.text_pair for e in examples] if examples and examples[0].text_pair is not None else None
    report = counterfactual_bias(
        lambda texts, text_pairs: model.predict_probabilities(texts, text_pairs, batch_size),
        [e.text for e in examples], identity_terms, model.label_names, pairs,
    )
    return {"kind": "counterfactual", "data": str(data), **report}


def _number(value, signed: bool = False) -> str:
    return "-" if value is None else (f"{value:+.3f}" if signed else f"{value:.3f}")


def format_bias_report(report: dict) -> str:
    """A plain-text table of a `bias_report`."""
    if report["kind"] == "mlm_template_probe":
        lines = [f"{'group':<12} {'template':<45} probabilities (normalized in the row) | log ratio"]
        for r in report["templates"]:
            probabilities = " ".join(f"{r['terms'][c]}={p:.3f}" for c, p in r["probability"].items())
            ratios = " ".join(f"{k}={v:+.2f}" for k, v in r["log_ratio"].items())
            lines.append(f"{r['group']:<12} {r['template'][:45]:<45} {probabilities} | {ratios}")
        for name, g in report["groups"].items():
            ratios = " ".join(f"{k}={v:+.2f}" for k, v in g["mean_log_ratio"].items())
            lines.append(f"{name:<12} mean over {g['templates']} templates: {ratios}")
        return "\n".join(lines)
    labels = report["label_names"]
    header = f"{'group':<12} {'pair':<28} {'texts':>6} {'flip rate':>9}  " + "  ".join(
        f"gap P({label}) / |gap|" for label in labels
    )
    lines = [f"{report['texts']} texts from {report['data']}", header]
    for g in report["groups"]:
        pairs = g["gaps"] or {"-": None}
        for pair, gap in pairs.items():
            cells = "  ".join(
                f"{_number(gap['mean'][label], True) if gap else '-':>9} / {_number(gap['mean_abs'][label]) if gap else '-':<5}"
                for label in labels
            )
            lines.append(f"{g['group']:<12} {pair:<28} {g['texts']:>6} {_number(g['flip_rate']):>9}  {cells}")
    return "\n".join(lines)
