"""Byte-level BPE tokenizer (GPT-2 / RoBERTa / BART style): training and in-graph use.

Training uses the Hugging Face `tokenizers` library (ByteLevel pre-tokenizer,
BpeTrainer); tokenization runs in the TF graph through the TF implementation of
`keras_hub.tokenizers.BytePairTokenizer` (GPT-2 pre-splitting and merges with
tensorflow-text and lookup tables), so it works in `tf.data`, `tf.function`
and exported SavedModels. Every byte has a token, so any UTF-8 text (Chinese,
emoji, ...) round-trips and `<unk>` is never produced.

The special ids are those of `SentencePieceTokenizer`: pad=0 `<pad>`,
eos=1 `</s>`, unk=2 `<unk>`, bos=3 `<s>`, mask=4 `<mask>`, then the sentinels
`<extra_id_0>`, ... Special tokens are not matched in raw text: put their ids
in the id sequence instead.

Example:

>>> tokenizer = train_byte_bpe("corpus.txt", vocab_size=8000)  # doctest: +SKIP
>>> ids = tokenizer.tokenize(["Hello 😀"])                     # doctest: +SKIP
>>> tokenizer.detokenize(ids).numpy()[0].decode()             # doctest: +SKIP
'Hello 😀'
"""

import json
import os
from typing import Any

import numpy as np
import tensorflow as tf

from tfptlm.tokenizers import word_pieces
from tfptlm.tokenizers.sentencepiece import SPECIAL_TOKENS
from tfptlm.tokenizers.sentencepiece import check_config_type
from tfptlm.tokenizers.sentencepiece import remove_ids
from tfptlm.tokenizers.sentencepiece import sentinel_tokens
from tfptlm.tokenizers.sentencepiece import training_lines
from tfptlm.tokenizers.sentencepiece import write_config

VOCABULARY_FILE = "vocab.json"
MERGES_FILE = "merges.txt"
TOKENIZER_TYPE = "byte_bpe"
_BYTE_COUNT = 256
_MERGES_HEADER = "#version:"


