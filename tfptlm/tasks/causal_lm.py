"""Causal language model: next-token prediction on a decoder-only backbone (GPT).

Example:

>>> backbone = GPTBackbone.from_size("tiny", vocabulary_size=8000)
>>> model = CausalLM(backbone)
>>> model.compile(optimizer="adam")
>>> model.fit(make_clm_dataset(documents, tokenizer, 128, 32), steps_per_epoch=100)
"""

from __future__ import annotations

import keras

from tfptlm.tasks.task import Task, language_model_compile_options


@keras.saving.register_keras_serializable(package="tfptlm")
class CausalLM(Task):
    """Predicts every next token with the backbone's tied output embedding.

    Inputs: ``token_ids`` and ``padding_mask``, int32 ``[batch, length]``.
    Output: float32 logits ``[batch, length, vocabulary]``; position t
    predicts token t + 1. Train with labels = inputs shifted left by one and
    sample weights 0 on padding (``make_clm_dataset`` yields exactly that).
    For text generation see :func:`tfptlm.generation.generate_text`.
    """

    def __init__(self, backbone: keras.Model, **kwargs):
        self.backbone = backbone
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in ("token_ids", "padding_mask")
        }
        hidden = backbone(inputs)["sequence_output"]
        super().__init__(inputs=inputs, outputs=backbone.logits(hidden), **kwargs)

    def compile(self, optimizer="adam", **kwargs) -> None:
        """Compiles with token cross-entropy (``loss``) and token ``accuracy`` by default."""
        super().compile(optimizer=optimizer, **language_model_compile_options(kwargs))
