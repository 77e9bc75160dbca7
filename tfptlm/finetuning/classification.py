"""Text classification recipe: TSV/CSV/JSONL files in, accuracy and F1 out."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfptlm.data.classification_inputs import TextClassificationPreprocessor
from tfptlm.data.labeled_files import LabeledText, check_labels_known, infer_label_names, read_labeled_file
from tfptlm.data.data_errors import ReadResult
from tfptlm.finetuning.recipe import Recipe, batched_by_length, shuffled
from tfptlm.metrics import classification_metrics, save_confusion_matrix_png
from tfptlm.tasks.text_classifier import TextClassifier


class ClassificationRecipe(Recipe):
    """Single texts or text pairs, any number of classes."""

    task = "text_classification"

    def read(self, path, data, labels, require_labels: bool = True) -> ReadResult:
        return read_labeled_file(
            path,
            text_column=data.text_column,
            label_column=data.label_column if require_labels else None,
            text_pair_column=data.text_pair_column,
            file_format=data.format,
            has_header=data.has_header,
            delimiter=data.delimiter,
            label_names=labels,
            skip_bad_rows=data.skip_bad_rows,
        )

    def label_names(self, examples, data):
        if data.label_names:
            return list(data.label_names)
        if not data.eval_file:  # the held-out share comes from the training file
            return infer_label_names(examples)
        train, *held_out = examples
        names = infer_label_names([train])
        for result in held_out:
            check_labels_known(result, names)
        return names

    def texts(self, examples):
        return [t for e in examples.examples for t in (e.text, e.text_pair) if t]

    def build(self, backbone, labels, config, tokenizer):
        return TextClassifier(backbone, labels, dropout=config.training.dropout)

    def preprocessor(self, tokenizer, data, model):
        return TextClassificationPreprocessor(tokenizer, data.sequence_length)

    def _label_ids(self, model, examples) -> np.ndarray:
        index = {name: i for i, name in enumerate(model.label_names)}
        return np.array([index[e.label] for e in examples.examples], dtype="int32")

    def _columns(self, examples) -> tuple:
        texts = [e.text for e in examples.examples]
        if examples.examples and examples.examples[0].text_pair is not None:
            return texts, [e.text_pair for e in examples.examples]
        return (texts,)

    def dataset(self, model, examples, batch_size, seed):
        columns = self._columns(examples)
        labels = self._label_ids(model, examples)
        dataset = tf.data.Dataset.from_tensor_slices((columns, labels))
        dataset = batched_by_length(
            shuffled(dataset, len(labels), seed),
            lambda texts, y: tf.reduce_sum(tf.strings.length(tf.stack(texts))),
            batch_size,
            seed,
        )
        preprocessor = model.preprocessor
        dataset = dataset.map(
            lambda texts, y: (preprocessor(*texts), y), num_parallel_calls=tf.data.AUTOTUNE
        )
        return dataset.prefetch(tf.data.AUTOTUNE), len(labels), {}

    def class_weight(self, model, examples, setting):
        if setting is None:
            return None
        names = model.label_names
        if setting == "balanced":
            counts = Counter(e.label for e in examples.examples)
            total = sum(counts.values())
            return {i: total / (len(names) * counts[n]) if counts[n] else 0.0 for i, n in enumerate(names)}
        if len(setting) != len(names):
            raise ValueError(
                f"training.class_weights has {len(setting)} values for {len(names)} labels {names}"
            )
        return {i: float(w) for i, w in enumerate(setting)}

    def evaluate(self, model, examples, data, batch_size, output_dir):
        columns = self._columns(examples)
        probabilities = model.predict_probabilities(*columns, batch_size=batch_size)
        metrics = classification_metrics(
            self._label_ids(model, examples), probabilities.argmax(-1), model.label_names
        )
        if output_dir is not None:
            try:
                save_confusion_matrix_png(
                    metrics["confusion_matrix"], model.label_names, Path(output_dir) / "confusion_matrix.png"
                )
            except ImportError as error:
                print(f"Confusion matrix PNG skipped: {error}")
        return metrics

    def predict(self, model, examples, data, batch_size):
        results = model.classify(*self._columns(examples), batch_size=batch_size)
        for result, example in zip(results, examples.examples):
            result["text"] = example.text
            if example.text_pair is not None:
                result["text_pair"] = example.text_pair
        return results

    def raw_examples(self, texts, options):
        pairs = options.get("text_pair") or []
        if pairs and len(pairs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(pairs)} --text-pair values")
        return ReadResult(
            [
                LabeledText(text, pairs[i] if pairs else None, None, f"argument {i + 1}")
                for i, text in enumerate(texts)
            ]
        )

