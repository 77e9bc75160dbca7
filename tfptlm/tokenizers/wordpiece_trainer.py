"""Learning a WordPiece vocabulary from text files.

Words are counted with the same pre-tokenizer the `WordPieceTokenizer` uses,
then tensorflow-text's WordPiece learner picks the pieces (see
`wordpiece_learner`).

Example:

>>> vocab = train_wordpiece_vocabulary("corpus/*.txt", vocab_size=8000)
...                                                         # doctest: +SKIP
>>> vocab[:5]                                               # doctest: +SKIP
['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
>>> tokenizer = WordPieceTokenizer(vocab)                   # doctest: +SKIP
"""

from collections.abc import Sequence

from tfptlm.tokenizers.word_counts import count_words
from tfptlm.tokenizers.wordpiece_learner import learn_vocabulary

DEFAULT_RESERVED_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def train_wordpiece_vocabulary(
    files: list[str] | str,
    vocab_size: int,
    lowercase: bool = True,
    strip_accents: bool = True,
    reserved_tokens: Sequence[str] = DEFAULT_RESERVED_TOKENS,
    show_progress: bool = True,
    suffix_indicator: str = "##",
    character_coverage: float = 1.0,
) -> list[str]:
    """Learns a WordPiece vocabulary of at most `vocab_size` tokens.

    Args:
        files: a glob pattern, a path, or a list of them (UTF-8 text files,
            any line structure).
        vocab_size: the maximum vocabulary size, reserved tokens included.
        lowercase, strip_accents: pre-tokenizer options; pass the same values
            to the `WordPieceTokenizer` that will use the vocabulary.
        reserved_tokens: tokens placed first, in this order (ids 0, 1, ...).
        show_progress: show a progress bar while reading.
        suffix_indicator: prefix of word-continuation pieces.
        character_coverage: keep the most frequent characters that make up
            this fraction of the text; rarer characters become `[UNK]` (see
            `wordpiece_learner.learn_vocabulary`).

    Returns:
        The vocabulary: reserved tokens, then single characters, then the
        learned pieces by decreasing frequency.

    Raises:
        FileNotFoundError: if a path or pattern matches no file (named).
        ValueError: on invalid UTF-8 (file and line named), on a corpus
            without any words, or on a `vocab_size` too small.
    """
    if vocab_size - len(reserved_tokens) < 2:
        raise ValueError(
            f"vocab_size={vocab_size} leaves no room next to the "
            f"{len(reserved_tokens)} reserved tokens."
        )
    counts = count_words(files, lowercase, strip_accents, show_progress)
    if not counts:
        raise ValueError(f"The training files {files!r} contain no text.")

    return learn_vocabulary(
        counts,
        vocab_size,
        list(reserved_tokens),
        suffix_indicator=suffix_indicator,
        character_coverage=character_coverage,
        show_progress=show_progress,
    )
