"""``tfptlm explain``: explain a fine-tuned classifier's prediction into JSON, PNG heatmaps and one HTML page.

Writes to the output folder:

- ``explanation.json``: the numbers (`Explanation.to_json`),
- ``attention_layer_<n>.png``: one grid of heads per layer,
- ``explanation.html``: the self-contained page (the heatmaps embedded).

Example:

>>> explanation, paths = explain_model_dir("runs/sst2", "a gripping film", output_dir="explanations")
>>> print(format_explanation(explanation))                          # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

from tfptlm.analysis.attention_figures import attention_png
from tfptlm.analysis.explanation import Explanation, explain
from tfptlm.analysis.explanation_html import explanation_html
from tfptlm.finetuning.run import load_finetuned

#: Completeness errors above this share of |score - baseline score| (plus 1e-3) get a hint.
LOOSE_COMPLETENESS = 0.05


def write_explanation(explanation: Explanation, output_dir: str | Path) -> list[Path]:
    """Writes the JSON, the PNG heatmaps and the HTML page; returns their paths."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    data = output_dir / "explanation.json"
    data.write_text(json.dumps(explanation.to_json(), ensure_ascii=False) + "\n", encoding="utf-8")
    paths, figures = [data], []
    for layer, maps in enumerate(explanation.attention, start=1):
        title = f"Layer {layer}"
        png = attention_png(maps, explanation.tokens, title)
        figures.append((title, png))
        paths.append(output_dir / f"attention_layer_{layer}.png")
        paths[-1].write_bytes(png)
    page = output_dir / "explanation.html"
    page.write_text(explanation_html(explanation, figures), encoding="utf-8")
    return paths + [page]


def format_explanation(explanation: Explanation) -> str:
    """A few console lines: the prediction, the words by attribution, the completeness check."""
    e = explanation
    change = e.score - e.baseline_score
    ranked = sorted(e.words, key=lambda w: -abs(w["attribution"]))
    lines = [
        f"prediction: {e.label_names[e.predicted]} ({e.probabilities[e.predicted]:.4f}); "
        f"explaining {e.label_names[e.target]} ({e.score_kind}: {e.score:.4f}, baseline {e.baseline_score:.4f})",
        "words by |attribution|: " + ", ".join(f"{w['text']} {w['attribution']:+.4f}" for w in ranked[:10]),
        f"completeness error: {e.completeness_error:.2e} (attributions sum to {change:+.4f} minus the error)",
    ]
    if e.completeness_error > LOOSE_COMPLETENESS * abs(change) + 1e-3:
        lines.append(f"note: the integral is still coarse; rerun with more than --steps {e.settings['steps']}")
    return "\n".join(lines)


def explain_model_dir(
    model_dir: str | Path,
    text: str,
    text_pair: str | None = None,
    target: str | None = None,
    steps: int = 50,
    output_dir: str | Path = "explanations",
    baseline: str = "pad",
    score: str = "probability",
) -> tuple[Explanation, list[Path]]:
    """Loads a `tfptlm finetune` classifier folder, explains ``text`` and writes the files."""
    model = load_finetuned(model_dir)
    explanation = explain(model, text, text_pair, target, steps, baseline, score)
    return explanation, write_explanation(explanation, output_dir)
