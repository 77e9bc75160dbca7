"""BERT pretrainer: masked language modelling plus next sentence prediction.

The MLM head computes logits only at the masked positions (about 15% of the
tokens) with its output projection tied to the token embeddings; the NSP head
classifies the pooled first token as "B follows A" (0) or "B is random" (1).
Loss = MLM loss (mean over real predictions) + NSP loss.

Example:

>>> backbone = BertBackbone.from_size("tiny", vocabulary_size=8000)
>>> pretrainer = BertPretrainer(backbone)
>>> pretrainer.compile(optimizer="adam")
>>> pretrainer.fit(make_bert_pretraining_dataset(...), steps_per_epoch=100)
"""

from __future__ import annotations

import keras

from tfptlm.layers import MaskedLMHead
from tfptlm.models.bert import BertBackbone
from tfptlm.tasks.task import Task


@keras.saving.register_keras_serializable(package="tfptlm")
class BertPretrainer(Task):
    """MLM + NSP pretraining model around a :class:`BertBackbone`.

    Inputs: the backbone's ``token_ids``, ``segment_ids``, ``padding_mask``
    plus ``mask_positions`` ``[batch, predictions]``. Outputs: ``mlm`` logits
    ``[batch, predictions, vocabulary]`` and ``nsp`` logits ``[batch, 2]``,
    both float32 whatever the compute precision.
    """

    def __init__(self, backbone: BertBackbone, **kwargs):
        # === Layers ===
        self.backbone = backbone
        # The vocabulary-sized output product runs in float32 even under mixed
        # precision: more accurate logits, and on CPUs without bfloat16 units
        # 3.6x faster than in bfloat16 (benchmarks/README.md).
        self.mlm_head = MaskedLMHead(
            vocabulary_size=backbone.vocabulary_size,
            token_embedding=backbone.token_embedding,
            layer_norm_epsilon=backbone.layer_norm_epsilon,
            dtype="float32",
            name="mlm_head",
        )
        self.nsp_head = keras.layers.Dense(
            2,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype="float32",
            name="nsp_head",
        )

        # === Functional model ===
        inputs = dict(backbone.input)
        inputs["mask_positions"] = keras.Input(
            shape=(None,), dtype="int32", name="mask_positions"
        )
        features = backbone(
            {k: inputs[k] for k in ("token_ids", "segment_ids", "padding_mask")}
        )
        mlm_logits = self.mlm_head(features["sequence_output"], inputs["mask_positions"])
        nsp_logits = self.nsp_head(features["pooled_output"])
        super().__init__(
            inputs=inputs, outputs={"mlm": mlm_logits, "nsp": nsp_logits}, **kwargs
        )

    def compile(self, optimizer="adam", **kwargs) -> None:
        """Compiles with the MLM + NSP losses and accuracies unless told otherwise.

        Logged as ``loss``, ``mlm_loss``, ``nsp_loss``, ``mlm_accuracy`` and
        ``nsp_accuracy``. Pass the MLM mask weights as ``sample_weight["mlm"]``.
        """
        kwargs.setdefault(
            "loss",
            {
                "mlm": keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True, reduction="mean_with_sample_weight"
                ),
                "nsp": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            },
        )
        kwargs.setdefault(
            "weighted_metrics",
            {"mlm": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]},
        )
        kwargs.setdefault(
            "metrics",
            {"nsp": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]},
        )
        super().compile(optimizer=optimizer, **kwargs)
