"""Adapter: any keras-hub text *encoder* backbone as a tfptlm backbone.

`HubBackbone` wraps a `keras_hub.models.Backbone` (BERT, RoBERTa, ALBERT,
DistilBERT, ELECTRA, DeBERTa-v3, ...) in a functional `keras.Model` with
tfptlm's backbone interface, so it can stand in for `BertBackbone` in every
fine-tuning task:

- inputs: a dict of ``token_ids``, ``segment_ids`` and ``padding_mask``
  (int32 ``[batch, length]``, ``padding_mask`` 1 for real tokens). Inputs the
  wrapped backbone does not take are ignored (RoBERTa and DistilBERT have no
  segment embeddings; FNet mixes positions with a Fourier transform and has
  no padding mask, so padding does change its outputs -- see the
  ``uses_segment_ids`` / ``uses_padding_mask`` attributes).
- outputs: a dict of ``sequence_output`` ``[batch, length, hidden]`` and
  ``pooled_output`` ``[batch, hidden]``. Backbones with a pooler (BERT,
  ALBERT, ELECTRA, FNet) give their own pooled output; for the others
  (RoBERTa, DistilBERT, DeBERTa-v3, ...) ``pooled_output`` is the first
  token's vector ``sequence_output[:, 0, :]`` with no dense layer on it -- the
  tasks add their own dense layers on top.

Weights are read from local folders only: `load_hub_preset` takes a keras-hub
preset folder (``config.json`` + ``model.weights.h5`` ..., as written by
``backbone.save_to_preset``) and never downloads anything.

Example:

>>> backbone = hub_backbone_from_config(
...     "roberta", vocabulary_size=100, num_layers=2, num_heads=2,
...     hidden_dim=32, intermediate_dim=64, max_sequence_length=32)
>>> outputs = backbone({
...     "token_ids": np.array([[0, 10, 11, 2]]),
...     "segment_ids": np.zeros((1, 4), "int32"),
...     "padding_mask": np.ones((1, 4), "int32"),
... })
>>> outputs["sequence_output"].shape, outputs["pooled_output"].shape
((1, 4, 32), (1, 32))
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import keras
import keras_hub

from tfptlm.tokenizers import WordPieceTokenizer

#: Short names of the keras-hub encoder backbones known to work with the
#: adapter (each is covered by tests/test_hub_backbones.py). Any other
#: keras-hub encoder backbone whose inputs are among ``token_ids``,
#: ``segment_ids`` and ``padding_mask`` can be used by its class name.
HUB_BACKBONES = {
    "bert": "BertBackbone",
    "roberta": "RobertaBackbone",
    "xlm_roberta": "XLMRobertaBackbone",
    "albert": "AlbertBackbone",
    "distil_bert": "DistilBertBackbone",
    "electra": "ElectraBackbone",
    "deberta_v3": "DebertaV3Backbone",
    "f_net": "FNetBackbone",
}
# Not listed: RoformerV2Backbone and ESMBackbone. In keras-hub 0.32 both take
# no padding mask (they compare token ids with the pad id) and shape their
# attention mask [batch, 1, length, 1], which on the TensorFlow and JAX
# backends masks padded *queries* instead of padded keys: padding changes the
# outputs of real tokens. They still wrap by class name.

#: The inputs of tfptlm's backbone interface.
INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")

_PRESET_CONFIG_FILE = "config.json"
_PRESET_TOKENIZER_FILE = "tokenizer.json"


def _subclasses(cls: type) -> list[type]:
    found, todo = [], [cls]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.append(sub)
                todo.append(sub)
    return found


def _generative_kind(backbone_cls: type) -> str | None:
    """``"encoder-decoder"``, ``"decoder-only"`` or None for an encoder.

    keras-hub does not label its backbones, so the kind is read off the tasks
    built on them: a backbone used by a ``Seq2SeqLM`` task is an
    encoder-decoder, one used by a ``CausalLM`` task is a decoder.
    """
    for task_base, kind in (
        (keras_hub.models.Seq2SeqLM, "encoder-decoder (seq2seq)"),
        (keras_hub.models.CausalLM, "decoder-only (causal LM)"),
    ):
        for task in _subclasses(task_base):
            task_backbone = getattr(task, "backbone_cls", None)
            if task_backbone is not None and issubclass(backbone_cls, task_backbone):
                return kind
    return None


def _check_encoder_class(backbone_cls: type) -> None:
    kind = _generative_kind(backbone_cls)
    if kind is not None:
        raise ValueError(
            f"{backbone_cls.__name__} is a {kind} backbone; only encoder "
            "backbones (BERT, RoBERTa, ALBERT, ...) are supported here. Use "
            "tfptlm's own GPT/T5/BART models for generation tasks."
        )


def _input_names(backbone: keras.Model) -> list[str]:
    inputs = backbone.input
    if isinstance(inputs, dict):
        return list(inputs)
    inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    return [tensor.name for tensor in inputs]


@keras.saving.register_keras_serializable(package="tfptlm")
class HubBackbone(keras.Model):
    """Adapts a keras-hub encoder backbone to tfptlm's backbone interface.

    Args:
        backbone: a `keras_hub.models.Backbone` whose inputs are among
            ``token_ids``, ``segment_ids`` and ``padding_mask`` and which is
            an encoder (decoder-only and seq2seq backbones are refused).

    Inputs are a dict of ``token_ids``, ``segment_ids`` and ``padding_mask``
    (1 for real tokens), each int32 ``[batch, length]``; the ones the wrapped
    backbone does not take are ignored (see `uses_segment_ids`,
    `uses_padding_mask`). Outputs are a dict of ``sequence_output``
    ``[batch, length, hidden]`` and ``pooled_output`` ``[batch, hidden]``:
    the wrapped backbone's own pooled output when it has one
    (`has_pooler`), otherwise the first token's vector
    ``sequence_output[:, 0, :]`` unchanged (tasks put their own dense layers
    on top).

    Attributes:
        backbone: the wrapped keras-hub backbone (its weights are this
            model's weights).
        vocabulary_size, hidden_dim: sizes of the wrapped backbone.
        max_sequence_length: its maximum length, or None if it has none.
        num_layers: its number of layers, or None if it does not say.
        token_embedding: its token embedding layer, or None.
    """

    def __init__(self, backbone, **kwargs):
        if not isinstance(backbone, keras_hub.models.Backbone):
            raise TypeError(
                "HubBackbone wraps a keras_hub.models.Backbone; got "
                f"{type(backbone).__name__}"
            )
        backbone_name = type(backbone).__name__
        _check_encoder_class(type(backbone))
        input_names = _input_names(backbone)
        if any(name.startswith(("encoder_", "decoder_")) for name in input_names):
            raise ValueError(
                f"{backbone_name} is an encoder-decoder (seq2seq) backbone "
                f"(inputs {input_names}); only encoder backbones are supported here."
            )
        unknown = [name for name in input_names if name not in INPUT_NAMES]
        if "token_ids" not in input_names or unknown:
            raise ValueError(
                f"{backbone_name} takes inputs {input_names}; only text encoder "
                f"backbones whose inputs are among {list(INPUT_NAMES)} (with "
                "token_ids) are supported here."
            )

        # === Functional model ===
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in INPUT_NAMES
        }
        outputs = backbone({name: inputs[name] for name in input_names})
        has_pooler = False
        if isinstance(outputs, dict):
            if "sequence_output" not in outputs:
                raise ValueError(
                    f"{backbone_name} returns {sorted(outputs)}; expected a "
                    "'sequence_output' (or a single sequence tensor)."
                )
            sequence_output = outputs["sequence_output"]
            pooled_output = outputs.get("pooled_output")
            has_pooler = pooled_output is not None
        elif isinstance(outputs, (list, tuple)):
            raise ValueError(
                f"{backbone_name} returns {len(outputs)} tensors; expected a "
                "dict with 'sequence_output' or a single sequence tensor."
            )
        else:
            sequence_output, pooled_output = outputs, None
        if len(sequence_output.shape) != 3:
            raise ValueError(
                f"{backbone_name} returns a tensor of shape "
                f"{sequence_output.shape}; expected [batch, length, hidden]."
            )
        if pooled_output is None:
            # No pooler: the first token's ([CLS] / <s>) vector, as is.
            pooled_output = sequence_output[:, 0, :]
        super().__init__(
            inputs=inputs,
            outputs={
                "sequence_output": sequence_output,
                "pooled_output": pooled_output,
            },
            **kwargs,
        )

        # === Attributes ===
        self.backbone = backbone
        self.has_pooler = has_pooler
        self.uses_segment_ids = "segment_ids" in input_names
        self.uses_padding_mask = "padding_mask" in input_names
        token_embedding = getattr(backbone, "token_embedding", None)
        vocabulary_size = getattr(backbone, "vocabulary_size", None)
        if vocabulary_size is None:  # ElectraBackbone calls it vocab_size.
            vocabulary_size = getattr(backbone, "vocab_size", None)
        if vocabulary_size is None and token_embedding is not None:
            vocabulary_size = token_embedding.input_dim
        self.vocabulary_size = vocabulary_size
        hidden_dim = getattr(backbone, "hidden_dim", None)
        self.hidden_dim = hidden_dim if hidden_dim is not None else sequence_output.shape[-1]
        self.max_sequence_length = getattr(backbone, "max_sequence_length", None)
        self.num_layers = getattr(backbone, "num_layers", None)

    @property
    def token_embedding(self):
        """The wrapped backbone's token embedding layer, or None if it has none."""
        return getattr(self.backbone, "token_embedding", None)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
        }

    @classmethod
    def from_config(cls, config: dict) -> "HubBackbone":
        config = dict(config)
        backbone = config.pop("backbone")
        if isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(backbone)
        return cls(backbone, **config)


