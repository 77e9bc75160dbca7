"""SentencePiece tokenizer (T5 / ALBERT / XLNet style): training and in-graph use.

Training uses the `sentencepiece` library; tokenization and detokenization run
in the TF graph with `tensorflow_text.SentencepieceTokenizer`, so they work in
`tf.data`, in `tf.function` and in exported SavedModels.

Trained models share one special-id layout with `BytePairTokenizer`:
pad=0 `<pad>`, eos=1 `</s>`, unk=2 `<unk>`, bos=3 `<s>`, mask=4 `<mask>`,
then the T5 span-corruption sentinels `<extra_id_0>`, `<extra_id_1>`, ...

Example:

>>> tokenizer = train_sentencepiece("corpus.txt", vocab_size=8000)  # doctest: +SKIP
>>> tokenizer.tokenize(["Hello world"])                            # doctest: +SKIP
<tf.RaggedTensor [[1582, 296]]>
>>> tokenizer.save("my_tokenizer")                                 # doctest: +SKIP
"""

import io
import itertools
import json
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import sentencepiece
import tensorflow as tf
import tensorflow_text as tf_text
from sentencepiece import sentencepiece_model_pb2

from tfptlm.text_files import expand_file_patterns, read_lines
from tfptlm.tokenizers import word_pieces

MODEL_FILE = "spm.model"
CONFIG_FILE = "tokenizer.json"
TOKENIZER_TYPE = "sentencepiece"

PAD_TOKEN = "<pad>"
EOS_TOKEN = "</s>"
UNK_TOKEN = "<unk>"
BOS_TOKEN = "<s>"
MASK_TOKEN = "<mask>"
# In id order: pad=0, eos=1, unk=2, bos=3, mask=4; sentinels follow.
SPECIAL_TOKENS = (PAD_TOKEN, EOS_TOKEN, UNK_TOKEN, BOS_TOKEN, MASK_TOKEN)

_MODEL_TYPES = ("unigram", "bpe")
# SentencePiece normalization rules; those with a case-folding variant ("_cf").
_NORMALIZATIONS = ("nmt_nfkc", "nfkc", "identity")
_CASE_FOLDABLE = ("nmt_nfkc", "nfkc")


def sentinel_tokens(count: int) -> list[str]:
    """The T5 sentinels `<extra_id_0>` .. `<extra_id_{count-1}>`.

    Example:

    >>> sentinel_tokens(2)
    ['<extra_id_0>', '<extra_id_1>']
    """
    return [f"<extra_id_{i}>" for i in range(count)]


def training_lines(files: str | os.PathLike | list[str]) -> Iterator[str]:
    """The non-empty, stripped lines of the training files, read lazily.

    Missing files and unmatched patterns are reported at once (named); so is a
    corpus without any text. Invalid UTF-8 raises `ValueError` naming the file
    and line when that line is reached.

    Example:

    >>> lines = training_lines("corpus/*.txt")  # doctest: +SKIP
    """
    paths = expand_file_patterns(files)
    lines = (line for path in paths for line in read_lines(path) if line)
    first = next(lines, None)
    if first is None:
        raise ValueError(f"The training files {paths} contain no text.")
    return itertools.chain([first], lines)


def remove_ids(ids: Any, ids_to_remove: list[int]) -> tf.Tensor | tf.RaggedTensor:
    """Drops `ids_to_remove` from int ids `[N, (T)]` or `[T]` (dense or ragged).

    Returns an int32 `tf.RaggedTensor` `[N, (T)]`, or a 1-D tensor for 1-D input.

    Example:

    >>> remove_ids([[5, 6, 0, 0]], [0]).to_list()
    [[5, 6]]
    """
    if isinstance(ids, (list, tuple)):
        ids = tf.ragged.constant(ids, dtype=tf.int32)
    elif not isinstance(ids, tf.RaggedTensor):
        ids = tf.convert_to_tensor(ids)
    ids = tf.cast(ids, tf.int32)
    removed = tf.constant(ids_to_remove, tf.int32)

    def keep(values: tf.Tensor) -> tf.Tensor:
        return tf.reduce_all(tf.expand_dims(values, -1) != removed, axis=-1)

    if ids.shape.rank == 1:
        return tf.boolean_mask(ids, keep(ids))
    return tf.ragged.boolean_mask(ids, tf.ragged.map_flat_values(keep, ids))


