"""Choosing the WordPiece frequency threshold that fills a target vocabulary.

tensorflow-text's learner builds a vocabulary from word counts for a given
frequency threshold (`learn_with_thresh`: a piece is kept when it occurs at
least that often). Its own `learn` bisects the threshold from the largest word
count down, which costs ~log2(max count) learning passes and may return a
vocabulary larger than asked. Here the search starts near the answer (the
count of the `vocab_size`-th most frequent word), doubles the threshold until
the vocabulary fits, then bisects; the result never exceeds `vocab_size`.

Example:

>>> learn_vocabulary({"low": 5, "lower": 2, "newest": 6}, 40, ["[UNK]"])[:4]
['[UNK]', 'e', 'l', 'n']
"""

import collections
from collections.abc import Mapping, Sequence

import tqdm
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib

_LIB = wordpiece_tokenizer_learner_lib

# A vocabulary this close below the target size is accepted without more search.
SLACK_RATIO = 0.05
# tensorflow-text's defaults.
NUM_ITERATIONS = 4
MAX_TOKEN_LENGTH = 50
MAX_INPUT_WORDS = 5_000_000


def learn_vocabulary(
    word_counts: Mapping[str, int],
    vocab_size: int,
    reserved_tokens: Sequence[str],
    suffix_indicator: str = "##",
    character_coverage: float = 1.0,
    show_progress: bool = False,
) -> list[str]:
    """Learns the largest WordPiece vocabulary of at most `vocab_size` tokens.

    Args:
        word_counts: word -> count, as produced by the pre-tokenizer.
        vocab_size: the maximum number of tokens, reserved tokens included.
        reserved_tokens: tokens placed first, in order.
        suffix_indicator: prefix of word-continuation pieces.
        character_coverage: keep the most frequent characters that together
            make up this fraction of the text (as SentencePiece does; 1.0
            keeps all, lower it for noisy text); words with other characters
            are not learned from and become the unknown token. Each kept
            character takes two entries (`c` and `##c`), and at most half the
            free slots go to characters whatever the coverage.
        show_progress: show a tqdm bar with one step per learning pass.

    Returns:
        Reserved tokens, single characters, then learned pieces.

    Raises:
        ValueError: if `vocab_size` leaves no room next to the reserved tokens.
    """
    free_slots = vocab_size - len(reserved_tokens)
    if free_slots < 2:
        raise ValueError(
            f"vocab_size={vocab_size} leaves no room next to the "
            f"{len(reserved_tokens)} reserved tokens."
        )
    max_unique_characters = min(
        count_characters_to_cover(word_counts, character_coverage),
        free_slots // 2,
    )
    params = _LIB.Params(
        upper_thresh=None,
        lower_thresh=None,
        num_iterations=NUM_ITERATIONS,
        max_input_tokens=MAX_INPUT_WORDS,
        max_token_length=MAX_TOKEN_LENGTH,
        max_unique_chars=max_unique_characters,
        vocab_size=vocab_size,
        slack_ratio=SLACK_RATIO,
        include_joiner_token=True,
        joiner=suffix_indicator,
        reserved_tokens=list(reserved_tokens),
    )
    words = _LIB.get_input_words(
        list(word_counts.items()), params.reserved_tokens, MAX_TOKEN_LENGTH
    )
    allowed_characters = _LIB.get_allowed_chars(words, max_unique_characters)
    words = _LIB.filter_input_words(words, allowed_characters, MAX_INPUT_WORDS)
    counts = [count for _, count in words]  # sorted, most frequent first
    largest_count = counts[0] if counts else 0

    progress = tqdm.tqdm(
        desc="Learning vocabulary", unit=" passes", disable=not show_progress
    )

    def learn_at(threshold: int) -> list[str]:
        vocabulary = _LIB.learn_with_thresh(words, threshold, params)
        progress.set_postfix(threshold=threshold, size=len(vocabulary))
        progress.update()
        return vocabulary

    with progress:
        # 1. From a likely lower bound, double the threshold until it fits.
        too_low = 0  # the largest threshold known to give too many tokens
        threshold = counts[vocab_size] if len(counts) > vocab_size else 1
        vocabulary = learn_at(threshold)
        while len(vocabulary) > vocab_size:
            if threshold > largest_count:  # only characters left: cannot happen
                raise RuntimeError(f"No threshold gives {vocab_size} tokens.")
            too_low = threshold
            threshold *= 2
            vocabulary = learn_at(threshold)

        # 2. Bisect: the smallest threshold that fits gives the largest vocab.
        while threshold - too_low > 1 and (
            len(vocabulary) < (1 - SLACK_RATIO) * vocab_size
        ):
            middle = (too_low + threshold) // 2
            candidate = learn_at(middle)
            if len(candidate) <= vocab_size:
                threshold, vocabulary = middle, candidate
            else:
                too_low = middle
    return vocabulary


def count_characters_to_cover(
    word_counts: Mapping[str, int], coverage: float
) -> int:
    """How many of the most frequent characters make up `coverage` of the text.

    Example:

    >>> count_characters_to_cover({"aab": 1, "c": 1}, 0.75)
    2
    """
    character_counts = collections.Counter()
    for word, count in word_counts.items():
        for character in word:
            character_counts[character] += count
    total = sum(character_counts.values())
    covered = 0
    for rank, (_, count) in enumerate(character_counts.most_common(), start=1):
        covered += count
        if covered >= coverage * total:
            return rank
    return len(character_counts)
