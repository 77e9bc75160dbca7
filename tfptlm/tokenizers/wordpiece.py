"""WordPiece tokenizer: BERT pre-tokenization + tensorflow-text FastWordpiece.

Example:

>>> vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
...          "un", "##aff", "##able", "!"]
>>> tokenizer = WordPieceTokenizer(vocab)
>>> tokenizer.tokenize("Unaffable!").numpy().tolist()
[5, 6, 7, 8]
>>> tokenizer.detokenize([5, 6, 7, 8]).numpy()
b'unaffable !'
"""

import inspect
import os
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from tfptlm.tokenizers.normalization import pretokenize
from tfptlm.tokenizers.normalization import split_words_with_offsets
from tfptlm.tokenizers.vocabulary import check_vocabulary
from tfptlm.tokenizers.vocabulary import read_vocabulary
from tfptlm.tokenizers.vocabulary import write_vocabulary
from tfptlm.tokenizers.wordpiece_files import VOCABULARY_FILE
from tfptlm.tokenizers.wordpiece_files import read_options
from tfptlm.tokenizers.wordpiece_files import write_options


class WordPieceTokenizer(tf.Module):
    """Turns raw strings into WordPiece ids, in eager mode or in any TF graph.

    Text is normalized and split into words by `pretokenize` (BERT
    BasicTokenizer rules: optional lowercasing and accent stripping,
    punctuation and CJK ideographs split off), then each word is split into
    pieces by `tensorflow_text.FastWordpieceTokenizer`. A word that cannot be
    split, or is longer than `max_chars_per_word` characters, becomes
    `unknown_token` (as in BERT and Hugging Face).

    The tokenizer is a `tf.Module`, so it can be attached to a model and
    exported in a SavedModel; it only uses TF and tensorflow-text ops.

    Args:
        vocabulary: list of tokens (id = position) or path to a `vocab.txt`.
        lowercase: lowercase the text before splitting.
        strip_accents: remove accents before splitting.
        unknown_token, pad_token, cls_token, sep_token, mask_token: the
            special tokens; each must be in the vocabulary (ids are looked up,
            never assumed).
        suffix_indicator: prefix of word-continuation pieces.
        max_chars_per_word: longer words (in characters) become `unknown_token`.

    Example:

    >>> tokenizer = WordPieceTokenizer.load("bert-base-uncased")  # doctest: +SKIP
    >>> tokenizer(["Hello world!"])                              # doctest: +SKIP
    <tf.RaggedTensor [[7592, 2088, 999]]>
    """

    def __init__(
        self,
        vocabulary: list[str] | str | os.PathLike,
        lowercase: bool = True,
        strip_accents: bool = True,
        unknown_token: str = "[UNK]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        sep_token: str = "[SEP]",
        mask_token: str = "[MASK]",
        suffix_indicator: str = "##",
        max_chars_per_word: int = 100,
    ):
        super().__init__(name="word_piece_tokenizer")
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = read_vocabulary(os.fspath(vocabulary))
        vocabulary = list(vocabulary)
        special_tokens = [unknown_token, pad_token, cls_token, sep_token, mask_token]
        check_vocabulary(vocabulary, special_tokens)

        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.unknown_token = unknown_token
        self.pad_token = pad_token
        self.cls_token = cls_token
        self.sep_token = sep_token
        self.mask_token = mask_token
        self.suffix_indicator = suffix_indicator
        self.max_chars_per_word = max_chars_per_word
        # Python-side lookups; only the FastWordpiece model is graph state.
        self._vocabulary = tuple(vocabulary)
        self._token_to_id = {token: i for i, token in enumerate(vocabulary)}
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=vocabulary,
            suffix_indicator=suffix_indicator,
            # A character is at most 4 UTF-8 bytes; `_word_pieces` applies the
            # character limit itself.
            max_bytes_per_word=4 * max_chars_per_word,
            token_out_type=tf.int32,
            unknown_token=unknown_token,
            no_pretokenization=True,
            support_detokenization=True,
        )

    # -- tokenization ------------------------------------------------------

    def tokenize(self, texts: str | list[str] | tf.Tensor) -> tf.RaggedTensor:
        """Tokenizes strings into int32 ids.

        Args:
            texts: a string, a list of strings, or a string tensor `[N]`.

        Returns:
            A `tf.RaggedTensor` `[N, (tokens)]` of int32 ids; for a single
            string, a 1-D int32 tensor.

        Example:

        >>> tokenizer(["Unaffable!", ""]).to_list()        # doctest: +SKIP
        [[5, 6, 7, 8], []]
        """
        words = pretokenize(texts, self.lowercase, self.strip_accents)
        # [..., (words), (pieces)] -> [..., (tokens)]
        return self._word_pieces(words).merge_dims(-2, -1)

    def tokenize_words(self, words: tf.RaggedTensor | list[list[str]]) -> tf.RaggedTensor:
        """Tokenizes pre-split words (e.g. CoNLL tokens), keeping the word boundaries.

        Each word is normalized and split like running text (so ``"U.S."``
        gives the pieces of ``u . s .``); a word that normalizes to nothing
        (only control characters) becomes one ``unknown_token``, so every word
        has at least one piece to carry its label.

        Args:
            words: a `tf.RaggedTensor` or nested list of strings `[N, (words)]`.

        Returns:
            An int32 `tf.RaggedTensor` `[N, (words), (pieces)]`.

        Example:

        >>> tokenizer.tokenize_words([["Unaffable", "!"]]).to_list()  # doctest: +SKIP
        [[[5, 6, 7], [8]]]
        """
        if not isinstance(words, tf.RaggedTensor):
            words = tf.ragged.constant(words, dtype=tf.string)
        pieces = self._pieces_per_word(words.flat_values)
        empty = pieces.row_lengths() == 0
        unknown = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(tf.cast(empty, tf.int32))], self.unk_id),
            tf.cast(empty, tf.int64),
        )
        pieces = tf.concat([pieces, unknown], axis=1)
        return tf.RaggedTensor.from_nested_row_splits(
            pieces.flat_values, words.nested_row_splits + pieces.nested_row_splits
        )

    def tokenize_with_offsets(
        self, texts: list[str] | tf.Tensor
    ) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
        """Tokenizes like `tokenize` and gives each token its word's byte span.

        Every piece of a word gets the whole word's UTF-8 byte offsets in the
        original string (words as `split_words_with_offsets` finds them:
        punctuation marks and CJK characters are words of their own), so a
        span of tokens maps back to an exact substring of the input.

        Args:
            texts: a list of strings or a string tensor `[N]`.

        Returns:
            `(ids, starts, ends)`: int32 ids and int64 byte offsets, each a
            `tf.RaggedTensor` `[N, (tokens)]`.

        Example:

        >>> ids, starts, ends = tokenizer.tokenize_with_offsets(["Unaffable!"])  # doctest: +SKIP
        >>> starts.to_list(), ends.to_list()                                     # doctest: +SKIP
        ([[0, 0, 0, 9]], [[9, 9, 9, 10]])
        """
        words, starts, ends = split_words_with_offsets(texts)
        pieces = self._pieces_per_word(words.flat_values)  # [words, (pieces)]
        counts = pieces.row_lengths()
        ids = tf.RaggedTensor.from_nested_row_splits(
            pieces.flat_values, words.nested_row_splits + pieces.nested_row_splits
        ).merge_dims(1, 2)
        return (
            ids,
            ids.with_flat_values(tf.repeat(starts.flat_values, counts)),
            ids.with_flat_values(tf.repeat(ends.flat_values, counts)),
        )

    def _pieces_per_word(self, words: tf.Tensor) -> tf.RaggedTensor:
        """`[W]` raw words -> `[W, (pieces)]` ids (a word may split at punctuation)."""
        pieces = self._word_pieces(pretokenize(words, self.lowercase, self.strip_accents))
        return pieces.merge_dims(1, 2)

    def _word_pieces(self, words: tf.Tensor | tf.RaggedTensor) -> tf.RaggedTensor:
        """Normalized words -> their pieces; too-long words -> `unknown_token`."""
        flat = words.flat_values if isinstance(words, tf.RaggedTensor) else words
        # A word has at least as many bytes as characters: the characters are
        # only counted (and the words copied) when some word has enough bytes.
        limit = self.max_chars_per_word
        flat = tf.cond(
            tf.reduce_any(tf.strings.length(flat) > limit),
            lambda: tf.where(tf.strings.length(flat, unit="UTF8_CHAR") > limit, self.unknown_token, flat),
            lambda: flat,
        )
        words = words.with_flat_values(flat) if isinstance(words, tf.RaggedTensor) else flat
        return self._wordpiece.tokenize(words)

    def __call__(self, texts: str | list[str] | tf.Tensor) -> tf.RaggedTensor:
        """Same as `tokenize`."""
        return self.tokenize(texts)

    def detokenize(self, ids: Any) -> tf.Tensor:
        """Joins ids back into text, for display.

        Pieces are glued to their word, words are separated by one space and
        `pad_token` ids are dropped (so padded dense batches work).

        Args:
            ids: a `tf.RaggedTensor` or dense tensor `[N, (tokens)]`, or a 1-D
                tensor or list of ids.

        Returns:
            A string tensor `[N]` (a scalar string for 1-D input).

        Example:

        >>> tokenizer.detokenize([[5, 6, 7, 0, 0]]).numpy()  # doctest: +SKIP
        array([b'unaffable'], dtype=object)
        """
        if isinstance(ids, (list, tuple)):
            ids = tf.ragged.constant(ids, dtype=tf.int32)
        elif not isinstance(ids, tf.RaggedTensor):
            ids = tf.convert_to_tensor(ids)
        ids = tf.cast(ids, tf.int32)
        if ids.shape.rank == 1:
            ids = tf.boolean_mask(ids, ids != self.pad_id)
        else:
            ids = tf.ragged.boolean_mask(ids, ids != self.pad_id)
        return self._wordpiece.detokenize(ids)

    # -- vocabulary ---------------------------------------------------------

    @property
    def vocabulary(self) -> list[str]:
        """The tokens, in id order (a copy)."""
        return list(self._vocabulary)

    @property
    def vocabulary_size(self) -> int:
        """The number of tokens."""
        return len(self._vocabulary)

    def id_to_token(self, token_id: int) -> str:
        """Returns the token with id `token_id` (ValueError if out of range)."""
        if not 0 <= int(token_id) < len(self._vocabulary):
            raise ValueError(
                f"Token id {token_id} is out of range [0, {len(self._vocabulary)})."
            )
        return self._vocabulary[int(token_id)]

    def token_to_id(self, token: str) -> int:
        """Returns the id of `token` (ValueError if it is not in the vocabulary)."""
        if token not in self._token_to_id:
            raise ValueError(f"Token {token!r} is not in the vocabulary.")
        return self._token_to_id[token]

    def word_start_flags(self) -> np.ndarray:
        """Bool `[vocabulary_size]`: True for tokens that begin a word.

        A token begins a word unless it starts with `suffix_indicator`
        (`##`); special tokens count as word starts. Used by whole-word
        masking (`tfptlm.data.objectives.whole_word`).
        """
        suffix = self.suffix_indicator
        flags = np.array([not t.startswith(suffix) for t in self._vocabulary], dtype=bool)
        flags[self.special_token_ids] = True
        return flags

    @property
    def pad_id(self) -> int:
        return self.token_to_id(self.pad_token)

    @property
    def unk_id(self) -> int:
        return self.token_to_id(self.unknown_token)

    @property
    def cls_id(self) -> int:
        return self.token_to_id(self.cls_token)

    @property
    def sep_id(self) -> int:
        return self.token_to_id(self.sep_token)

    @property
    def mask_id(self) -> int:
        return self.token_to_id(self.mask_token)

    @property
    def bos_id(self) -> int:
        """Same as `cls_id` (BERT starts a sequence with [CLS])."""
        return self.cls_id

    @property
    def eos_id(self) -> int:
        """Same as `sep_id` (BERT ends a sequence with [SEP])."""
        return self.sep_id

    @property
    def sentinel_ids(self) -> list[int]:
        """Always empty: WordPiece vocabularies have no T5 sentinels."""
        return []

    @property
    def special_token_ids(self) -> list[int]:
        """Ids of [PAD], [UNK], [CLS], [SEP], [MASK] (in that order)."""
        return [self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id]

    # -- saving -------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The constructor options, without the vocabulary."""
        return {
            "lowercase": self.lowercase,
            "strip_accents": self.strip_accents,
            "unknown_token": self.unknown_token,
            "pad_token": self.pad_token,
            "cls_token": self.cls_token,
            "sep_token": self.sep_token,
            "mask_token": self.mask_token,
            "suffix_indicator": self.suffix_indicator,
            "max_chars_per_word": self.max_chars_per_word,
        }

    def save(self, directory: str | os.PathLike) -> None:
        """Writes `vocab.txt` and `tokenizer.json` (the options) to `directory`.

        Example:

        >>> tokenizer.save("my_tokenizer")                  # doctest: +SKIP
        >>> WordPieceTokenizer.load("my_tokenizer")         # doctest: +SKIP
        """
        os.makedirs(directory, exist_ok=True)
        write_vocabulary(self._vocabulary, os.path.join(directory, VOCABULARY_FILE))
        write_options(directory, self.get_config())

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "WordPieceTokenizer":
        """Restores a tokenizer written by `save`, or a Hugging Face BERT folder.

        A folder with only `vocab.txt` uses the defaults; in a Hugging Face
        folder, `tokenizer_config.json` (`do_lower_case`, `strip_accents`,
        special tokens) or the Hugging Face `tokenizer.json` supplies options.
        """
        directory = os.fspath(directory)
        vocabulary_path = os.path.join(directory, VOCABULARY_FILE)
        if not os.path.isfile(vocabulary_path):
            raise FileNotFoundError(
                f"No {VOCABULARY_FILE} in {directory!r}: cannot load a WordPiece "
                "tokenizer from it."
            )
        option_names = tuple(inspect.signature(cls).parameters)[1:]
        return cls(vocabulary_path, **read_options(directory, option_names))