def _backbone_class(kind_or_class_name: str) -> type:
    if not isinstance(kind_or_class_name, str):
        raise TypeError(
            "expected a keras-hub backbone kind or class name (str); got "
            f"{type(kind_or_class_name).__name__}"
        )
    class_name = HUB_BACKBONES.get(kind_or_class_name.lower(), kind_or_class_name)
    backbone_cls = getattr(keras_hub.models, class_name, None)
    if not (
        inspect.isclass(backbone_cls)
        and issubclass(backbone_cls, keras_hub.models.Backbone)
        and backbone_cls is not keras_hub.models.Backbone
    ):
        raise ValueError(
            f"unknown keras-hub backbone {kind_or_class_name!r}; choose one of "
            f"{', '.join(HUB_BACKBONES)} (or the name of another keras-hub "
            "encoder backbone class, e.g. 'BertBackbone')"
        )
    return backbone_cls


def takes_argument(kind_or_class_name: str, argument: str) -> bool:
    """Whether the keras-hub backbone class takes constructor ``argument``.

    Example:

    >>> takes_argument("albert", "embedding_dim"), takes_argument("bert", "embedding_dim")
    (True, False)
    """
    parameters = inspect.signature(_backbone_class(kind_or_class_name).__init__).parameters
    return argument in parameters


