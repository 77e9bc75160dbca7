"""Import a Hugging Face BERT checkpoint (``config.json`` + ``model.safetensors``) from a local folder.

Reads the weights with ``safetensors`` (no PyTorch, no download) into a
:class:`~tfptlm.models.bert.BertBackbone`, and the folder's ``vocab.txt`` into a
:class:`~tfptlm.tokenizers.WordPieceTokenizer`. :func:`convert_hf_bert` writes
both as a tfptlm backbone directory::

    backbone.keras     the BertBackbone (``keras.saving.load_model``)
    tokenizer/         vocab.txt + tokenizer.json (``WordPieceTokenizer.load``)
    conversion.json    where it came from: source folder, Hugging Face config,
                       tfptlm version, date

Example:

>>> backbone, tokenizer = load_hf_bert("path/to/all-MiniLM-L6-v2")  # doctest: +SKIP
>>> ids = tokenizer(["a sentence"])                                 # doctest: +SKIP
>>> convert_hf_bert("path/to/all-MiniLM-L6-v2", "minilm")           # doctest: +SKIP
PosixPath('minilm')
"""

from __future__ import annotations

import datetime
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from tfptlm.models.bert import BertBackbone
from tfptlm.tokenizers import WordPieceTokenizer

#: The files a Hugging Face BERT folder must hold.
HF_FILES = ("config.json", "model.safetensors", "vocab.txt")
#: The files of a tfptlm backbone directory (as written by ``tfptlm pretrain`` too).
BACKBONE_FILE = "backbone.keras"
TOKENIZER_DIR = "tokenizer"
CONVERSION_FILE = "conversion.json"
CONVERSION_FORMAT = "tfptlm-backbone-conversion"

#: Hugging Face ``hidden_act`` values and the Keras activation that matches them.
_ACTIVATIONS = {"gelu": "gelu"}


def check_hf_bert_folder(directory: str | Path) -> Path:
    """Returns ``directory`` as a Path; a ``FileNotFoundError`` names what is missing."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"{directory} is not a folder; a Hugging Face BERT checkpoint folder holds "
            f"{', '.join(HF_FILES)}"
        )
    missing = [name for name in HF_FILES if not (directory / name).is_file()]
    if missing:
        hint = ""
        if "model.safetensors" in missing and (directory / "pytorch_model.bin").is_file():
            hint = (" (only safetensors weights are read: re-save the model with "
                    "save_pretrained(..., safe_serialization=True))")
        raise FileNotFoundError(f"{directory}: missing {', '.join(missing)}{hint}")
    return directory


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return data


def _check_tokenizer_options(directory: Path) -> None:
    """Refuses Hugging Face tokenizer settings that WordPieceTokenizer cannot reproduce."""
    path = directory / "tokenizer_config.json"
    if not path.is_file():
        return
    config = _read_json(path)
    for field in ("do_basic_tokenize", "tokenize_chinese_chars"):
        if config.get(field, True) is False:
            raise ValueError(
                f"{path}: {field} is false, but tfptlm's WordPiece tokenizer always "
                "applies BERT's basic tokenization (punctuation and CJK splitting)"
            )


def read_hf_bert_config(directory: str | Path) -> dict:
    """Returns :class:`BertBackbone` arguments from a Hugging Face ``config.json``."""
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"no config.json in {directory}")
    config = _read_json(path)
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
    directory = check_hf_bert_folder(directory)
    settings = read_hf_bert_config(directory)
    _check_tokenizer_options(directory)
    weights_path = directory / "model.safetensors"
    tensors = _read_safetensors(weights_path)
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
        if not np.isfinite(value).all():
            raise ValueError(f"{weights_path}: tensor {key!r} holds NaN or infinite values")
        variable.assign(value)
    tokenizer = WordPieceTokenizer.load(directory)
    if tokenizer.vocabulary_size > settings["vocabulary_size"]:
        raise ValueError(
            f"{directory}: vocab.txt has {tokenizer.vocabulary_size} tokens but config.json's "
            f"vocab_size (the word embeddings) is only {settings['vocabulary_size']}"
        )
    return backbone, tokenizer


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file; a truncated or damaged header is a ``ValueError``.

    The format has no checksum: damage inside the tensor data goes unnoticed
    unless it makes a value NaN or infinite (checked by the caller).
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except SafetensorError as error:
        raise ValueError(
            f"{path} is not a readable safetensors file ({error}); it may be truncated or damaged"
        ) from None


def _is_previous_conversion(directory: Path) -> bool:
    path = directory / CONVERSION_FILE
    if not path.is_file():
        return False
    try:
        return _read_json(path).get("format") == CONVERSION_FORMAT
    except (ValueError, OSError):
        return False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert_hf_bert(source_dir: str | Path, output_dir: str | Path) -> Path:
    """Converts a local Hugging Face BERT folder into a tfptlm backbone directory.

    Writes ``backbone.keras``, ``tokenizer/`` and ``conversion.json`` (source
    folder, the Hugging Face ``config.json``, tfptlm version, date) to
    ``output_dir``. The output is built in a temporary folder next to it and
    moved in at the end, so a failed conversion leaves nothing behind.

    Args:
        source_dir: folder with ``config.json``, ``model.safetensors`` and
            ``vocab.txt`` (and optionally ``tokenizer_config.json``).
        output_dir: a new or empty folder, or the folder of a previous
            conversion (its backbone, tokenizer and conversion.json are
            replaced; other files in it are left alone). Any other non-empty
            folder is an error: user files are never overwritten.

    Returns:
        ``output_dir`` as a Path.

    Example:

    >>> out = convert_hf_bert("all-MiniLM-L6-v2", "minilm")          # doctest: +SKIP
    >>> backbone = keras.saving.load_model(out / "backbone.keras")   # doctest: +SKIP
    >>> tokenizer = WordPieceTokenizer.load(out / "tokenizer")       # doctest: +SKIP
    """
    import keras

    import tfptlm

    source_dir = check_hf_bert_folder(source_dir)
    output_dir = Path(output_dir)
    if output_dir.exists():
        if not output_dir.is_dir():
            raise FileExistsError(f"{output_dir} exists and is not a folder")
        if any(output_dir.iterdir()) and not _is_previous_conversion(output_dir):
            raise FileExistsError(
                f"{output_dir} is not empty and holds no {CONVERSION_FILE} of a previous "
                "conversion; choose a new or empty folder (existing files are never overwritten)"
            )
    if output_dir.resolve() == source_dir.resolve():
        raise ValueError(f"the output folder {output_dir} is the source folder")

    backbone, tokenizer = load_hf_bert(source_dir)
    record = {
        "format": CONVERSION_FORMAT,
        "source": {
            "type": "huggingface-bert",
            "path": str(source_dir.resolve()),
            "model.safetensors sha256": _sha256(source_dir / "model.safetensors"),
        },
        "hf_config": _read_json(source_dir / "config.json"),
        "tfptlm_version": tfptlm.__version__,
        "keras_version": keras.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "backbone": BACKBONE_FILE,
        "tokenizer": TOKENIZER_DIR,
    }

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.partial-", dir=output_dir.parent))
    try:
        backbone.save(staging / BACKBONE_FILE)
        tokenizer.save(staging / TOKENIZER_DIR)
        (staging / CONVERSION_FILE).write_text(
            json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        output_dir.mkdir(exist_ok=True)
        # conversion.json last: a folder with it always holds a complete conversion.
        for name in (BACKBONE_FILE, TOKENIZER_DIR, CONVERSION_FILE):
            target = output_dir / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            (staging / name).replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output_dir
