"""A text classifier run from its word vectors, for gradient-based explanations.

tfptlm's encoders embed a sequence as ``LN(word[token_ids] + position + segment)``
(ALBERT then projects it to the hidden size). Integrated gradients moves the
*word* vectors along a path while the positions and segments stay, so the
classifier has to run from word vectors instead of token ids:
`classifier_logits` does that with the model's own layers and weights.

Works for the backbones whose embedding layer is tfptlm's
`TransformerEmbeddings`: BERT, RoBERTa (BERT without segments) and ALBERT
(factorized embeddings). keras-hub backbones hide their embedding step and
get a clear error.

Example:

>>> backbone = explainable_backbone(classifier)
>>> vectors = word_vectors(backbone, inputs["token_ids"])          # [batch, length, E]
>>> logits = classifier_logits(classifier, vectors, inputs)        # == classifier(inputs)
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from tfptlm.layers import TransformerEmbeddings
from tfptlm.models.albert import AlbertBackbone
from tfptlm.models.bert import BertBackbone
from tfptlm.models.encoder_outputs import encoder_stack_outputs
from tfptlm.tasks import TextClassifier

#: The backbones explanations support (RoBERTa is a `BertBackbone` subclass).
SUPPORTED_BACKBONES = (BertBackbone, AlbertBackbone)
SUPPORTED_FAMILIES = "BERT, RoBERTa and ALBERT"


def explainable_backbone(model: keras.Model) -> keras.Model:
    """The backbone of ``model`` if it is a `TextClassifier` on a supported encoder, else a ValueError."""
    if not isinstance(model, TextClassifier):
        raise ValueError(
            f"explanations are for text classifiers (`tfptlm finetune` with task text_classification); "
            f"this model is a {type(model).__name__}"
        )
    backbone = model.backbone
    if not isinstance(backbone, SUPPORTED_BACKBONES) or not isinstance(
        backbone.embeddings, TransformerEmbeddings
    ):
        raise ValueError(
            f"explanations support tfptlm's {SUPPORTED_FAMILIES} backbones; this classifier's "
            f"backbone is a {type(backbone).__name__}, whose embedding step cannot be taken apart"
        )
    return backbone


def word_vectors(backbone: keras.Model, token_ids: Any) -> Any:
    """The word (token) embedding vectors ``[batch, length, E]`` of ``token_ids``."""
    return backbone.embeddings.token_embedding(token_ids)


def embed_word_vectors(backbone: keras.Model, vectors: Any, segment_ids: Any) -> Any:
    """The backbone's embedded sequence ``[batch, length, hidden]`` with ``vectors`` as the word vectors.

    Same as the backbone's own embedding step (inference mode, no dropout) when
    ``vectors == word_vectors(backbone, token_ids)``.
    """
    layer = backbone.embeddings
    positions = ops.arange(ops.shape(vectors)[1], dtype="int32")
    x = vectors + ops.expand_dims(layer.position_embedding(positions), 0)
    if layer.segment_embedding is not None:
        x = x + layer.segment_embedding(segment_ids)
    if layer.layer_norm is not None:
        x = layer.layer_norm(x)
    projection = getattr(backbone, "embedding_projection", None)
    return x if projection is None else projection(x)


def classifier_logits(classifier: TextClassifier, vectors: Any, inputs: dict) -> Any:
    """Float32 logits ``[batch, classes]`` of ``classifier`` with ``vectors`` as the word vectors.

    ``inputs`` gives the ``segment_ids`` and ``padding_mask``; its
    ``token_ids`` are not used. Inference mode (no dropout).
    """
    backbone = classifier.backbone
    x = embed_word_vectors(backbone, vectors, inputs["segment_ids"])
    outputs = encoder_stack_outputs(
        x,
        backbone._stacked_blocks(),
        inputs["padding_mask"],
        backbone.pooler,
        final_layer_norm=getattr(backbone, "final_layer_norm", None),
    )
    return ops.cast(classifier.output_dense(outputs["pooled_output"]), "float32")
