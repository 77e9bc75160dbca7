"""What every tfptlm task model shares: a backbone, its serialization, compile state.

A task is a functional `keras.Model` built on a backbone that takes
``token_ids``, ``segment_ids`` and ``padding_mask`` and returns
``sequence_output`` and ``pooled_output`` (tfptlm's `BertBackbone`, or any
keras-hub encoder through `tfptlm.models.hub.HubBackbone`). Subclasses add
their head and list their own constructor arguments in ``task_config``.
"""

from __future__ import annotations

import keras

#: The inputs every backbone takes, int32 `[batch, length]`.
BACKBONE_INPUTS = ("token_ids", "segment_ids", "padding_mask")


def backbone_inputs() -> dict:
    """Fresh symbolic inputs for a task model, one per name in `BACKBONE_INPUTS`."""
    return {
        name: keras.Input(shape=(None,), dtype="int32", name=name) for name in BACKBONE_INPUTS
    }


def head_initializer() -> keras.initializers.Initializer:
    """BERT's initializer for new heads: truncated normal, stddev 0.02."""
    return keras.initializers.TruncatedNormal(stddev=0.02)


class Task(keras.Model):
    """Base class: serializes the backbone and re-compiles a loaded model.

    Subclasses set ``self.backbone`` and return their other constructor
    arguments from ``task_config``; ``compile`` supplies their default losses.

    Example:

    >>> classifier = TextClassifier(backbone, label_names=["neg", "pos"])   # a Task subclass
    >>> classifier.compile(optimizer="adam")                    # default loss and metrics
    >>> classifier.save("classifier.keras")                      # doctest: +SKIP
    """

    def task_config(self) -> dict:
        return {}

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            **self.task_config(),
        }

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)

    def get_compile_config(self) -> dict | None:
        if not self.compiled:
            return None
        return {"optimizer": keras.saving.serialize_keras_object(self.optimizer)}

    def compile_from_config(self, config: dict) -> None:
        """Re-compiles a loaded model with its saved optimizer and the default losses."""
        self.compile(optimizer=keras.saving.deserialize_keras_object(config["optimizer"]))
        self.optimizer.build(self.trainable_variables)  # so its saved state can load


def language_model_compile_options(options: dict) -> dict:
    """``compile`` defaults of the language models: weighted token cross-entropy and accuracy.

    The loss is the mean over real tokens (sample weight 1), so padding does
    not dilute it and ``exp(loss)`` is the perplexity.
    """
    options = dict(options)
    options.setdefault(
        "loss",
        keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight"
        ),
    )
    options.setdefault(
        "weighted_metrics", [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    )
    return options