def _read_vocabulary(path: str) -> dict[str, int]:
    """Reads a `vocab.json` (token -> id)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Vocabulary file not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            vocabulary = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(vocabulary, dict) or not all(
        isinstance(i, int) for i in vocabulary.values()
    ):
        raise ValueError(f"{path} must hold a JSON object mapping tokens to int ids.")
    return vocabulary


def _read_merges(path: str) -> list[str]:
    """Reads a `merges.txt` (one "left right" pair a line, optional #version header)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Merges file not found: {path}")
    merges = []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line or (line_number == 1 and line.startswith(_MERGES_HEADER)):
                continue
            if len(line.split(" ")) != 2:
                raise ValueError(
                    f"{path}, line {line_number}: expected two tokens separated "
                    f"by one space, got {line!r}."
                )
            merges.append(line)
    return merges


class BytePairTokenizer(tf.Module):
    """Turns raw strings into byte-level BPE ids, in eager mode or in any TF graph.

    Args:
        vocabulary: token -> id mapping (ids 0..n-1) or the path of a
            `vocab.json`; it must hold `<pad>`, `</s>`, `<unk>`, `<s>` and
            `<mask>`; sentinels `<extra_id_i>` are found by name.
        merges: merge rules ("left right", highest priority first) or the
            path of a `merges.txt`.

    Example:

    >>> tokenizer = BytePairTokenizer.load("my_tokenizer")   # doctest: +SKIP
    >>> tokenizer.tokenize("我爱 NLP 😀")                     # doctest: +SKIP
    <tf.Tensor: shape=(9,), dtype=int32, numpy=...>
    """

    def __init__(
        self,
        vocabulary: dict[str, int] | str | os.PathLike,
        merges: list[str] | str | os.PathLike,
    ):
        super().__init__(name="byte_pair_tokenizer")
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = _read_vocabulary(os.fspath(vocabulary))
        if isinstance(merges, (str, os.PathLike)):
            merges = _read_merges(os.fspath(merges))
        vocabulary = dict(vocabulary)
        if sorted(vocabulary.values()) != list(range(len(vocabulary))):
            raise ValueError(
                f"The vocabulary ids must be 0..{len(vocabulary) - 1}, each used once."
            )
        for token in SPECIAL_TOKENS:
            if token not in vocabulary:
                raise ValueError(
                    f"Special token {token!r} is not in the vocabulary "
                    f"({len(vocabulary)} tokens)."
                )
        # Python-side lookups; the keras-hub layer holds the graph state.
        self._token_to_id = vocabulary
        self._id_to_token = {i: token for token, i in vocabulary.items()}
        self._merges = tuple(merges)
        self._sentinel_ids = []
        for token in sentinel_tokens(len(vocabulary)):
            if token not in vocabulary:
                break
            self._sentinel_ids.append(vocabulary[token])
        import keras_hub  # imported on first use: it takes a second or two

        self._bpe = keras_hub.tokenizers.BytePairTokenizer(
            vocabulary=vocabulary, merges=list(merges), dtype="int32"
        )

    # -- tokenization ------------------------------------------------------
    # The public methods are never converted by autograph (tf.data maps
    # convert what they call): in a long process, a converted call once ended
    # in keras-hub's layer constructor instead ("__init__() missing 'merges'").

    @tf.autograph.experimental.do_not_convert
    def tokenize(self, texts: str | list[str] | tf.Tensor) -> tf.RaggedTensor:
        """Tokenizes strings into int32 ids.

        Args:
            texts: a string, a list of strings, or a string tensor `[N]`.

        Returns:
            A `tf.RaggedTensor` `[N, (tokens)]` of int32 ids; for a single
            string, a 1-D int32 tensor.

        Example:

        >>> tokenizer.tokenize(["hello world", ""]).to_list()  # doctest: +SKIP
        [[31373, 995], []]
        """
        texts = tf.convert_to_tensor(texts, tf.string)
        if texts.shape.rank == 0:
            return self._tokenize_batch(texts[tf.newaxis])[0]
        return self._tokenize_batch(texts)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
    def _tokenize_batch(self, texts: tf.Tensor) -> tf.RaggedTensor:
        # Traced, so keras-hub takes its TF path and returns TF tensors.
        return self._bpe.tokenize(texts)

    @tf.autograph.experimental.do_not_convert
    def tokenize_words(self, words: tf.RaggedTensor | list[list[str]]) -> tf.RaggedTensor:
        """Tokenizes pre-split words (e.g. CoNLL tokens), keeping the word boundaries.

        Every word is tokenized on its own as if a space came before it
        (``" " + word``), first word included: it gets the `Ġ` pieces that
        RoBERTa sees for words inside a sentence, and the same pieces wherever
        it stands (Hugging Face's ``add_prefix_space=True`` for split words).
        `tokenize_with_offsets` does the same. An empty word becomes one
        `<unk>`, so every word has a piece to carry its label.

        Args:
            words: a `tf.RaggedTensor` or nested list of strings `[N, (words)]`.

        Returns:
            An int32 `tf.RaggedTensor` `[N, (words), (pieces)]`.

        Example:

        >>> pieces = tokenizer.tokenize_words([["New", "York", "!"], []])  # doctest: +SKIP
        >>> [[tokenizer.id_to_token(i) for i in word] for word in pieces[0].to_list()]  # doctest: +SKIP
        [['ĠNew'], ['ĠYork'], ['Ġ!']]
        """
        return word_pieces.tokenize_words(words, self._pieces_of_words, self.unk_id)

    @tf.autograph.experimental.do_not_convert
    def tokenize_with_offsets(
        self, texts: list[str] | tf.Tensor
    ) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
        """Tokenizes word by word and gives each token its word's byte span.

        The text is split into words by `split_words_with_offsets`
        (whitespace dropped; punctuation marks and CJK characters are words of
        their own), then each word is tokenized like in `tokenize_words`
        (``" " + word``). Every piece of a word gets the whole word's UTF-8
        byte offsets in the original string, so a span of tokens maps back to
        an exact substring of the input. The ids can differ from `tokenize`
        (``"York!"`` gives the pieces of ``" York"`` and ``" !"``): use this
        method for the same inputs at training and prediction time.

        Args:
            texts: a list of strings or a string tensor `[N]`.

        Returns:
            `(ids, starts, ends)`: int32 ids and int64 byte offsets, each a
            `tf.RaggedTensor` `[N, (tokens)]`.

        Example:

        >>> ids, starts, ends = tokenizer.tokenize_with_offsets(["New York!"])  # doctest: +SKIP
        >>> starts.to_list(), ends.to_list()                                    # doctest: +SKIP
        ([[0, 4, 8]], [[3, 8, 9]])
        """
        return word_pieces.tokenize_with_offsets(texts, self._pieces_of_words)

    def _pieces_of_words(self, words: tf.Tensor) -> tf.RaggedTensor:
        """`[W]` words -> `[W, (pieces)]`: each word after a space; "" stays empty."""
        spaced = tf.where(tf.strings.length(words) > 0, tf.strings.join([" ", words]), words)
        return self._tokenize_batch(spaced)

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

        >>> tokenizer.detokenize([[31373, 995, 1, 0]]).numpy()  # doctest: +SKIP
        array([b'hello world'], dtype=object)
        """
        ids = remove_ids(ids, [self.pad_id, self.bos_id, self.eos_id])
        if isinstance(ids, tf.RaggedTensor):
            return self._detokenize_batch(ids)
        return self._detokenize_batch(tf.RaggedTensor.from_tensor(ids[tf.newaxis]))[0]

    @tf.function(input_signature=[tf.RaggedTensorSpec([None, None], tf.int32)], autograph=False)
    def _detokenize_batch(self, ids: tf.RaggedTensor) -> tf.Tensor:
        return self._bpe.detokenize(ids)

    # -- vocabulary ---------------------------------------------------------

    @property
    def vocabulary_size(self) -> int:
        """The number of tokens."""
        return len(self._token_to_id)

    def id_to_token(self, token_id: int) -> str:
        """Returns the token with id `token_id` (ValueError if out of range)."""
        if int(token_id) not in self._id_to_token:
            raise ValueError(
                f"Token id {token_id} is out of range [0, {self.vocabulary_size})."
            )
        return self._id_to_token[int(token_id)]

    def token_to_id(self, token: str) -> int:
        """Returns the id of `token` (ValueError if it is not in the vocabulary)."""
        if token not in self._token_to_id:
            raise ValueError(f"Token {token!r} is not in the vocabulary.")
        return self._token_to_id[token]

    @property
    def pad_id(self) -> int:
        return self.token_to_id(SPECIAL_TOKENS[0])

    @property
    def eos_id(self) -> int:
        return self.token_to_id(SPECIAL_TOKENS[1])

    @property
    def unk_id(self) -> int:
        return self.token_to_id(SPECIAL_TOKENS[2])

    @property
    def bos_id(self) -> int:
        return self.token_to_id(SPECIAL_TOKENS[3])

    @property
    def mask_id(self) -> int:
        return self.token_to_id(SPECIAL_TOKENS[4])

    @property
    def cls_id(self) -> int:
        """Same as `bos_id`: encoder pipelines (BERT-style `cls_id ... sep_id`)
        then frame sequences as `<s> ... </s>`, as RoBERTa does."""
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
        return [self.token_to_id(token) for token in SPECIAL_TOKENS] + self.sentinel_ids

    def word_start_flags(self) -> np.ndarray:
        """Bool `[vocabulary_size]`: True for tokens that begin a word.

        A token begins a word when it starts with `Ġ` (the byte-level space),
        as in fairseq's RoBERTa whole-word masking; special tokens count as
        word starts. A text's first word and punctuation glued to a word have
        no `Ġ`, so they continue the word before them (a special token in
        between still separates them). Chinese has no spaces: see
        `tfptlm.data.objectives.whole_word` for segmented corpora.
        """
        tokens = (self._id_to_token[i] for i in range(self.vocabulary_size))
        flags = np.array([token.startswith("\u0120") for token in tokens], dtype=bool)
        flags[self.special_token_ids] = True
        return flags

    # -- saving -------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """A description of the vocabulary (`load` needs only the two files)."""
        return {
            "vocabulary_size": self.vocabulary_size,
            "num_merges": len(self._merges),
            "num_sentinels": len(self._sentinel_ids),
        }

    def save(self, directory: str | os.PathLike) -> None:
        """Writes `vocab.json`, `merges.txt` and `tokenizer.json` to `directory`.

        Example:

        >>> tokenizer.save("my_tokenizer")               # doctest: +SKIP
        >>> BytePairTokenizer.load("my_tokenizer")       # doctest: +SKIP
        """
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, VOCABULARY_FILE), "w", encoding="utf-8") as f:
            json.dump(self._token_to_id, f, ensure_ascii=False)
        with open(os.path.join(directory, MERGES_FILE), "w", encoding="utf-8") as f:
            f.write(f"{_MERGES_HEADER} 0.2\n")
            f.writelines(merge + "\n" for merge in self._merges)
        write_config(directory, TOKENIZER_TYPE, self.get_config())

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "BytePairTokenizer":
        """Restores a tokenizer written by `save` (or a folder with the same two files)."""
        directory = os.fspath(directory)
        missing = [
            name
            for name in (VOCABULARY_FILE, MERGES_FILE)
            if not os.path.isfile(os.path.join(directory, name))
        ]
        if missing:
            raise FileNotFoundError(
                f"No {' or '.join(missing)} in {directory!r}: cannot load a "
                "byte-level BPE tokenizer from it."
            )
        check_config_type(directory, TOKENIZER_TYPE)
        return cls(
            os.path.join(directory, VOCABULARY_FILE), os.path.join(directory, MERGES_FILE)
        )


def train_byte_bpe(
    files: str | os.PathLike | list[str],
    vocab_size: int,
    num_sentinels: int = 100,
    min_frequency: int = 2,
    show_progress: bool = True,
) -> BytePairTokenizer:
    """Trains a byte-level BPE vocabulary with the Hugging Face `tokenizers` library.

    Args:
        files: a glob pattern, a path, or a list of them (UTF-8 text; each
            non-empty line is one text).
        vocab_size: the vocabulary size: special tokens, sentinels, the 256
            byte tokens and the learned merges.
        num_sentinels: how many `<extra_id_i>` sentinels to reserve.
        min_frequency: a pair seen fewer times is never merged.
        show_progress: show the trainer's progress bar.

    Returns:
        The trained `BytePairTokenizer`.

    Raises:
        FileNotFoundError: if a path or pattern matches no file (named).
        ValueError: on invalid UTF-8 (file and line named), an empty corpus,
            or a `vocab_size` too small.

    Example:

    >>> tokenizer = train_byte_bpe("corpus/*.txt", 32000)  # doctest: +SKIP
    >>> tokenizer.mask_id, tokenizer.sentinel_ids[0]       # doctest: +SKIP
    (4, 5)
    """
    special_tokens = list(SPECIAL_TOKENS) + sentinel_tokens(num_sentinels)
    if vocab_size <= len(special_tokens) + _BYTE_COUNT:
        raise ValueError(
            f"vocab_size={vocab_size} leaves no room for merges next to the "
            f"{len(special_tokens)} special tokens and the {_BYTE_COUNT} byte tokens."
        )
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers  # only to train

    lines = training_lines(files)
    hf_tokenizer = Tokenizer(models.BPE())
    hf_tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    hf_tokenizer.train_from_iterator(lines, trainer)
    model = json.loads(hf_tokenizer.to_str())["model"]
    # Merges are ["left", "right"] pairs in recent `tokenizers`, "left right" before.
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return BytePairTokenizer(model["vocab"], merges)
