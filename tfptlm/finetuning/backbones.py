"""Where a fine-tuning run gets its encoder and tokenizer (``backbone:`` in the config)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras

from tfptlm.config import FinetuneConfig
from tfptlm.models.loading import load_keras_model
from tfptlm.pretraining import BACKBONES, train_configured_tokenizer
from tfptlm.tokenizers import load_tokenizer
from tfptlm.tokenizers.loading import AnyTokenizer

#: The files of a backbone directory (``tfptlm pretrain`` and ``tfptlm convert`` outputs).
BACKBONE_FILE = "backbone.keras"
TOKENIZER_DIR = "tokenizer"


#: The model family a new backbone of each task has when ``backbone.family`` is ``auto``.
TASK_FAMILIES = {"seq2seq": "bart", "causal_lm": "gpt"}


def load_backbone_dir(path: str | Path) -> tuple[keras.Model, AnyTokenizer]:
    """Loads ``backbone.keras`` and ``tokenizer/`` from a pretraining or conversion output."""
    return load_model_dir(
        path, BACKBONE_FILE, "backbone.path must be a `tfptlm pretrain` or `tfptlm convert` output directory"
    )


def load_model_dir(directory: str | Path, model_file: str, hint: str = "") -> tuple[keras.Model, AnyTokenizer]:
    """Loads ``model_file`` and ``tokenizer/`` from a tfptlm output directory, checked to fit together.

    The model is loaded safely (`load_keras_model`). A missing file, or a
    tokenizer with more tokens than the model has embeddings (its ids would
    index past the embedding table), is an error naming the directory;
    ``hint`` says what directory was expected.

    Example:

    >>> model, tokenizer = load_model_dir("runs/sst2", "model.keras")  # doctest: +SKIP
    """
    directory = Path(directory)
    missing = [name for name in (model_file, TOKENIZER_DIR) if not (directory / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"{directory} has no {' or '.join(missing)}" + (f": {hint}" if hint else "")
        )
    model = load_keras_model(directory / model_file)
    tokenizer = load_tokenizer(directory / TOKENIZER_DIR)
    embeddings = getattr(getattr(model, "backbone", model), "vocabulary_size", None)
    if embeddings is not None and tokenizer.vocabulary_size > embeddings:
        raise ValueError(
            f"{directory}: the tokenizer ({TOKENIZER_DIR}/) has {tokenizer.vocabulary_size} tokens "
            f"but {model_file} has only {embeddings} token embeddings; they do not belong together"
        )
    return model, tokenizer


def prepare_backbone(config: FinetuneConfig, texts: list[str]) -> tuple[keras.Model, AnyTokenizer]:
    """The encoder and tokenizer that ``config.backbone`` asks for.

    ``texts`` are the training texts, used to learn a vocabulary when a new
    model is built and ``tokenizer.path`` is not given.
    """
    choice = config.backbone
    if choice.path:
        return load_backbone_dir(choice.path)
    from tfptlm.models import hub  # keras-hub is only imported when asked for

    if choice.hub_preset:
        backbone = hub.load_hub_preset(choice.hub_preset)
        tokenizer = _tokenizer_from_config(config) or hub.load_hub_wordpiece_tokenizer(choice.hub_preset)
    elif choice.hub_class:
        tokenizer = _tokenizer_from_config(config) or _train_tokenizer(config, texts)
        hub_config = {"vocabulary_size": tokenizer.vocabulary_size, **choice.config}
        backbone = hub.hub_backbone_from_config(choice.hub_class, **hub_config)
    else:
        family = new_backbone_family(config)
        tokenizer = _tokenizer_from_config(config) or _train_tokenizer(config, texts)
        longest = max(config.data.sequence_length, config.data.target_length, 128)
        sizes = {} if family == "t5" else {"max_sequence_length": longest}
        backbone = BACKBONES[family].from_size(
            choice.size, vocabulary_size=tokenizer.vocabulary_size, **{**sizes, **choice.config}
        )
    if backbone.vocabulary_size < tokenizer.vocabulary_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocabulary_size} tokens but the backbone only "
            f"{backbone.vocabulary_size} embeddings"
        )
    return backbone, tokenizer


def new_backbone_family(config: FinetuneConfig) -> str:
    """The family of a backbone built from scratch: ``backbone.family`` or the task's usual one."""
    family = config.backbone.family
    if family == "auto":
        return TASK_FAMILIES.get(config.task, "bert")
    return family


def _tokenizer_from_config(config: FinetuneConfig):
    return load_tokenizer(config.tokenizer.path) if config.tokenizer.path else None


def _train_tokenizer(config: FinetuneConfig, texts: list[str]):
    """Learns a vocabulary of ``tokenizer.vocab_size`` on the training texts."""
    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "train_texts.txt"
        corpus.write_text("\n".join(t.replace("\n", " ") for t in texts) + "\n", encoding="utf-8")
        return train_configured_tokenizer(config.tokenizer, new_backbone_family(config), [str(corpus)])
