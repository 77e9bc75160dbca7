"""One entry point to load or train any tfptlm tokenizer.

Example:

>>> tokenizer = train_tokenizer("sentencepiece", "corpus.txt", 8000)  # doctest: +SKIP
>>> tokenizer.save("my_tokenizer")                                    # doctest: +SKIP
>>> load_tokenizer("my_tokenizer")                                    # doctest: +SKIP
<tfptlm.tokenizers.sentencepiece.SentencePieceTokenizer object at ...>
"""

import inspect
import os
from typing import Any

from tfptlm.tokenizers import byte_bpe, sentencepiece, wordpiece_files
from tfptlm.tokenizers.byte_bpe import BytePairTokenizer, train_byte_bpe
from tfptlm.tokenizers.sentencepiece import SentencePieceTokenizer, read_config, train_sentencepiece
from tfptlm.tokenizers.wordpiece import WordPieceTokenizer
from tfptlm.tokenizers.wordpiece_trainer import train_wordpiece_vocabulary

AnyTokenizer = WordPieceTokenizer | SentencePieceTokenizer | BytePairTokenizer

TOKENIZER_CLASSES: dict[str, type] = {
    wordpiece_files.TOKENIZER_TYPE: WordPieceTokenizer,
    sentencepiece.TOKENIZER_TYPE: SentencePieceTokenizer,
    byte_bpe.TOKENIZER_TYPE: BytePairTokenizer,
}

# The files that identify each kind of folder, checked in this order.
_KIND_FILES = (
    (sentencepiece.TOKENIZER_TYPE, (sentencepiece.MODEL_FILE,)),
    (byte_bpe.TOKENIZER_TYPE, (byte_bpe.VOCABULARY_FILE, byte_bpe.MERGES_FILE)),
    (wordpiece_files.TOKENIZER_TYPE, (wordpiece_files.VOCABULARY_FILE,)),
)


def load_tokenizer(directory: str | os.PathLike) -> AnyTokenizer:
    """Loads the tokenizer saved in `directory`, whatever its kind.

    The kind is the `"type"` of a tfptlm `tokenizer.json`; without one, it is
    guessed from the files: `spm.model` -> SentencePiece, `vocab.json` and
    `merges.txt` -> byte-level BPE, `vocab.txt` -> WordPiece.

    Raises:
        FileNotFoundError: if `directory` holds no tokenizer (named).
        ValueError: if `tokenizer.json` names an unknown type.

    Example:

    >>> tokenizer = load_tokenizer("my_tokenizer")  # doctest: +SKIP
    >>> tokenizer.pad_id                            # doctest: +SKIP
    0
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Tokenizer folder not found: {directory!r}.")
    config = read_config(directory)
    # A Hugging Face tokenizer.json has a "model" entry and no "type".
    if config is not None and "model" not in config:
        kind = config.get("type")
        if kind not in TOKENIZER_CLASSES:
            raise ValueError(
                f"{os.path.join(directory, sentencepiece.CONFIG_FILE)}: unknown "
                f"tokenizer type {kind!r}; expected one of {sorted(TOKENIZER_CLASSES)}."
            )
        return TOKENIZER_CLASSES[kind].load(directory)
    for kind, names in _KIND_FILES:
        if all(os.path.isfile(os.path.join(directory, name)) for name in names):
            return TOKENIZER_CLASSES[kind].load(directory)
    raise FileNotFoundError(
        f"No tokenizer in {directory!r}: expected a tfptlm tokenizer.json, "
        "spm.model (SentencePiece), vocab.json + merges.txt (byte-level BPE) "
        "or vocab.txt (WordPiece)."
    )


def train_tokenizer(
    kind: str, files: str | os.PathLike | list[str], vocab_size: int, **options: Any
) -> AnyTokenizer:
    """Trains a tokenizer of the given kind on text files.

    Args:
        kind: "wordpiece", "sentencepiece" or "byte_bpe".
        files: a glob pattern, a path, or a list of them.
        vocab_size: the vocabulary size, special tokens included.
        **options: options of `train_sentencepiece` / `train_byte_bpe`; for
            WordPiece, options of `train_wordpiece_vocabulary` and of
            `WordPieceTokenizer` (`lowercase` goes to both).

    Raises:
        ValueError: on an unknown kind.
        TypeError: on an option the chosen kind does not take.

    Example:

    >>> tokenizer = train_tokenizer("byte_bpe", "corpus.txt", 8000,
    ...                             num_sentinels=0)  # doctest: +SKIP
    """
    if kind == sentencepiece.TOKENIZER_TYPE:
        return train_sentencepiece(files, vocab_size, **options)
    if kind == byte_bpe.TOKENIZER_TYPE:
        return train_byte_bpe(files, vocab_size, **options)
    if kind == wordpiece_files.TOKENIZER_TYPE:
        return _train_wordpiece(files, vocab_size, options)
    raise ValueError(
        f"Unknown tokenizer kind {kind!r}; expected one of {sorted(TOKENIZER_CLASSES)}."
    )


def _train_wordpiece(
    files: str | os.PathLike | list[str], vocab_size: int, options: dict[str, Any]
) -> WordPieceTokenizer:
    """Learns a vocabulary and builds a `WordPieceTokenizer` with the shared options."""
    trainer_names = set(inspect.signature(train_wordpiece_vocabulary).parameters)
    tokenizer_names = set(inspect.signature(WordPieceTokenizer).parameters)
    unknown = set(options) - trainer_names - tokenizer_names
    if unknown:
        raise TypeError(f"Unknown WordPiece option(s) {sorted(unknown)}.")
    vocabulary = train_wordpiece_vocabulary(
        files, vocab_size, **{k: v for k, v in options.items() if k in trainer_names}
    )
    return WordPieceTokenizer(
        vocabulary, **{k: v for k, v in options.items() if k in tokenizer_names}
    )
