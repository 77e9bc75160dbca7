"""Extractive question answering: the answer is a span of the given context.

The head scores every position as the answer's start and as its end. A long
context is read in overlapping windows (`QuestionAnsweringPreprocessor`); the
answer is the best-scoring span (start score + end score, at most
``max_answer_length`` tokens) over all windows, returned as the exact
substring of the context with character offsets.

Example:

>>> reader = QuestionAnswerer(backbone)
>>> reader.preprocessor = QuestionAnsweringPreprocessor(tokenizer, 384, 128)
>>> reader.answer(["Where is the Eiffel Tower?"],
...               ["The Eiffel Tower is in Paris."])   # doctest: +SKIP
[{'text': 'Paris', 'start': 23, 'end': 28, 'score': 11.2}]
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfptlm.tasks.task import BACKBONE_INPUTS, Task, backbone_inputs, head_initializer

#: Logit given to padding positions, so they are never a start or an end.
_MASKED_LOGIT = -1e9


@keras.saving.register_keras_serializable(package="tfptlm")
class SpanLogits(keras.layers.Layer):
    """Start and end logits `[batch, length]` from a sequence, padding masked out."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(
            2, kernel_initializer=head_initializer(), dtype=self.dtype_policy, name="dense"
        )

    def build(self, sequence_shape, padding_mask_shape=None):
        self.dense.build(sequence_shape)

    def call(self, sequence, padding_mask):
        logits = ops.cast(self.dense(sequence), "float32")
        logits = ops.where(ops.expand_dims(padding_mask > 0, -1), logits, _MASKED_LOGIT)
        return logits[..., 0], logits[..., 1]

    def compute_output_shape(self, sequence_shape, padding_mask_shape=None):
        return sequence_shape[:-1], sequence_shape[:-1]


@keras.saving.register_keras_serializable(package="tfptlm")
class QuestionAnswerer(Task):
    """Start/end span head on the backbone; outputs ``{"start", "end"}`` float32 logits.

    Args:
        backbone: the encoder (see `tfptlm.tasks.task`).
    """

    def __init__(self, backbone: keras.Model, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.span_logits = SpanLogits(dtype="float32", name="span_logits")
        # === Functional model ===
        inputs = backbone_inputs()
        sequence = backbone(inputs)["sequence_output"]
        start, end = self.span_logits(sequence, inputs["padding_mask"])
        super().__init__(inputs=inputs, outputs={"start": start, "end": end}, **kwargs)
        self.preprocessor = None

    def compile(self, optimizer="adam", **kwargs) -> None:
        """Cross-entropy over positions for the start and the end; their accuracies."""
        kwargs.setdefault(
            "loss",
            {
                "start": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                "end": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            },
        )
        kwargs.setdefault(
            "metrics",
            {
                "start": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                "end": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            },
        )
        super().compile(optimizer=optimizer, **kwargs)

    def answer(
        self,
        questions: Sequence[str],
        contexts: Sequence[str],
        max_answer_length: int = 30,
        batch_size: int = 32,
    ) -> list[dict]:
        """Best answer span per question: ``{"text", "start", "end", "score"}`` (character offsets).

        Needs ``self.preprocessor`` (a `QuestionAnsweringPreprocessor`).
        """
        if self.preprocessor is None:
            raise ValueError("set reader.preprocessor before answering raw questions")
        if len(questions) != len(contexts):
            raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts")
        best = [(-np.inf, 0, 0)] * len(questions)
        for windows in window_dataset(self.preprocessor, questions, contexts, batch_size):
            inputs = {name: windows[name] for name in BACKBONE_INPUTS}
            logits = self.predict_on_batch(inputs)
            spans = best_spans(
                keras.ops.convert_to_numpy(logits["start"]),
                keras.ops.convert_to_numpy(logits["end"]),
                windows["start_offsets"].numpy(),
                windows["end_offsets"].numpy(),
                max_answer_length,
            )
            for example, span in zip(windows["example_index"].numpy(), spans):
                if span[0] > best[example][0]:
                    best[example] = span
        return [answer_text(context, *span) for context, span in zip(contexts, best)]


def window_dataset(
    preprocessor,
    questions: Sequence[str],
    contexts: Sequence[str],
    batch_size: int,
    answer_starts: Sequence[int] | None = None,
    answer_ends: Sequence[int] | None = None,
) -> tf.data.Dataset:
    """Batches of windows of many examples; ``example_index`` says whose window it is.

    Answers, when given, are UTF-8 byte offsets into the contexts.
    """
    count = len(questions)
    answer_starts = [-1] * count if answer_starts is None else list(answer_starts)
    answer_ends = [-1] * count if answer_ends is None else list(answer_ends)
    examples = tf.data.Dataset.from_tensor_slices(
        (list(questions), list(contexts), answer_starts, answer_ends, tf.range(count))
    )

    def windows(question, context, start, end, index):
        features = preprocessor.windows(question, context, start, end)
        features["example_index"] = tf.fill(tf.shape(features["has_answer"]), index)
        return features

    return examples.map(windows).unbatch().batch(batch_size)


def best_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    start_offsets: np.ndarray,
    end_offsets: np.ndarray,
    max_answer_length: int,
) -> list[tuple[float, int, int]]:
    """The best ``(score, start_byte, end_byte)`` of each window, among context positions.

    A span runs from position i to j with i <= j < i + max_answer_length,
    both inside the context; its score is ``start_logits[i] + end_logits[j]``.
    """
    length = start_logits.shape[1]
    distance = np.arange(length)[None, :] - np.arange(length)[:, None]
    allowed_distance = (distance >= 0) & (distance < max_answer_length)
    spans = []
    for start, end, starts, ends in zip(start_logits, end_logits, start_offsets, end_offsets):
        context = starts >= 0
        scores = start[:, None] + end[None, :]
        allowed = allowed_distance & context[:, None] & context[None, :]
        if not allowed.any():
            spans.append((-np.inf, 0, 0))
            continue
        scores = np.where(allowed, scores, -np.inf)
        i, j = np.unravel_index(np.argmax(scores), scores.shape)
        spans.append((float(scores[i, j]), int(starts[i]), int(ends[j])))
    return spans


def answer_text(context: str, score: float, start: int, end: int) -> dict:
    """Turns a byte span of ``context`` into ``{"text", "start", "end", "score"}`` in characters."""
    encoded = context.encode("utf-8")
    return {
        "text": encoded[start:end].decode("utf-8"),
        "start": len(encoded[:start].decode("utf-8")),
        "end": len(encoded[:end].decode("utf-8")),
        "score": float(score) if np.isfinite(score) else None,
    }
