"""Counting words in text files with the tokenizer's own pre-tokenizer.

Example:

>>> counts = count_words(["corpus.txt"])                    # doctest: +SKIP
>>> counts.most_common(2)                                   # doctest: +SKIP
[('the', 1042), (',', 977)]
"""

import collections
import os

import tensorflow as tf
import tqdm

from tfptlm.text_files import expand_file_patterns, read_lines
from tfptlm.tokenizers.normalization import pretokenize

# Lines pre-tokenized per TF call: large enough to amortize the call overhead.
_BATCH_SIZE = 4096


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
    paths = expand_file_patterns(files)

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
            batch, batch_bytes = [], 0
            for line in read_lines(path):
                batch.append(line)
                batch_bytes += len(line.encode("utf-8")) + 1
                if len(batch) == _BATCH_SIZE:
                    add(batch)
                    progress.update(batch_bytes)
                    batch, batch_bytes = [], 0
            if batch:
                add(batch)
                progress.update(batch_bytes)
    return collections.Counter({word.decode("utf-8"): n for word, n in counts.items()})