def write_config(directory: str | os.PathLike, tokenizer_type: str, options: dict) -> None:
    """Writes `directory/tokenizer.json`: `{"type": tokenizer_type, **options}`."""
    with open(os.path.join(directory, CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump({"type": tokenizer_type, **options}, f, indent=2, ensure_ascii=False)
        f.write("\n")


def read_config(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The JSON object in `directory/tokenizer.json`; None if there is no such file."""
    path = os.path.join(directory, CONFIG_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        try:
            config = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object.")
    return config


def check_config_type(directory: str | os.PathLike, tokenizer_type: str) -> None:
    """Raises `ValueError` if `tokenizer.json` in `directory` names another type.

    A Hugging Face `tokenizer.json` (it has a "model" entry) is accepted.
    """
    config = read_config(directory)
    if config is None or "model" in config:
        return
    if config.get("type") != tokenizer_type:
        raise ValueError(
            f"{os.path.join(directory, CONFIG_FILE)} describes a "
            f"{config.get('type')!r} tokenizer, not {tokenizer_type!r}."
        )


class SentencePieceTokenizer(tf.Module):
    """Turns raw strings into SentencePiece ids, in eager mode or in any TF graph.

    The model must define `<pad>`, `</s>`, `<unk>`, `<s>` and `<mask>` (models
    from `train_sentencepiece` do, at ids 0-4); sentinels `<extra_id_i>` are
    found by name. User-defined symbols such as `<mask>` are matched in raw
    text. No bos/eos is added by `tokenize`.

    Call `keras.utils.set_random_seed` (or `tf.random.set_seed`) *before*
    creating the tokenizer: setting the seed clears TensorFlow's kernel cache,
    which drops tf-text's SentencePiece resource, and a later `tf.data`
    pipeline then fails with "Resource ... SentencepieceOp does not exist".

    Args:
        model: a serialized SentencePiece `ModelProto` (bytes) or the path of
            an `spm.model` file.

    Example:

    >>> tokenizer = SentencePieceTokenizer.load("my_tokenizer")  # doctest: +SKIP
    >>> ids = tokenizer.tokenize(["我爱自然语言处理"])              # doctest: +SKIP
    >>> tokenizer.detokenize(ids).numpy()[0].decode()           # doctest: +SKIP
    '我爱自然语言处理'
    """

    def __init__(self, model: bytes | str | os.PathLike):
        super().__init__(name="sentence_piece_tokenizer")
        source = "the given bytes"
        if isinstance(model, (str, os.PathLike)):
            path = os.fspath(model)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"SentencePiece model file not found: {path}")
            with open(path, "rb") as f:
                model = f.read()
            source = path
        self._proto = sentencepiece_model_pb2.ModelProto()
        try:
            self._proto.ParseFromString(model)
            self._processor = sentencepiece.SentencePieceProcessor(model_proto=model)
        except Exception as error:  # protobuf and sentencepiece raise various types
            raise ValueError(f"{source} is not a valid SentencePiece model: {error}") from None
        self._model = bytes(model)
        self._pieces = {piece.piece for piece in self._proto.pieces}
        for token in SPECIAL_TOKENS:
            if token not in self._pieces:
                raise ValueError(
                    f"Special token {token!r} is not in the SentencePiece model "
                    f"({self.vocabulary_size} pieces)."
                )
        self._sentinel_ids = []
        for token in sentinel_tokens(self.vocabulary_size):
            if token not in self._pieces:
                break
            self._sentinel_ids.append(self._processor.piece_to_id(token))
        self._sentencepiece = tf_text.SentencepieceTokenizer(
            model=self._model, out_type=tf.int32
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

        >>> tokenizer.tokenize(["hello world", ""]).to_list()  # doctest: +SKIP
        [[2213, 296], []]
        """
        return self._sentencepiece.tokenize(tf.convert_to_tensor(texts, tf.string))

    def tokenize_words(self, words: tf.RaggedTensor | list[list[str]]) -> tf.RaggedTensor:
        """Tokenizes pre-split words (e.g. CoNLL tokens), keeping the word boundaries.

        Every word is tokenized on its own, so it starts with a `▁` piece
        (as a word after a space does in running text). A word that gives no
        piece (empty, or only characters the normalization removes) becomes
        one `<unk>`, so every word has a piece to carry its label.

        Args:
            words: a `tf.RaggedTensor` or nested list of strings `[N, (words)]`.

        Returns:
            An int32 `tf.RaggedTensor` `[N, (words), (pieces)]`.

        Example:

        >>> pieces = tokenizer.tokenize_words([["New", "York", "!"], []])  # doctest: +SKIP
        >>> [[tokenizer.id_to_token(i) for i in word] for word in pieces[0].to_list()]  # doctest: +SKIP
        [['▁New'], ['▁York'], ['▁', '!']]
        """
        return word_pieces.tokenize_words(words, self._sentencepiece.tokenize, self.unk_id)

    def tokenize_with_offsets(
        self, texts: list[str] | tf.Tensor
    ) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
        """Tokenizes word by word and gives each token its word's byte span.

        The text is split into words by `split_words_with_offsets`
        (whitespace dropped; punctuation marks and CJK characters are words of
        their own), then each word is tokenized on its own, like in
        `tokenize_words`. Every piece of a word gets the whole word's UTF-8
        byte offsets in the original string, so a span of tokens maps back to
        an exact substring of the input; a word that gives no piece adds no
        token. The ids can differ from `tokenize` (``"York!"`` gives the
        pieces of ``"York"`` and ``"!"``, each with its `▁`): use this method
        for the same inputs at training and prediction time.

        Args:
            texts: a list of strings or a string tensor `[N]`.

        Returns:
            `(ids, starts, ends)`: int32 ids and int64 byte offsets, each a
            `tf.RaggedTensor` `[N, (tokens)]`.

        Example:

        >>> ids, starts, ends = tokenizer.tokenize_with_offsets(["New York!"])  # doctest: +SKIP
        >>> starts.to_list(), ends.to_list()                                    # doctest: +SKIP
        ([[0, 4, 8, 8]], [[3, 8, 9, 9]])
        """
        return word_pieces.tokenize_with_offsets(texts, self._sentencepiece.tokenize)

    def __call__(self, texts: str | list[str] | tf.Tensor) -> tf.RaggedTensor:
        """Same as `tokenize`."""
        return self.tokenize(texts)

    def detokenize(self, ids: Any) -> tf.Tensor:
        """Joins ids back into text; pad, bos and eos ids are skipped.

        Args:
            ids: a `tf.RaggedTensor` or dense tensor `[N, (tokens)]`, or a 1-D
                tensor or list of ids.

        Returns:
            A string tensor `[N]` (a scalar string for 1-D input).

        Example:

        >>> tokenizer.detokenize([[2213, 296, 1, 0]]).numpy()  # doctest: +SKIP
        array([b'hello world'], dtype=object)
        """
        ids = remove_ids(ids, [self.pad_id, self.bos_id, self.eos_id])
        return self._sentencepiece.detokenize(ids)

    # -- vocabulary ---------------------------------------------------------

    @property
    def vocabulary_size(self) -> int:
        """The number of pieces."""
        return self._processor.get_piece_size()

    def id_to_token(self, token_id: int) -> str:
        """Returns the piece with id `token_id` (ValueError if out of range)."""
        if not 0 <= int(token_id) < self.vocabulary_size:
            raise ValueError(
                f"Token id {token_id} is out of range [0, {self.vocabulary_size})."
            )
        return self._processor.id_to_piece(int(token_id))

    def token_to_id(self, token: str) -> int:
        """Returns the id of piece `token` (ValueError if it is not in the model)."""
        if token not in self._pieces:
            raise ValueError(f"Token {token!r} is not in the vocabulary.")
        return self._processor.piece_to_id(token)

    @property
    def pad_id(self) -> int:
        return self.token_to_id(PAD_TOKEN)

    @property
    def eos_id(self) -> int:
        return self.token_to_id(EOS_TOKEN)

    @property
    def unk_id(self) -> int:
        return self.token_to_id(UNK_TOKEN)

    @property
    def bos_id(self) -> int:
        return self.token_to_id(BOS_TOKEN)

    @property
    def mask_id(self) -> int:
        return self.token_to_id(MASK_TOKEN)

    @property
    def cls_id(self) -> int:
        """Same as `bos_id`: encoder pipelines (BERT-style `cls_id ... sep_id`)
        then frame sequences as `<s> ... </s>`."""
        return self.bos_id

    @property
    def sep_id(self) -> int:
        """Same as `eos_id` (`</s>` ends and separates segments)."""
        return self.eos_id

    @property
    def sentinel_ids(self) -> list[int]:
        """Ids of `<extra_id_0>`, `<extra_id_1>`, ... (in that order)."""
        return list(self._sentinel_ids)

    @property
    def special_token_ids(self) -> list[int]:
        """Ids of pad, eos, unk, bos, mask, then the sentinels."""
        return [self.pad_id, self.eos_id, self.unk_id, self.bos_id, self.mask_id] + (
            self.sentinel_ids
        )

    def word_start_flags(self) -> np.ndarray:
        """Bool `[vocabulary_size]`: True for pieces that begin a word.

        A piece begins a word when it starts with the SentencePiece space
        `▁` (U+2581); special tokens count as word starts. Used by
        whole-word masking (`tfptlm.data.objectives.whole_word`).
        """
        pieces = (self._processor.id_to_piece(i) for i in range(self.vocabulary_size))
        flags = np.array([piece.startswith("\u2581") for piece in pieces], dtype=bool)
        flags[self.special_token_ids] = True
        return flags

    # -- saving -------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """A description of the model, read from it (`load` needs only `spm.model`)."""
        model_type = sentencepiece_model_pb2.TrainerSpec.ModelType.Name(
            self._proto.trainer_spec.model_type
        )
        return {
            "model_type": model_type.lower(),
            "vocabulary_size": self.vocabulary_size,
            "num_sentinels": len(self._sentinel_ids),
            "normalization": self._proto.normalizer_spec.name,
            "byte_fallback": self._proto.trainer_spec.byte_fallback,
        }

    def save(self, directory: str | os.PathLike) -> None:
        """Writes `spm.model` and `tokenizer.json` to `directory`.

        Example:

        >>> tokenizer.save("my_tokenizer")                  # doctest: +SKIP
        >>> SentencePieceTokenizer.load("my_tokenizer")     # doctest: +SKIP
        """
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, MODEL_FILE), "wb") as f:
            f.write(self._model)
        write_config(directory, TOKENIZER_TYPE, self.get_config())

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "SentencePieceTokenizer":
        """Restores a tokenizer written by `save` (only `spm.model` is required)."""
        directory = os.fspath(directory)
        path = os.path.join(directory, MODEL_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"No {MODEL_FILE} in {directory!r}: cannot load a SentencePiece "
                "tokenizer from it."
            )
        check_config_type(directory, TOKENIZER_TYPE)
        return cls(path)


def train_sentencepiece(
    files: str | os.PathLike | list[str],
    vocab_size: int,
    model_type: str = "unigram",
    num_sentinels: int = 100,
    character_coverage: float = 0.9995,
    lowercase: bool = False,
    normalization: str = "nmt_nfkc",
    byte_fallback: bool = False,
    input_sentence_size: int = 1_000_000,
    **trainer_options: Any,
) -> SentencePieceTokenizer:
    """Trains a SentencePiece model in memory on text files.

    Args:
        files: a glob pattern, a path, or a list of them (UTF-8 text; each
            non-empty line is one sentence).
        vocab_size: the vocabulary size, special tokens and sentinels included
            (an upper bound: a small corpus may give fewer pieces).
        model_type: "unigram" (T5, ALBERT) or "bpe".
        num_sentinels: how many `<extra_id_i>` sentinels to reserve.
        character_coverage: fraction of characters covered by the model;
            rarer characters become `<unk>` (use 0.9995 for CJK, 1.0 for
            small alphabets).
        lowercase: case-fold the text (the `_cf` variant of `normalization`).
        normalization: "nmt_nfkc" (T5's: NFKC, so full-width forms such as
            "，" become ","), "nfkc", or "identity" (text kept as is, so every
            covered string round-trips exactly).
        byte_fallback: spell unknown characters as byte pieces instead of
            `<unk>` (needs 256 extra pieces).
        input_sentence_size: train on at most this many sentences, sampled
            uniformly from the corpus (0 = all).
        **trainer_options: further `SentencePieceTrainer.train` options.

    Returns:
        The trained `SentencePieceTokenizer`.

    Raises:
        FileNotFoundError: if a path or pattern matches no file (named).
        ValueError: on invalid UTF-8 (file and line named), an empty corpus,
            a bad option, or a failed training (e.g. a vocabulary too large
            for the corpus).

    Example:

    >>> tokenizer = train_sentencepiece("corpus/*.txt", 32000)  # doctest: +SKIP
    >>> tokenizer.sentinel_ids[:2]                             # doctest: +SKIP
    [5, 6]
    """
    if model_type not in _MODEL_TYPES:
        raise ValueError(f"model_type must be one of {_MODEL_TYPES}, got {model_type!r}.")
    if normalization not in _NORMALIZATIONS:
        raise ValueError(
            f"normalization must be one of {_NORMALIZATIONS}, got {normalization!r}."
        )
    if lowercase and normalization not in _CASE_FOLDABLE:
        raise ValueError(f"lowercase=True needs normalization in {_CASE_FOLDABLE}.")
    user_symbols = [MASK_TOKEN] + sentinel_tokens(num_sentinels)
    if vocab_size <= len(SPECIAL_TOKENS) + num_sentinels:
        raise ValueError(
            f"vocab_size={vocab_size} leaves no room next to the "
            f"{len(SPECIAL_TOKENS) + num_sentinels} special tokens and sentinels."
        )
    lines = training_lines(files)
    model = io.BytesIO()
    # Like WordPiece's "about N": a corpus too small for vocab_size gives fewer pieces.
    trainer_options.setdefault("hard_vocab_limit", False)
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=lines,
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            normalization_rule_name=normalization + ("_cf" if lowercase else ""),
            byte_fallback=byte_fallback,
            input_sentence_size=input_sentence_size,
            shuffle_input_sentence=True,
            pad_id=0,
            eos_id=1,
            unk_id=2,
            bos_id=3,
            pad_piece=PAD_TOKEN,
            eos_piece=EOS_TOKEN,
            unk_piece=UNK_TOKEN,
            bos_piece=BOS_TOKEN,
            user_defined_symbols=user_symbols,
            num_threads=min(16, os.cpu_count() or 1),
            minloglevel=2,
            **trainer_options,
        )
    except RuntimeError as error:
        raise ValueError(f"SentencePiece training on {files!r} failed: {error}") from None
    return SentencePieceTokenizer(model.getvalue())
