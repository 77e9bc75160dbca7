"""Counting words in text files with the tokenizer's own pre-tokenizer.

Example:

>>> counts = count_words(["corpus.txt"])                    # doctest: +SKIP
>>> counts.most_common(2)                                   # doctest: +SKIP
[('the', 1042), (',', 977)]
"""

import collections
import glob
import os

import tensorflow as tf
import tqdm

from tfptlm.tokenizers.normalization import pretokenize

# Lines pre-tokenized per TF call: large enough to amortize the call overhead.
_BATCH_SIZE = 4096


def expand_files(files: list[str] | str) -> list[str]:
    """Expands a glob pattern, a path or a list of them into existing files.

    Raises:
        FileNotFoundError: naming the pattern or path that matches no file.
    """
    patterns = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    if not patterns:
        raise ValueError("No training files were given.")
    paths = []
    for pattern in patterns:
        pattern = os.fspath(pattern)
        if os.path.isfile(pattern):  # also a literal name such as "a[1].txt"
            matches = [pattern]
        else:
            matches = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
        if not matches:
            raise FileNotFoundError(f"No file matches {pattern!r}.")
        paths.extend(matches)
    return paths


def decode_line(raw_line: bytes, path: str, line_number: int) -> str:
    """Decodes one line of a file as UTF-8 and drops its line ending.

    Raises:
        ValueError: naming the file and 1-based line number of invalid UTF-8.
    """
    try:
        return raw_line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}, line {line_number}: invalid UTF-8 "
            f"({error.reason} at byte {error.start})."
        ) from None


def count_words(
    files: list[str] | str,
    lowercase: bool = True,
    strip_accents: bool = True,
    show_progress: bool = True,
) -> collections.Counter:
    """Counts the words of text files, as `pretokenize` splits them.

    Args:
        files: a glob pattern, a path, or a list of them.
        lowercase, strip_accents: the pre-tokenizer options (must match the
            tokenizer that will use the vocabulary).
        show_progress: show a tqdm progress bar over the bytes read.

    Returns:
        A `collections.Counter` mapping each word (str) to its count.
    """
    paths = expand_files(files)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def words_of(lines):
        return pretokenize(lines, lowercase, strip_accents).flat_values

    counts = collections.Counter()

    def add(lines: list[str]) -> None:
        counts.update(words_of(tf.constant(lines)).numpy().tolist())

    total_bytes = sum(os.path.getsize(path) for path in paths)
    progress = tqdm.tqdm(
        total=total_bytes,
        unit="B",
        unit_scale=True,
        desc="Counting words",
        disable=not show_progress,
    )
    with progress:
        for path in paths:
            with open(path, "rb") as f:
                batch, batch_bytes = [], 0
                for line_number, raw_line in enumerate(f, start=1):
                    batch.append(decode_line(raw_line, path, line_number))
                    batch_bytes += len(raw_line)
                    if len(batch) == _BATCH_SIZE:
                        add(batch)
                        progress.update(batch_bytes)
                        batch, batch_bytes = [], 0
                if batch:
                    add(batch)
                    progress.update(batch_bytes)
    return collections.Counter({word.decode("utf-8"): n for word, n in counts.items()})
