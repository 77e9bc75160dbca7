"""One self-contained HTML page for an `Explanation`: inline CSS, images as base64, no external links.

Words and word pieces are coloured by attribution (green raises the target
score, red lowers it; the strongest is fully coloured), next to the
prediction, the probabilities and the attention heatmaps.

Example:

>>> page = explanation_html(explanation, [("Layer 1", png_bytes)])
>>> Path("explanation.html").write_text(page, encoding="utf-8")    # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html

from tfptlm.analysis.explanation import Explanation

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 80em; }
.tokens span { display: inline-block; padding: 0.15em 0.3em; margin: 0.1em; border-radius: 0.25em; }
table { border-collapse: collapse; } td, th { padding: 0.2em 0.8em; border-bottom: 1px solid #ddd; text-align: left; }
.note { color: #666; font-size: 0.9em; } img { max-width: 100%; border: 1px solid #eee; }
"""

_BASELINE_WORDS = {"pad": "the [PAD] vector", "zeros": "zeros"}


def _colour(value: float, largest: float) -> str:
    """Green for positive, red for negative attributions, opacity by size relative to ``largest``."""
    strength = 0.0 if largest == 0 else min(abs(value) / largest, 1.0)
    rgb = "22, 163, 74" if value >= 0 else "220, 38, 38"
    return f"rgba({rgb}, {strength:.3f})"


def _spans(items: list[tuple[str, float]]) -> str:
    largest = max((abs(value) for _, value in items), default=0.0)
    return "".join(
        f'<span style="background: {_colour(value, largest)}" title="{value:+.4f}">{html.escape(text)}</span>'
        for text, value in items
    )


def explanation_html(explanation: Explanation, figures: list[tuple[str, bytes]]) -> str:
    """The page as a string; ``figures`` are ``(title, PNG bytes)`` pairs, embedded in order."""
    e = explanation
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{p:.4f}</td></tr>"
        for name, p in zip(e.label_names, e.probabilities)
    )
    images = "".join(
        f"<h3>{html.escape(title)}</h3>"
        f'<img alt="{html.escape(title)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
        for title, png in figures
    )
    target = html.escape(e.label_names[e.target])
    pair = "" if e.text_pair is None else f"<p><b>Text pair:</b> {html.escape(e.text_pair)}</p>"
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Explanation: {html.escape(e.label_names[e.predicted])}</title>
<style>{_STYLE}</style></head><body>
<h1>Why &ldquo;{html.escape(e.label_names[e.predicted])}&rdquo;?</h1>
<p><b>Text:</b> {html.escape(e.text)}</p>{pair}
<h2>Prediction</h2>
<table><tr><th>label</th><th>probability</th></tr>{rows}</table>
<h2>Integrated gradients for &ldquo;{target}&rdquo;</h2>
<p class="note">Attribution of each word to the {e.score_kind} of &ldquo;{target}&rdquo;: green raises it, red
lowers it (hover for the value). They sum to {e.score:.4f} (the text) &minus; {e.baseline_score:.4f}
(the baseline: every word vector replaced by {_BASELINE_WORDS[e.settings["baseline"]]}) up to {e.completeness_error:.2e};
{e.settings["steps"]} steps, {e.settings["method"]} rule.</p>
<p class="tokens">{_spans([(w["text"], w["attribution"]) for w in e.words])}</p>
<h3>Word pieces</h3>
<p class="tokens">{_spans(list(zip(e.tokens, e.token_attributions)))}</p>
<h2>Attention, per layer and head</h2>
<p class="note">Row = query token, column = key token; each row sums to 1.</p>
{images}
</body></html>
"""