def hub_backbone_from_config(kind_or_class_name: str, **config) -> HubBackbone:
    """Builds a randomly initialized keras-hub encoder backbone and wraps it.

    Args:
        kind_or_class_name: a key of `HUB_BACKBONES` (``"bert"``,
            ``"roberta"``, ...) or a ``keras_hub.models`` backbone class name
            (``"BertBackbone"``).
        **config: the keras-hub class's constructor arguments.
            ``vocabulary_size`` is accepted for every class (it is renamed to
            ``vocab_size`` for ``ElectraBackbone``).

    Raises:
        ValueError: the name is unknown, or names a decoder-only or seq2seq
            backbone.
    """
    backbone_cls = _backbone_class(kind_or_class_name)
    _check_encoder_class(backbone_cls)
    parameters = inspect.signature(backbone_cls.__init__).parameters
    if (
        "vocabulary_size" in config
        and "vocabulary_size" not in parameters
        and "vocab_size" in parameters
    ):
        config["vocab_size"] = config.pop("vocabulary_size")
    return HubBackbone(backbone_cls(**config))


def _local_preset_dir(preset_dir: str | os.PathLike) -> Path:
    """The absolute path of an existing local preset folder, or a clear error."""
    if not isinstance(preset_dir, (str, os.PathLike)):
        raise TypeError(
            f"expected the path of a local keras-hub preset folder; got "
            f"{type(preset_dir).__name__}"
        )
    text = os.fspath(preset_dir)
    never = (
        "tfptlm reads keras-hub presets from local folders only and never "
        "downloads them; fetch the preset yourself and pass its folder."
    )
    if "://" in text:
        raise FileNotFoundError(
            f"keras-hub preset {text!r} is a remote handle, not a local folder. {never}"
        )
    path = Path(text).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"keras-hub preset folder {text!r} does not exist or is not a "
            f"directory (built-in preset names such as 'bert_base_en' are not "
            f"accepted). {never}"
        )
    if not (path / _PRESET_CONFIG_FILE).is_file():
        raise FileNotFoundError(
            f"{path / _PRESET_CONFIG_FILE} not found: {text!r} is not a "
            "keras-hub preset folder (write one with backbone.save_to_preset)."
        )
    # Absolute, so keras-hub never mistakes a folder named like a built-in
    # preset ("bert_base_en") for that preset and downloads it.
    return path.resolve()


