"""The fast word split of `split_words` gives exactly the words of a regex_split on the BERT patterns."""

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from tfptlm.tokenizers import WordPieceTokenizer
from tfptlm.tokenizers import normalization

TRICKY = [
    "",
    "   ",
    "hello, world!",
    "a  ,b,,c ...d",
    "tab\tnew\nline\rform\ffeed vertical\vtab",
    "nbsp\u00a0ideographic\u3000line\u2028para\u2029narrow\u202fmath\u205fogham\u1680en\u2002x",
    "zero\u200bwidth is no space; NEL\x85 and \x1c are no spaces either",
    "我爱NLP，好！「引号」 𠀁 \uf900 \U0002f800",
    "$5+3^2=`x` ~ {y} | <z> @home #tag",
    "e\u0301 cafe\u0301 Ⅻ ﬁ 😀👍🏽 ¿qué? «ok» — – ‘x’ “y”",
    " leading and trailing ",
    "\xa0\u3000 only separators \u2029",
]


def test_split_words_matches_regex_split():
    texts = tf.constant(TRICKY)
    expected = tf_text.regex_split(texts, normalization._SPLIT_PATTERN, normalization._KEEP_PATTERN)
    assert normalization.split_words(texts).to_list() == expected.to_list()


def test_split_words_matches_the_words_with_offsets():
    words, _, _ = normalization.split_words_with_offsets(tf.constant(TRICKY))
    assert normalization.split_words(tf.constant(TRICKY)).to_list() == words.to_list()


def test_split_words_by_hand():
    assert normalization.split_words(["a  ,b\u3000我c"]).to_list() == [[b"a", b",", b"b", "我".encode(), b"c"]]
    assert normalization.split_words("x\ty").numpy().tolist() == [b"x", b"y"]
    assert normalization.split_words(tf.constant([], tf.string)).to_list() == []


def test_other_whitespace_is_the_whitespace_class_without_the_space():
    code_points = np.array([c for c in range(0x110000) if not 0xD800 <= c < 0xE000])
    characters = tf.constant([chr(c).encode() for c in code_points])
    whitespace = tf.strings.regex_full_match(characters, normalization.WHITESPACE_PATTERN[:-1]).numpy()
    other = tf.strings.regex_full_match(characters, normalization._OTHER_WHITESPACE_PATTERN).numpy()
    np.testing.assert_array_equal(whitespace, other | (code_points == 0x20))


def test_too_long_words_in_graph_and_only_where_too_long():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "##a", "é", "##é"]
    tokenizer = WordPieceTokenizer(vocab, max_chars_per_word=4, strip_accents=False)
    tokenize = tf.function(tokenizer.tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
    # "éééé": 4 characters, 8 bytes (over the limit in bytes only); "aaaaa": 5 characters.
    assert tokenize(tf.constant(["aaaa éééé", "aaaaa a"])).to_list() == [[5, 6, 6, 6, 7, 8, 8, 8], [1, 5]]
    assert tokenize(tf.constant(["aa", "é"])).to_list() == [[5, 6], [7]]
