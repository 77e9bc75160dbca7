"""The interface every fine-tuning task implements, and what they share.

A recipe knows how to read a task's labelled files, build its model and
preprocessor, turn examples into a `tf.data` pipeline, score a model on
held-out examples, and answer raw inputs. `tfptlm.finetuning.run` drives
any recipe the same way.

Example:

>>> from tfptlm.finetuning.run import RECIPES
>>> recipe = RECIPES["text_classification"]
>>> result = recipe.read("train.tsv", data_config, labels=None)      # doctest: +SKIP
"""

from __future__ import annotations

import random
from pathlib import Path

import keras
import tensorflow as tf

from tfptlm.config import FinetuneConfig, FinetuneDataConfig
from tfptlm.data.data_errors import ReadResult


class Recipe:
    """Base class of the task recipes; see the subclasses for each task."""

    #: The ``task`` name in configs and ``task.json``.
    task: str = ""

    def read(self, path: str, data: FinetuneDataConfig, labels: list[str] | None) -> ReadResult:
        """Reads one labelled file (``labels``: the known label names, if any)."""
        raise NotImplementedError

    def label_names(self, examples: list[ReadResult], data: FinetuneDataConfig) -> list[str] | None:
        """The model's label names: from the config, else from the training data."""
        return None

    def texts(self, examples: ReadResult) -> list[str]:
        """The raw texts of the examples (to train a vocabulary from scratch)."""
        raise NotImplementedError

    def build(self, backbone: keras.Model, labels: list[str] | None, config: FinetuneConfig, tokenizer):
        """The task model on ``backbone`` (``tokenizer``: the one that feeds it)."""
        raise NotImplementedError

    def preprocessor(self, tokenizer, data: FinetuneDataConfig, model: keras.Model):
        """The in-graph preprocessor that feeds ``model`` (and its export)."""
        raise NotImplementedError

    def dataset(self, model, examples: ReadResult, batch_size: int, seed: int | None) -> tuple[tf.data.Dataset, int, dict]:
        """Training batches (shuffled with ``seed``; ``None`` keeps the order).

        Returns the dataset, the number of training examples per epoch and a
        report of anything left out (e.g. QA questions whose answer is lost).
        """
        raise NotImplementedError

    def class_weight(self, model, examples: ReadResult, setting) -> dict | None:
        """Keras ``class_weight`` for ``training.class_weights`` (classification only)."""
        if setting is not None:
            raise ValueError(f"training.class_weights is only for text_classification, not {self.task}")
        return None

    def evaluate(self, model, examples: ReadResult, data: FinetuneDataConfig, batch_size: int, output_dir: Path | None) -> dict:
        """The task's metrics on ``examples`` (files such as plots go to ``output_dir``)."""
        raise NotImplementedError

    def predict(self, model, examples: ReadResult, data: FinetuneDataConfig, batch_size: int) -> list[dict]:
        """One JSON-ready answer per example."""
        raise NotImplementedError

    def raw_examples(self, texts: list[str], options: dict) -> ReadResult:
        """Examples made from command-line strings, for ``tfptlm predict``."""
        raise NotImplementedError


def split_held_out(examples: ReadResult, share: float, seed: int) -> tuple[ReadResult, ReadResult]:
    """Holds out ``share`` of the examples (at least one, shuffled with ``seed``) for evaluation."""
    if len(examples.examples) < 2:
        raise ValueError(
            "cannot hold out evaluation examples from a training file with "
            f"{len(examples.examples)} example(s); give data.eval_file"
        )
    items = list(examples.examples)
    random.Random(seed).shuffle(items)
    held_out = max(1, round(len(items) * share))
    train = ReadResult(items[held_out:], examples.skipped, examples.skipped_examples)
    return train, ReadResult(items[:held_out])


def shuffled(dataset: tf.data.Dataset, count: int, seed: int | None) -> tf.data.Dataset:
    """Reshuffles every epoch when ``seed`` is given; keeps the order otherwise."""
    if seed is None:
        return dataset
    return dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)


#: Character-length boundaries of the buckets that `batched_by_length` fills.
LENGTH_BUCKETS = [32, 64, 128, 256, 512]


def batched_by_length(dataset: tf.data.Dataset, length, batch_size: int, seed: int | None) -> tf.data.Dataset:
    """Batches texts of similar length together (less padding, faster steps).

    With a ``seed`` (training), examples are shuffled, grouped into buckets by
    ``length(*element)`` (e.g. characters of text) and the batches of all
    buckets are shuffled again; without one, plain batches in file order.
    """
    if seed is None:
        return dataset.batch(batch_size)
    dataset = dataset.bucket_by_sequence_length(
        element_length_func=length,
        bucket_boundaries=LENGTH_BUCKETS,
        bucket_batch_sizes=[batch_size] * (len(LENGTH_BUCKETS) + 1),
    )
    return dataset.shuffle(64, seed=seed, reshuffle_each_iteration=True)
