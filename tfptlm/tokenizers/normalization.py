"""In-graph text normalization and word splitting with BERT BasicTokenizer rules.

Only TensorFlow and tensorflow-text ops are used, so the same code runs eagerly,
inside `tf.data` / `tf.function` graphs and inside an exported SavedModel.

The rules follow the original BERT `BasicTokenizer` (and Hugging Face's):

1. tabs and newlines become spaces, then every other "other" character
   (Unicode category C: control, format, private use) and U+FFFD is removed;
2. optional lowercasing (`str.lower` semantics, like BERT);
3. optional accent stripping: NFD decomposition, then combining marks (Mn) are
   dropped; otherwise the text is NFC-normalized;
4. the text is split on whitespace (dropped), on punctuation (each mark is kept
   as its own word) and around every CJK ideograph (each is its own word).

Example:

>>> words = pretokenize(["Café au lait, s'il vous plaît!", "我爱NLP"])
>>> [word.decode() for word in words[0].numpy()]
['cafe', 'au', 'lait', ',', 's', "'", 'il', 'vous', 'plait', '!']
>>> [word.decode() for word in words[1].numpy()]
['我', '爱', 'nlp']
"""

import tensorflow as tf
import tensorflow_text as tf_text

# Whitespace: ASCII whitespace plus every Unicode space separator (NBSP, U+3000).
WHITESPACE_PATTERN = r"[\s\p{Z}]+"

# Punctuation as BERT defines it: all non-alphanumeric ASCII printable
# characters (such as `$`, `+`, `^`) plus every Unicode punctuation character.
PUNCTUATION_PATTERN = r"[!-/:-@\[-`{-~\p{P}]"

# The CJK Unified Ideograph blocks that BERT splits into single characters.
CJK_PATTERN = (
    r"[\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}"
    r"\x{2A700}-\x{2B73F}\x{2B740}-\x{2B81F}\x{2B820}-\x{2CEAF}"
    r"\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]"
)

# Characters that are deleted outright (tab, newline and carriage return are
# turned into spaces before this pattern is applied).
CONTROL_PATTERN = r"[\p{C}\x{FFFD}]"

_KEEP_PATTERN = f"{PUNCTUATION_PATTERN}|{CJK_PATTERN}"
_SPLIT_PATTERN = f"{WHITESPACE_PATTERN}|{_KEEP_PATTERN}"
# The characters of WHITESPACE_PATTERN other than the ASCII space: RE2's `\s`
# ([\t\n\f\r ]) and the non-ASCII separators (`[^\x00-\x7F\P{Z}]` is \p{Z}
# without ASCII).
_OTHER_WHITESPACE_PATTERN = r"[\t\n\f\r]|[^\x00-\x7F\P{Z}]"


def normalize(
    texts: tf.Tensor | str | list[str],
    lowercase: bool = True,
    strip_accents: bool = True,
) -> tf.Tensor:
    """Cleans, optionally lowercases and optionally strips accents from text.

    Args:
        texts: a string or string tensor of any shape.
        lowercase: lowercase the text (Python `str.lower` semantics).
        strip_accents: remove accents (NFD, then drop combining marks).

    Returns:
        A string tensor of the same shape.

    Example:

    >>> normalize("Crème\\tBrûlée").numpy().decode()
    'creme brulee'
    """
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    texts = tf.strings.regex_replace(texts, r"[\t\n\r]", " ")
    texts = tf.strings.regex_replace(texts, CONTROL_PATTERN, "")
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    if strip_accents:
        texts = tf_text.normalize_utf8(texts, "NFD")
        texts = tf.strings.regex_replace(texts, r"\p{Mn}", "")
    else:
        texts = tf_text.normalize_utf8(texts, "NFC")
    return texts


def split_words(texts: tf.Tensor | str | list[str]) -> tf.RaggedTensor:
    """Splits already-normalized text on whitespace, punctuation and CJK.

    A NUL byte is an ordinary character here (`tf_text.regex_split` would end
    the text there); `normalize` removes it anyway.

    Args:
        texts: a string or a string tensor of shape `[N]`.

    Returns:
        For `[N]` input, a `tf.RaggedTensor` of shape `[N, (words)]`; for a
        scalar, a 1-D string tensor of words.

    Example:

    >>> split_words(["hi, there"]).to_list()
    [[b'hi', b',', b'there']]
    """
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    if texts.shape.rank == 0:
        return split_words(texts[tf.newaxis])[0]
    # The words of `tf_text.regex_split(texts, _SPLIT_PATTERN, _KEEP_PATTERN)`
    # (as `split_words_with_offsets` finds them), in about 2/3 of its time:
    # regex_split pays per delimiter and most delimiters are spaces, so every
    # whitespace character becomes a space, every kept mark gets spaces around
    # it, and a plain split on the space drops the empty pieces.
    spaced = tf.strings.regex_replace(texts, _OTHER_WHITESPACE_PATTERN, " ")
    spaced = tf.strings.regex_replace(spaced, _KEEP_PATTERN, r" \0 ")
    pieces = tf.strings.split(spaced, sep=" ")
    return tf.ragged.boolean_mask(pieces, pieces != "")


def split_words_with_offsets(
    texts: tf.Tensor | list[str],
) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
    """Splits raw (not normalized) text into words, with their UTF-8 byte offsets.

    The split rules are those of `split_words`; normalizing each word
    afterwards gives the same words as `pretokenize` on the whole text, so
    every word keeps its exact position in the user's original string.

    Args:
        texts: a string tensor of shape `[N]`.

    Returns:
        `(words, starts, ends)`, each a `tf.RaggedTensor` `[N, (words)]`; the
        offsets are int64 byte positions in the original strings.

    Example:

    >>> words, starts, ends = split_words_with_offsets(["Héllo, 世界"])
    >>> words.to_list(), starts.to_list(), ends.to_list()
    ([[b'H\xc3\xa9llo', b',', b'\xe4\xb8\x96', b'\xe7\x95\x8c']], [[0, 6, 8, 11]], [[6, 7, 11, 14]])
    """
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    # regex_split_with_offsets stops at a NUL byte; \x01 is dropped by
    # `normalize` just like NUL and keeps every offset where it was.
    texts = tf.strings.regex_replace(texts, r"\x00", "\x01")
    return tf_text.regex_split_with_offsets(texts, _SPLIT_PATTERN, _KEEP_PATTERN)


def pretokenize(
    texts: tf.Tensor | str | list[str],
    lowercase: bool = True,
    strip_accents: bool = True,
) -> tf.RaggedTensor:
    """Normalizes text and splits it into words (BERT BasicTokenizer).

    This is the single pre-tokenizer shared by vocabulary training and
    tokenization, so both always agree on what a word is.

    Args:
        texts: a string or a string tensor of shape `[N]`.
        lowercase: lowercase the text first.
        strip_accents: strip accents first.

    Returns:
        A `tf.RaggedTensor` of words of shape `[N, (words)]` (a 1-D string
        tensor for a scalar input).

    Example:

    >>> pretokenize(["Hello, World!"], lowercase=False).to_list()
    [[b'Hello', b',', b'World', b'!']]
    """
    return split_words(normalize(texts, lowercase, strip_accents))
