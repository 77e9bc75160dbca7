"""PNG heatmaps of one layer's attention: a grid of heads, query rows and key columns.

Uses matplotlib's Agg canvas directly (the pyplot backend stays as the user
set it); matplotlib comes with the ``plots`` or ``responsible`` extra.

Example:

>>> png = attention_png(explanation.attention[0], explanation.tokens, "Layer 1")
>>> Path("layer_1.png").write_bytes(png)                           # doctest: +SKIP
"""

from __future__ import annotations

import io
import math

import numpy as np


def attention_png(layer_maps: np.ndarray, tokens: list[str], title: str, columns: int = 4) -> bytes:
    """One layer's maps ``[heads, tokens, tokens]`` drawn as a grid of heatmaps, as PNG bytes."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError("attention heatmaps need matplotlib: pip install 'tfptlm[plots]'") from error
    heads, length = layer_maps.shape[0], len(tokens)
    columns = min(columns, heads)
    rows = math.ceil(heads / columns)
    side = min(max(3.0, 0.22 * length + 1.5), 9.0)
    font = max(4.0, min(8.0, 220 / max(length, 1)))
    figure = Figure(figsize=(side * columns, side * rows + 0.6), dpi=100)
    FigureCanvasAgg(figure)
    figure.suptitle(title)
    for head in range(heads):
        axes = figure.add_subplot(rows, columns, head + 1)
        axes.imshow(layer_maps[head], cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
        axes.set_title(f"head {head + 1}", fontsize=9)
        axes.set_xticks(np.arange(length), tokens, rotation=90, fontsize=font)
        axes.set_yticks(np.arange(length), tokens, fontsize=font)
        axes.set_xlabel("key", fontsize=8)
        axes.set_ylabel("query", fontsize=8)
    figure.tight_layout(rect=(0, 0, 1, 0.97))  # room for the title
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})  # no URL in the file
    return buffer.getvalue()
