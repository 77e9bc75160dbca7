"""Masked LM pretraining with an optional sentence-level objective (BERT, ALBERT, RoBERTa).

The MLM head computes logits only at the masked positions (about 15% of the
tokens) with its output projection tied to the backbone's token embeddings
(which may be narrower than the hidden size, as in ALBERT). The sentence
head classifies the pooled first token:

- ``"nsp"`` (BERT, next sentence prediction): "B follows A" (0) or "B is
  random" (1);
- ``"sop"`` (ALBERT, sentence order prediction): "A then B" (0) or "B then
  A" (1);
- ``None`` (RoBERTa): no sentence head, masked LM alone.

Loss = MLM loss (mean over real predictions) + sentence loss (if any).

Example:

>>> backbone = AlbertBackbone.from_size("tiny", vocabulary_size=8000)
>>> pretrainer = BertPretrainer(backbone, sentence_objective="sop")
>>> pretrainer.compile(optimizer="adam")
>>> pretrainer.fit(make_bert_pretraining_dataset(...), steps_per_epoch=100)
"""

from __future__ import annotations

import importlib

import keras

from tfptlm.layers import MaskedLMHead
from tfptlm.training.runtime import vocabulary_logits_dtype
from tfptlm.tasks.task import BACKBONE_INPUTS, Task, backbone_inputs, head_initializer

#: Values of ``sentence_objective`` besides None (masked LM alone).
SENTENCE_OBJECTIVES = ("nsp", "sop")


@keras.saving.register_keras_serializable(package="tfptlm")
class BertPretrainer(Task):
    """Masked LM (+ NSP or SOP) pretraining model around an encoder backbone.

    Args:
        backbone: any backbone with tfptlm's interface (`BertBackbone`,
            `AlbertBackbone`, `RobertaBackbone`, or a keras-hub encoder in a
            `HubBackbone`). The MLM head is tied to ``backbone.token_embedding``
            when the backbone has one, and has its own output kernel otherwise.
        sentence_objective: ``"nsp"``, ``"sop"`` or None (see the module
            docstring).

    Inputs: the backbone's ``token_ids``, ``segment_ids``, ``padding_mask``
    plus ``mask_positions`` ``[batch, predictions]``. Outputs: ``mlm`` logits
    ``[batch, predictions, vocabulary]`` and, unless ``sentence_objective``
    is None, logits ``[batch, 2]`` under the objective's name (``nsp`` or
    ``sop``), all float32 whatever the compute precision.
    """

    def __init__(self, backbone: keras.Model, sentence_objective: str | None = "nsp", **kwargs):
        if sentence_objective is not None and sentence_objective not in SENTENCE_OBJECTIVES:
            raise ValueError(
                f"sentence_objective must be one of {SENTENCE_OBJECTIVES} or None. "
                f"Received: {sentence_objective!r}."
            )
        # === Layers ===
        self.backbone = backbone
        # The vocabulary-sized output product runs in float32 unless bfloat16
        # is both the policy and native to the hardware (vocabulary_logits_dtype).
        self.mlm_head = MaskedLMHead(
            vocabulary_size=backbone.vocabulary_size,
            token_embedding=backbone.token_embedding,
            # keras-hub backbones (HubBackbone) do not say; BERT's value.
            layer_norm_epsilon=getattr(backbone, "layer_norm_epsilon", 1e-12),
            dtype=vocabulary_logits_dtype(),
            name="mlm_head",
        )
        self.sentence_head = None
        if sentence_objective is not None:
            self.sentence_head = keras.layers.Dense(
                2,
                kernel_initializer=head_initializer(),
                dtype="float32",
                name=f"{sentence_objective}_head",
            )

        # === Functional model ===
        inputs = backbone_inputs()
        inputs["mask_positions"] = keras.Input(
            shape=(None,), dtype="int32", name="mask_positions"
        )
        encoder_inputs = {name: inputs[name] for name in BACKBONE_INPUTS}
        if hasattr(backbone, "outputs_at_positions"):
            # The last encoder block computes only the masked positions (and
            # [CLS]): same values, ~15% less work for BERT-small (NOTES.md).
            features = backbone.outputs_at_positions(encoder_inputs, inputs["mask_positions"])
            mlm_logits = self.mlm_head(features["sequence_output"])
        else:
            features = backbone(encoder_inputs)
            mlm_logits = self.mlm_head(features["sequence_output"], inputs["mask_positions"])
        outputs = {"mlm": mlm_logits}
        if self.sentence_head is not None:
            outputs[sentence_objective] = self.sentence_head(features["pooled_output"])
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.sentence_objective = sentence_objective

    def task_config(self) -> dict:
        return {"sentence_objective": self.sentence_objective}

    @classmethod
    def from_config(cls, config: dict) -> "BertPretrainer":
        # Registers tfptlm's backbones, so that a saved pretrainer loads after
        # importing this module alone (it used to import BertBackbone).
        importlib.import_module("tfptlm.models")
        return super().from_config(config)

    def compile(self, optimizer="adam", **kwargs) -> None:
        """Compiles with the MLM (+ sentence) losses and accuracies unless told otherwise.

        Logged as ``loss``, ``mlm_loss``, ``mlm_accuracy`` and, with a
        sentence objective, ``nsp_loss`` and ``nsp_accuracy`` (or ``sop_...``).
        Without one, ``mlm_loss`` is a metric: the token-weighted mean over
        all the batches so far, where ``loss`` averages the batch means.
        Pass the MLM mask weights as ``sample_weight["mlm"]``.
        """
        objective = self.sentence_objective
        loss = {
            "mlm": keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, reduction="mean_with_sample_weight"
            )
        }
        if objective is not None:
            loss[objective] = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        kwargs.setdefault("loss", loss)
        if objective is None:
            # Keras names the metrics of a single output without the output's
            # name and logs no per-output loss: name them here.
            mlm_metrics = [
                keras.metrics.SparseCategoricalAccuracy(name="mlm_accuracy"),
                keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="mlm_loss"),
            ]
        else:
            mlm_metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
            kwargs.setdefault(
                "metrics",
                {objective: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]},
            )
        kwargs.setdefault("weighted_metrics", {"mlm": mlm_metrics})
        super().compile(optimizer=optimizer, **kwargs)
