"""Sequence-classification metrics (scikit-learn) and a confusion-matrix picture.

Every value is a plain Python number or list, so the result can be written
with `json.dump` as it is. Fractions are in 0..1.

Example:

>>> metrics = classification_metrics([0, 1, 2, 2], [0, 2, 2, 2],
...                                  label_names=["neg", "neu", "pos"])
>>> metrics["accuracy"]
0.75
>>> metrics["confusion_matrix"]
[[1, 0, 0], [0, 0, 1], [0, 0, 2]]
>>> save_confusion_matrix_png(metrics["confusion_matrix"], metrics["label_names"],
...                           "confusion.png")  # doctest: +SKIP
"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Any, Sequence

from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

_PLOTS_HINT = "pip install 'tfptlm[plots]'"


def _label_ids(values: Sequence[int], name: str, num_labels: int) -> list[int]:
    """Checks that every id is an integer in ``0..num_labels-1``; names the first bad one."""
    ids = []
    for position, value in enumerate(values):
        try:
            if isinstance(value, bool):
                raise TypeError
            label_id = operator.index(value)
        except TypeError:
            raise ValueError(
                f"{name}[{position}] = {value!r} is not an integer label id"
            ) from None
        if not 0 <= label_id < num_labels:
            raise ValueError(
                f"{name}[{position}] = {label_id} is not a label id in 0..{num_labels - 1} "
                f"({num_labels} label names)"
            )
        ids.append(label_id)
    return ids


def classification_metrics(
    labels: Sequence[int],
    predictions: Sequence[int],
    label_names: Sequence[str],
) -> dict[str, Any]:
    """Accuracy, macro and per-class precision/recall/F1 and the confusion matrix.

    Every class in `label_names` is scored, also one that never occurs: its
    precision/recall/F1 are 0 where undefined (scikit-learn's
    ``zero_division=0``) and it counts in the macro averages. Confusion-matrix
    rows are true labels, columns predicted labels, in `label_names` order.
    """
    label_names = [str(name) for name in label_names]
    if not label_names:
        raise ValueError("label_names is empty")
    duplicates = sorted({name for name in label_names if label_names.count(name) > 1})
    if duplicates:
        raise ValueError(f"label_names has duplicates: {duplicates}")
    labels = list(labels)
    predictions = list(predictions)
    if len(labels) != len(predictions):
        raise ValueError(
            f"{len(labels)} labels but {len(predictions)} predictions; they must pair up"
        )
    if not labels:
        raise ValueError("no examples: labels and predictions are empty")
    num_labels = len(label_names)
    y_true = _label_ids(labels, "labels", num_labels)
    y_pred = _label_ids(predictions, "predictions", num_labels)
    label_ids = list(range(num_labels))

    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=label_ids, average=None, zero_division=0
    )
    macro_precision, macro_recall, macro_f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=label_ids, average="macro", zero_division=0
    )
    matrix = confusion_matrix(y_true, y_pred, labels=label_ids)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_precision": float(macro_precision),
        "macro_recall": float(macro_recall),
        "macro_f1": float(macro_f1),
        "per_class": {
            name: {
                "precision": float(precision[index]),
                "recall": float(recall[index]),
                "f1": float(f1[index]),
                "support": int(support[index]),
            }
            for index, name in enumerate(label_names)
        },
        "confusion_matrix": [[int(count) for count in row] for row in matrix.tolist()],
        "label_names": label_names,
        "examples": len(y_true),
    }


def save_confusion_matrix_png(
    matrix: Sequence[Sequence[int]],
    label_names: Sequence[str],
    path: str | Path,
    title: str = "Confusion matrix",
) -> None:
    """Draws `matrix` (rows true, columns predicted) with its counts into a PNG file.

    Uses matplotlib's Agg canvas directly, so the pyplot backend is left as the
    user set it. matplotlib is the optional ``plots`` extra; without it this
    raises ImportError.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            f"save_confusion_matrix_png needs matplotlib: {_PLOTS_HINT}"
        ) from error

    label_names = [str(name) for name in label_names]
    rows = [[int(count) for count in row] for row in matrix]
    size = len(label_names)
    if size == 0 or len(rows) != size or any(len(row) != size for row in rows):
        raise ValueError(
            f"the confusion matrix must be {size} x {size} to match the {size} label names, "
            f"got {len(rows)} rows of lengths {sorted({len(row) for row in rows})}"
        )

    # Grow the figure with the class count and shrink the cell text, so that
    # ~30 classes stay readable.
    side = min(max(4.5, 0.42 * size + 2.5), 16.0)
    cell_font = 10 if size <= 10 else max(5.0, 10 - 0.2 * (size - 10))
    tick_font = 10 if size <= 10 else max(6.0, 10 - 0.15 * (size - 10))
    rotate = size > 6 or max(len(name) for name in label_names) > 8

    figure = Figure(figsize=(side, side), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(rows, cmap="Blues", interpolation="nearest", vmin=0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    largest = max(max(row) for row in rows)
    for true_index, row in enumerate(rows):
        for predicted_index, count in enumerate(row):
            dark = largest > 0 and count > largest / 2
            axes.text(
                predicted_index,
                true_index,
                str(count),
                ha="center",
                va="center",
                fontsize=cell_font,
                color="white" if dark else "black",
            )
    ticks = list(range(size))
    axes.set_xticks(ticks)
    axes.set_yticks(ticks)
    axes.set_xticklabels(
        label_names,
        fontsize=tick_font,
        rotation=45 if rotate else 0,
        ha="right" if rotate else "center",
        rotation_mode="anchor",
    )
    axes.set_yticklabels(label_names, fontsize=tick_font)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    figure.tight_layout()

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
