"""Sequence-to-sequence language model on an encoder-decoder backbone (T5, BART).

Example:

>>> backbone = T5Backbone.from_size("tiny", vocabulary_size=8000)
>>> model = Seq2SeqLM(backbone)
>>> model.compile(optimizer="adam")
>>> model.fit(make_span_corruption_dataset(documents, tokenizer, 128, 32, 32))
"""

from __future__ import annotations

import keras

from tfptlm.tasks.task import Task, language_model_compile_options

#: The inputs of an encoder-decoder backbone, int32 ``[batch, length]``.
SEQ2SEQ_INPUTS = (
    "encoder_token_ids",
    "encoder_padding_mask",
    "decoder_token_ids",
    "decoder_padding_mask",
)


@keras.saving.register_keras_serializable(package="tfptlm")
class Seq2SeqLM(Task):
    """Predicts each target token from the source and the target tokens before it.

    Inputs: ``encoder_token_ids``, ``encoder_padding_mask``,
    ``decoder_token_ids`` (the target shifted right after a start token) and
    ``decoder_padding_mask``. Output: float32 logits
    ``[batch, target_length, vocabulary]``. The span-corruption, text
    infilling and fine-tuning datasets yield these inputs with the target as
    labels and sample weights 0 on padding.

    Args:
        backbone: a T5 or BART backbone.
        decoder_start_id: the token the decoder input starts with (T5: the pad
            id, BART: the start-of-sequence id, see `decoder_start_id`);
            generation starts from it too.
    """

    def __init__(self, backbone: keras.Model, *, decoder_start_id: int = 0, **kwargs):
        self.backbone = backbone
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name) for name in SEQ2SEQ_INPUTS
        }
        hidden = backbone(inputs)["decoder_sequence_output"]
        super().__init__(inputs=inputs, outputs=backbone.logits(hidden), **kwargs)
        self.decoder_start_id = decoder_start_id

    def task_config(self) -> dict:
        return {"decoder_start_id": self.decoder_start_id}

    def compile(self, optimizer="adam", **kwargs) -> None:
        """Compiles with token cross-entropy (``loss``) and token ``accuracy`` by default."""
        super().compile(optimizer=optimizer, **language_model_compile_options(kwargs))


def decoder_start_id(backbone: keras.Model | str, tokenizer) -> int:
    """The first decoder input token: the pad id for T5, the start-of-sequence id for BART.

    ``backbone`` is the backbone or its family name (``t5``, ``bart``). Not
    ``</s>``: with tied embeddings, a start token that is also the last label
    of every target kept a small BART from reading its encoder (it learned
    to copy in 300 steps with ``<s>`` or pad as the start, not with ``</s>``).
    """
    is_t5 = backbone == "t5" if isinstance(backbone, str) else type(backbone).__name__ == "T5Backbone"
    return tokenizer.pad_id if is_t5 else tokenizer.bos_id
