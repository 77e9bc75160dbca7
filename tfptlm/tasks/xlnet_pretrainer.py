"""XLNet pretrainer: permuted language modelling with two-stream attention.

The query stream predicts each target token from the tokens before it in a
random factorization order (``permutation_mask``), through an output
projection tied to the token embedding plus a bias (XLNet's LM head). Loss =
cross-entropy averaged over the real targets (sample weight 1).

Example:

>>> backbone = XLNetBackbone.from_size("tiny", vocabulary_size=8000)
>>> pretrainer = XLNetPretrainer(backbone)
>>> pretrainer.compile(optimizer="adam")
>>> pretrainer.fit(make_plm_dataset(...), steps_per_epoch=100)   # doctest: +SKIP
"""

from __future__ import annotations

import keras

from tfptlm.layers import LanguageModelHead
from tfptlm.models.xlnet import XLNetBackbone
from tfptlm.tasks.task import Task, backbone_inputs, language_model_compile_options


class _QueryStream(keras.layers.Layer):
    """Runs :meth:`XLNetBackbone.call_two_stream` as one node of a functional model.

    A layer's calls in a functional graph must all return the same structure;
    the backbone's blocks return one stream in the backbone's own graph and
    two here, so the two-stream pass runs inside this layer's ``call``.
    """

    def __init__(self, backbone: XLNetBackbone, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone

    def call(self, inputs: dict, training: bool | None = None):
        return self.backbone.call_two_stream(inputs, training=training)[1]


@keras.saving.register_keras_serializable(package="tfptlm")
class XLNetPretrainer(Task):
    """Permuted-LM pretraining model around an :class:`XLNetBackbone`.

    Inputs: the backbone's ``token_ids``, ``segment_ids``, ``padding_mask``
    plus ``permutation_mask`` ``[batch, length, length]`` and
    ``target_positions`` ``[batch, predictions]`` (see
    `tfptlm.data.objectives.plm`). Output: ``plm`` logits
    ``[batch, predictions, vocabulary]``, float32 whatever the precision.
    """

    def __init__(self, backbone: XLNetBackbone, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.plm_head = LanguageModelHead(
            vocabulary_size=backbone.vocabulary_size,
            token_embedding=backbone.token_embedding,
            use_bias=True,
            dtype="float32",
            name="plm_head",
        )

        # === Functional model ===
        inputs = backbone_inputs()
        inputs["permutation_mask"] = keras.Input(
            shape=(None, None), dtype="int32", name="permutation_mask"
        )
        inputs["target_positions"] = keras.Input(
            shape=(None,), dtype="int32", name="target_positions"
        )
        query = _QueryStream(backbone, name="query_stream")(inputs)
        super().__init__(inputs=inputs, outputs={"plm": self.plm_head(query)}, **kwargs)

    def compile(self, optimizer="adam", **kwargs) -> None:
        """Compiles with the target-weighted cross-entropy and accuracy unless told otherwise.

        Logged as ``loss`` and ``plm_accuracy`` (like the BERT pretrainer's
        ``mlm_accuracy``). Pass the target weights as ``sample_weight["plm"]``
        (padding targets 0).
        """
        kwargs.setdefault(
            "weighted_metrics", [keras.metrics.SparseCategoricalAccuracy(name="plm_accuracy")]
        )
        super().compile(optimizer=optimizer, **language_model_compile_options(kwargs))
