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
    path = Path(path)
    missing = [name for name in (BACKBONE_FILE, TOKENIZER_DIR) if not (path / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"backbone.path {path} has no {' or '.join(missing)}: give a `tfptlm pretrain` "
            "output directory or a `tfptlm convert` output"
        )
    backbone = load_keras_model(path / BACKBONE_FILE)
    return backbone, load_tokenizer(path / TOKENIZER_DIR)


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
