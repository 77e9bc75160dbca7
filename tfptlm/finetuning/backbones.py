"""Where a fine-tuning run gets its encoder and tokenizer (``backbone:`` in the config)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras

from tfptlm.config import FinetuneConfig
from tfptlm.models.bert import BertBackbone
from tfptlm.models.loading import load_keras_model
from tfptlm.tokenizers import WordPieceTokenizer, train_wordpiece_vocabulary

#: The files of a backbone directory (``tfptlm pretrain`` and ``tfptlm convert`` outputs).
BACKBONE_FILE = "backbone.keras"
TOKENIZER_DIR = "tokenizer"


def load_backbone_dir(path: str | Path) -> tuple[keras.Model, WordPieceTokenizer]:
    """Loads ``backbone.keras`` and ``tokenizer/`` from a pretraining or conversion output."""
    path = Path(path)
    missing = [name for name in (BACKBONE_FILE, TOKENIZER_DIR) if not (path / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"backbone.path {path} has no {' or '.join(missing)}: give a `tfptlm pretrain` "
            "output directory or a `tfptlm convert` output"
        )
    backbone = load_keras_model(path / BACKBONE_FILE)
    return backbone, WordPieceTokenizer.load(path / TOKENIZER_DIR)


def prepare_backbone(config: FinetuneConfig, texts: list[str]) -> tuple[keras.Model, WordPieceTokenizer]:
    """The encoder and tokenizer that ``config.backbone`` asks for.

    ``texts`` are the training texts, used to learn a WordPiece vocabulary
    when a new model is built and ``tokenizer.path`` is not given.
    """
    choice = config.backbone
    if choice.path:
        return load_backbone_dir(choice.path)
    from tfptlm.models import hub  # keras-hub is only imported when asked for

    if choice.hub_preset:
        backbone = hub.load_hub_preset(choice.hub_preset)
        tokenizer = _tokenizer_from_config(config) or _wordpiece_from_hub(choice.hub_preset)
    elif choice.hub_class:
        tokenizer = _tokenizer_from_config(config) or _train_tokenizer(config, texts)
        hub_config = {"vocabulary_size": tokenizer.vocabulary_size, **choice.config}
        backbone = hub.hub_backbone_from_config(choice.hub_class, **hub_config)
    else:
        tokenizer = _tokenizer_from_config(config) or _train_tokenizer(config, texts)
        sizes = {"max_sequence_length": max(config.data.sequence_length, 128), **choice.config}
        backbone = BertBackbone.from_size(
            choice.size, vocabulary_size=tokenizer.vocabulary_size, **sizes
        )
    if backbone.vocabulary_size < tokenizer.vocabulary_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocabulary_size} tokens but the backbone only "
            f"{backbone.vocabulary_size} embeddings"
        )
    return backbone, tokenizer


def _tokenizer_from_config(config: FinetuneConfig) -> WordPieceTokenizer | None:
    return WordPieceTokenizer.load(config.tokenizer.path) if config.tokenizer.path else None


def _train_tokenizer(config: FinetuneConfig, texts: list[str]) -> WordPieceTokenizer:
    """Learns a WordPiece vocabulary of ``tokenizer.vocab_size`` on the training texts."""
    options = config.tokenizer
    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "train_texts.txt"
        corpus.write_text("\n".join(t.replace("\n", " ") for t in texts) + "\n", encoding="utf-8")
        vocabulary = train_wordpiece_vocabulary(
            str(corpus),
            vocab_size=options.vocab_size,
            lowercase=options.lowercase,
            strip_accents=options.strip_accents,
        )
    return WordPieceTokenizer(vocabulary, lowercase=options.lowercase, strip_accents=options.strip_accents)


def _wordpiece_from_hub(preset_dir: str) -> WordPieceTokenizer:
    """tfptlm's in-graph WordPiece tokenizer from a keras-hub WordPiece preset tokenizer."""
    from tfptlm.models.hub import load_hub_tokenizer

    hub_tokenizer = load_hub_tokenizer(preset_dir)
    vocabulary = getattr(hub_tokenizer, "vocabulary", None)
    if hub_tokenizer is None or not isinstance(vocabulary, list) or "[CLS]" not in vocabulary:
        raise ValueError(
            f"the keras-hub preset {preset_dir} has no WordPiece tokenizer that tfptlm can use; "
            "set tokenizer.path to a WordPiece vocab.txt that matches the backbone"
        )
    return WordPieceTokenizer(vocabulary, lowercase=bool(getattr(hub_tokenizer, "lowercase", True)))
