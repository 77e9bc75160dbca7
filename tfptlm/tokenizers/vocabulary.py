"""Reading, writing and checking WordPiece vocabularies (`vocab.txt`).

A `vocab.txt` holds one token per line; the id of a token is its 0-based line
index. This is the format of BERT and of Hugging Face BERT checkpoints.

Example:

>>> write_vocabulary(["[PAD]", "[UNK]", "hello"], "/tmp/vocab.txt")
>>> read_vocabulary("/tmp/vocab.txt")
['[PAD]', '[UNK]', 'hello']
"""

import os
from collections.abc import Iterable


def read_vocabulary(path: str) -> list[str]:
    """Reads a `vocab.txt` file (UTF-8, one token per line).

    Args:
        path: the file to read.

    Returns:
        The tokens in file order.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the file is not valid UTF-8 (the message names the line).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Vocabulary file not found: {path}")
    tokens = []
    with open(path, "rb") as f:
        for line_number, raw_line in enumerate(f, start=1):
            try:
                line = raw_line.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{path}, line {line_number}: invalid UTF-8 ({error.reason})."
                ) from None
            tokens.append(line.rstrip("\n").rstrip("\r"))
    return tokens


def write_vocabulary(vocabulary: Iterable[str], path: str) -> None:
    """Writes tokens to `path`, one per line, UTF-8.

    Args:
        vocabulary: the tokens, in id order.
        path: the file to write (overwritten if it exists).
    """
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for token in vocabulary:
            f.write(token + "\n")


def check_vocabulary(vocabulary: list[str], required_tokens: Iterable[str]) -> None:
    """Raises a `ValueError` if the vocabulary is malformed.

    Checks that no token is empty, contains a newline or is repeated, and that
    every required token (e.g. the special tokens) is present. Line numbers in
    messages are 1-based, as in `vocab.txt`.

    Args:
        vocabulary: the tokens, in id order.
        required_tokens: tokens that must be present.

    Example:

    >>> check_vocabulary(["[UNK]", "a", "a"], ["[UNK]"])
    Traceback (most recent call last):
    ValueError: Duplicate token 'a' in the vocabulary: lines 2 and 3.
    """
    first_line = {}
    for index, token in enumerate(vocabulary):
        line_number = index + 1
        if not isinstance(token, str):
            raise ValueError(
                f"Vocabulary line {line_number}: tokens must be strings, "
                f"got {token!r}."
            )
        if not token:
            raise ValueError(f"Empty token in the vocabulary at line {line_number}.")
        if "\n" in token:
            raise ValueError(
                f"Token {token!r} at vocabulary line {line_number} contains a "
                "newline."
            )
        if token in first_line:
            raise ValueError(
                f"Duplicate token {token!r} in the vocabulary: lines "
                f"{first_line[token]} and {line_number}."
            )
        first_line[token] = line_number
    for token in required_tokens:
        if token not in first_line:
            raise ValueError(
                f"Special token {token!r} is not in the vocabulary "
                f"({len(vocabulary)} tokens). Add it, or pass the token your "
                "vocabulary uses instead."
            )
