"""The files of a saved WordPiece tokenizer folder.

A tfptlm folder holds `vocab.txt` and `tokenizer.json` (the options, with
`"type": "wordpiece"`). A Hugging Face BERT folder holds `vocab.txt` and maybe
`tokenizer_config.json` and a Hugging Face `tokenizer.json`; its options are
translated to tfptlm's.

Example:

>>> write_options("/tmp/tok", {"lowercase": False})
>>> read_options("/tmp/tok", ["lowercase"])
{'lowercase': False}
"""

import json
import os
from collections.abc import Iterable
from typing import Any

VOCABULARY_FILE = "vocab.txt"
CONFIG_FILE = "tokenizer.json"
HF_CONFIG_FILE = "tokenizer_config.json"
TOKENIZER_TYPE = "wordpiece"

# Hugging Face `tokenizer_config.json` field -> WordPieceTokenizer argument.
_HF_SPECIAL_TOKENS = {
    "unk_token": "unknown_token",
    "pad_token": "pad_token",
    "cls_token": "cls_token",
    "sep_token": "sep_token",
    "mask_token": "mask_token",
}


def write_options(directory: str | os.PathLike, options: dict[str, Any]) -> None:
    """Writes `options` to `directory/tokenizer.json` with the tokenizer type."""
    os.makedirs(directory, exist_ok=True)
    config = {"type": TOKENIZER_TYPE, **options}
    with open(os.path.join(directory, CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
        f.write("\n")


def read_options(directory: str, option_names: Iterable[str]) -> dict[str, Any]:
    """Reads the tokenizer options saved in `directory`.

    Uses the tfptlm `tokenizer.json` if there is one, otherwise the Hugging
    Face files, otherwise returns `{}` (the defaults).

    Args:
        directory: the tokenizer folder.
        option_names: the accepted option names (others are an error).
    """
    options = _read_tfptlm_options(directory)
    if options is None:
        return _read_hugging_face_options(directory)
    path = os.path.join(directory, CONFIG_FILE)
    unknown = set(options) - set(option_names)
    if unknown:
        raise ValueError(f"{path}: unknown field(s) {sorted(unknown)}.")
    return options


def _read_json(path: str) -> dict[str, Any] | None:
    """Returns the JSON object in `path`, or None if there is no such file."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object.")
    return data


def _read_tfptlm_options(directory: str) -> dict[str, Any] | None:
    """Options from a tfptlm `tokenizer.json`; None if absent.

    A Hugging Face `tokenizer.json` (it has a "model" entry) also gives None.
    """
    path = os.path.join(directory, CONFIG_FILE)
    config = _read_json(path)
    if config is None or "model" in config:
        return None
    if config.get("type") != TOKENIZER_TYPE:
        raise ValueError(
            f"{path} describes a {config.get('type')!r} tokenizer, "
            f"not {TOKENIZER_TYPE!r}."
        )
    return {key: value for key, value in config.items() if key != "type"}


def _read_hugging_face_options(directory: str) -> dict[str, Any]:
    """Options of a Hugging Face BERT tokenizer folder ({} if it has none).

    Reads the special tokens and lowercasing from `tokenizer_config.json`,
    or lowercasing from the `BertNormalizer` of a Hugging Face
    `tokenizer.json`. Hugging Face strips accents exactly when it lowercases
    unless `strip_accents` is set; the same rule is used here.
    """
    hf_config = _read_json(os.path.join(directory, HF_CONFIG_FILE)) or {}
    options = {}
    for hf_name, name in _HF_SPECIAL_TOKENS.items():
        token = hf_config.get(hf_name)
        if isinstance(token, dict):  # a serialized AddedToken
            token = token.get("content")
        if isinstance(token, str):
            options[name] = token

    lowercase = None
    strip_accents = None
    if "do_lower_case" in hf_config:
        lowercase = bool(hf_config["do_lower_case"])
        strip_accents = hf_config.get("strip_accents")
    else:
        hf_tokenizer = _read_json(os.path.join(directory, CONFIG_FILE)) or {}
        normalizer = hf_tokenizer.get("normalizer") or {}
        if normalizer.get("type") == "BertNormalizer":
            lowercase = bool(normalizer.get("lowercase", True))
            strip_accents = normalizer.get("strip_accents")
    if lowercase is not None:
        options["lowercase"] = lowercase
        options["strip_accents"] = lowercase if strip_accents is None else bool(
            strip_accents
        )
    return options
