"""Sequence classification (sentiment, topic, spam...) on single texts or text pairs.

Example:

>>> classifier = TextClassifier(backbone, label_names=["negative", "positive"])
>>> classifier.preprocessor = TextClassificationPreprocessor(tokenizer, 128)
>>> classifier.compile(optimizer=keras.optimizers.AdamW(2e-5))
>>> classifier.fit(dataset, epochs=3)                       # doctest: +SKIP
>>> classifier.classify(["What a wonderful film!"])         # doctest: +SKIP
[{'label': 'positive', 'score': 0.97, 'probabilities': {...}}]
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tfptlm.tasks.task import Task, backbone_inputs, head_initializer


@keras.saving.register_keras_serializable(package="tfptlm")
class TextClassifier(Task):
    """A dense layer on the backbone's pooled output; float32 logits `[batch, classes]`.

    Args:
        backbone: the encoder (see `tfptlm.tasks.task`).
        label_names: one name per class, in class-id order; kept with the model.
        dropout: dropout before the output layer.
    """

    def __init__(self, backbone: keras.Model, label_names: Sequence[str], dropout: float = 0.1, **kwargs):
        if len(label_names) < 2:
            raise ValueError(f"a classifier needs at least 2 labels, got {list(label_names)}")
        # === Layers ===
        self.backbone = backbone
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            len(label_names), kernel_initializer=head_initializer(), dtype="float32", name="logits"
        )
        # === Functional model ===
        inputs = backbone_inputs()
        pooled = backbone(inputs)["pooled_output"]
        logits = self.output_dense(self.output_dropout(pooled))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        # === Config ===
        self.label_names = [str(name) for name in label_names]
        self.dropout = dropout
        self.preprocessor = None

    def task_config(self) -> dict:
        return {"label_names": self.label_names, "dropout": self.dropout}

    def compile(self, optimizer="adam", **kwargs) -> None:
        """Compiles with cross-entropy on the logits and accuracy unless told otherwise."""
        kwargs.setdefault("loss", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        kwargs.setdefault("metrics", [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        super().compile(optimizer=optimizer, **kwargs)

    def classify(
        self,
        texts: Sequence[str],
        text_pairs: Sequence[str] | None = None,
        batch_size: int = 64,
    ) -> list[dict]:
        """Labels raw strings: one ``{"label", "score", "probabilities"}`` per text.

        Needs ``self.preprocessor`` (a `TextClassificationPreprocessor`).
        """
        probabilities = self.predict_probabilities(texts, text_pairs, batch_size)
        return [
            {
                "label": self.label_names[int(np.argmax(row))],
                "score": float(np.max(row)),
                "probabilities": dict(zip(self.label_names, map(float, row))),
            }
            for row in probabilities
        ]

    def predict_probabilities(
        self,
        texts: Sequence[str],
        text_pairs: Sequence[str] | None = None,
        batch_size: int = 64,
    ) -> np.ndarray:
        """Class probabilities `[len(texts), classes]` for raw strings."""
        if self.preprocessor is None:
            raise ValueError("set classifier.preprocessor before classifying raw text")
        columns = [list(texts)] if text_pairs is None else [list(texts), list(text_pairs)]
        pack = self._packing_function(len(columns))
        rows = []
        for begin in range(0, len(columns[0]), batch_size):
            batch = [tf.constant(c[begin : begin + batch_size], tf.string) for c in columns]
            logits = self.predict_on_batch(pack(*batch))
            rows.append(keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1)))
        return np.concatenate(rows) if rows else np.zeros((0, len(self.label_names)), "float32")

    def _packing_function(self, columns: int):
        """The preprocessor as a `tf.function`, traced once per preprocessor (not per call)."""
        key = (id(self.preprocessor), columns)
        if getattr(self, "_packing", (None,))[0] != key:
            signature = [tf.TensorSpec([None], tf.string)] * columns
            self._packing = (key, tf.function(self.preprocessor.__call__, input_signature=signature))
        return self._packing[1]