def load_hub_preset(preset_dir: str | os.PathLike, load_weights: bool = True) -> HubBackbone:
    """Loads the keras-hub encoder backbone of a LOCAL preset folder, wrapped.

    Args:
        preset_dir: a local folder written by ``backbone.save_to_preset``
            (``config.json``, ``model.weights.h5``, ...). Preset names and
            remote handles (``kaggle://``, ``hf://``) are refused: nothing is
            downloaded.
        load_weights: load the saved weights (else random initialization).

    Raises:
        FileNotFoundError: the folder or its ``config.json`` does not exist.
        ValueError: the preset holds a decoder-only, seq2seq or non-text
            backbone.
    """
    path = _local_preset_dir(preset_dir)
    config_file = path / _PRESET_CONFIG_FILE
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_file} is not valid JSON: {error}") from error
    # Refuse decoders before reading (possibly large) weights.
    if isinstance(config, dict) and "registered_name" in config:
        backbone_cls = keras.saving.get_registered_object(config["registered_name"])
        if inspect.isclass(backbone_cls):
            _check_encoder_class(backbone_cls)
    backbone = keras_hub.models.Backbone.from_preset(str(path), load_weights=load_weights)
    return HubBackbone(backbone)


def load_hub_tokenizer(preset_dir: str | os.PathLike):
    """The keras-hub tokenizer saved in a LOCAL preset folder, or None.

    Returns None when the folder has no ``tokenizer.json``; never downloads.
    """
    path = _local_preset_dir(preset_dir)
    if not (path / _PRESET_TOKENIZER_FILE).is_file():
        return None
    return keras_hub.models.Tokenizer.from_preset(str(path))


def load_hub_wordpiece_tokenizer(preset_dir: str | os.PathLike) -> WordPieceTokenizer:
    """tfptlm's in-graph WordPiece tokenizer with a LOCAL keras-hub preset's vocabulary.

    Raises:
        ValueError: the preset has no WordPiece tokenizer (e.g. a RoBERTa
            preset); then pass a matching tokenizer yourself.
    """
    hub_tokenizer = load_hub_tokenizer(preset_dir)
    vocabulary = getattr(hub_tokenizer, "vocabulary", None)
    if hub_tokenizer is None or not isinstance(vocabulary, list) or "[CLS]" not in vocabulary:
        raise ValueError(
            f"the keras-hub preset {preset_dir} has no WordPiece tokenizer that tfptlm can use; "
            "set tokenizer.path to a WordPiece vocab.txt that matches the backbone"
        )
    return WordPieceTokenizer(vocabulary, lowercase=bool(getattr(hub_tokenizer, "lowercase", True)))
