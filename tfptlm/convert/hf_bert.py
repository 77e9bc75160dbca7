"""Import a Hugging Face BERT checkpoint (``config.json`` + ``model.safetensors``) from a local folder.

Reads the weights with ``safetensors`` (no PyTorch, no download) into a
:class:`~tfptlm.models.bert.BertBackbone`, and the folder's ``vocab.txt`` into a
:class:`~tfptlm.tokenizers.WordPieceTokenizer`.

Example:

>>> backbone, tokenizer = load_hf_bert("path/to/all-MiniLM-L6-v2")  # doctest: +SKIP
>>> ids = tokenizer(["a sentence"])                                 # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tfptlm.models.bert import BertBackbone
from tfptlm.tokenizers import WordPieceTokenizer

#: Hugging Face ``hidden_act`` values and the Keras activation that matches them.
_ACTIVATIONS = {"gelu": "gelu"}


def read_hf_bert_config(directory: str | Path) -> dict:
    """Returns :class:`BertBackbone` arguments from a Hugging Face ``config.json``."""
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"no config.json in {directory}")
    config = json.loads(path.read_text(encoding="utf-8"))
    if config.get("model_type", "bert") != "bert":
        raise ValueError(f"{path}: model_type is {config['model_type']!r}, not 'bert'")
    if config.get("hidden_act", "gelu") not in _ACTIVATIONS:
        raise ValueError(
            f"{path}: hidden_act {config['hidden_act']!r} is not supported "
            f"(supported: {', '.join(_ACTIVATIONS)})"
        )
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{path}: only absolute position embeddings are supported")
    try:
        return dict(
            vocabulary_size=config["vocab_size"],
            num_layers=config["num_hidden_layers"],
            num_heads=config["num_attention_heads"],
            hidden_dim=config["hidden_size"],
            intermediate_dim=config["intermediate_size"],
            max_sequence_length=config["max_position_embeddings"],
            num_segments=config.get("type_vocab_size", 2),
            layer_norm_epsilon=config.get("layer_norm_eps", 1e-12),
            dropout=config.get("hidden_dropout_prob", 0.1),
        )
    except KeyError as error:
        raise ValueError(f"{path}: missing key {error.args[0]!r}") from None


def _backbone_weights(backbone: BertBackbone, num_layers: int) -> dict:
    """Maps each Hugging Face tensor name (without prefix) to (variable, transpose)."""
    embeddings = backbone.embeddings
    mapping = {
        "embeddings.word_embeddings.weight": (embeddings.token_embedding.embeddings, False),
        "embeddings.position_embeddings.weight": (embeddings.position_embedding.embeddings, False),
        "embeddings.token_type_embeddings.weight": (embeddings.segment_embedding.embeddings, False),
        "embeddings.LayerNorm.weight": (embeddings.layer_norm.gamma, False),
        "embeddings.LayerNorm.bias": (embeddings.layer_norm.beta, False),
        "pooler.dense.weight": (backbone.pooler.kernel, True),
        "pooler.dense.bias": (backbone.pooler.bias, False),
    }
    for i in range(num_layers):
        block = backbone.encoder_blocks[i]
        attention = block.self_attention
        dense_layers = {
            "attention.self.query": attention.query_dense,
            "attention.self.key": attention.key_dense,
            "attention.self.value": attention.value_dense,
            "attention.output.dense": attention.output_dense,
            "intermediate.dense": block.intermediate_dense,
            "output.dense": block.output_dense,
        }
        for name, layer in dense_layers.items():
            mapping[f"encoder.layer.{i}.{name}.weight"] = (layer.kernel, True)
            mapping[f"encoder.layer.{i}.{name}.bias"] = (layer.bias, False)
        norms = {
            "attention.output.LayerNorm": block.self_attention_layer_norm,
            "output.LayerNorm": block.output_layer_norm,
        }
        for name, layer in norms.items():
            mapping[f"encoder.layer.{i}.{name}.weight"] = (layer.gamma, False)
            mapping[f"encoder.layer.{i}.{name}.bias"] = (layer.beta, False)
    return mapping


def load_hf_bert(directory: str | Path) -> tuple[BertBackbone, WordPieceTokenizer]:
    """Builds a :class:`BertBackbone` with the folder's weights, and its tokenizer.

    Accepts checkpoints saved from ``BertModel`` (keys ``embeddings.…``) and
    from ``BertForPreTraining``/``BertForMaskedLM`` (keys ``bert.embeddings.…``;
    the task heads are ignored). Every backbone weight must be present with
    the expected shape, else a ``ValueError`` names the tensor.
    """
    from safetensors.numpy import load_file

    directory = Path(directory)
    settings = read_hf_bert_config(directory)
    weights_path = directory / "model.safetensors"
    if not weights_path.is_file():
        raise FileNotFoundError(f"no model.safetensors in {directory}")
    tensors = load_file(str(weights_path))
    prefix = "bert." if any(k.startswith("bert.") for k in tensors) else ""

    backbone = BertBackbone(**settings, name="bert_backbone")
    for name, (variable, transpose) in _backbone_weights(backbone, settings["num_layers"]).items():
        key = prefix + name
        if key not in tensors:
            raise ValueError(f"{weights_path}: tensor {key!r} is missing")
        value = tensors[key].astype(np.float32)
        value = value.T if transpose else value
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"{weights_path}: tensor {key!r} has shape {value.shape}, "
                f"expected {tuple(variable.shape)}"
            )
        variable.assign(value)
    return backbone, WordPieceTokenizer.load(directory)
