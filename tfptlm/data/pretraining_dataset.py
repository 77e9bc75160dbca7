"""Masked-LM pretraining input pipelines: documents -> examples -> MLM -> batches.

One function covers the three encoder recipes, chosen by ``sentence_objective``:

* ``"nsp"`` (BERT): next-sentence-prediction pairs + MLM;
* ``"sop"`` (ALBERT): sentence-order-prediction pairs + MLM;
* ``None`` (RoBERTa): full-sentence packs, MLM only.

Example:

>>> docs = read_documents("corpus/*.txt")  # doctest: +SKIP
>>> ds = make_masked_lm_dataset(docs, tokenizer, batch_size=32,
...                             sentence_objective="sop", seed=1)  # doctest: +SKIP
>>> x, y, sample_weight = next(iter(ds))  # doctest: +SKIP
>>> x["token_ids"].shape, y["mlm"].shape, y["sop"].shape  # doctest: +SKIP
(TensorShape([32, 128]), TensorShape([32, 20]), TensorShape([32]))
>>> model.fit(ds, steps_per_epoch=count_examples(docs) // 32)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfptlm.data.objectives.full_sentences import FullSentencePacker, validate_for_full_sentences
from tfptlm.data.objectives.mlm import MaskedLMMasker
from tfptlm.data.objectives.nsp import NextSentencePairer
from tfptlm.data.objectives.sop import SentenceOrderPairer, validate_for_sop
from tfptlm.data.objectives.whole_word import WholeWordMasker
from tfptlm.data.text_corpus import validate_for_nsp
from tfptlm.data.tokenized_corpus import TokenizedCorpus

SENTENCE_OBJECTIVES = ("nsp", "sop", None)
_VALIDATORS = {"nsp": validate_for_nsp, "sop": validate_for_sop, None: validate_for_full_sentences}
_LABELS = {"nsp": "is_random_next", "sop": "is_swapped"}


def _seed_stream(seed: int | None, rerandomize: bool) -> tf.data.Dataset:
    """An endless dataset of ``[2]`` int64 stateless seeds."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=rerandomize).batch(2)


def _offset(seed: int | None, offset: int) -> int | None:
    return None if seed is None else seed + offset


def never_predicted_ids(tokenizer) -> list[int]:
    """The ids a pretraining objective never picks as targets: special tokens and padding."""
    return sorted(
        set(tokenizer.special_token_ids)
        | {tokenizer.pad_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id}
    )


def build_masker(
    tokenizer,
    mask_rate: float = 0.15,
    max_predictions: int = 20,
    whole_word_masking: bool = False,
    max_ngram: int = 1,
    word_segmenter: str | None = None,
) -> MaskedLMMasker:
    """The MLM masker for ``tokenizer``: single pieces, or whole words / n-grams of words.

    Special tokens and padding are never selected. With ``whole_word_masking``
    the tokenizer's ``word_start_flags`` define the words; with a
    ``word_segmenter`` the corpus's continuation flags alone define them.

    Example:

    >>> masker = build_masker(tokenizer, whole_word_masking=True, max_ngram=3)  # doctest: +SKIP
    """
    options = dict(
        vocabulary_size=tokenizer.vocabulary_size,
        mask_id=tokenizer.mask_id,
        unselectable_ids=never_predicted_ids(tokenizer),
        mask_rate=mask_rate,
        max_predictions=max_predictions,
    )
    if not whole_word_masking:
        if max_ngram > 1:
            raise ValueError("max_ngram > 1 masks n-grams of whole words; set whole_word_masking=True")
        return MaskedLMMasker(**options)
    if word_segmenter is None:
        word_starts = tokenizer.word_start_flags()
    else:
        word_starts = np.ones(tokenizer.vocabulary_size, bool)
    return WholeWordMasker(word_starts=word_starts, max_ngram=max_ngram, **options)


def make_masked_lm_dataset(
    documents: Sequence[Sequence[str]] | TokenizedCorpus,
    tokenizer,
    batch_size: int,
    max_sequence_length: int = 128,
    sentence_objective: str | None = "nsp",
    mask_rate: float = 0.15,
    max_predictions: int = 20,
    random_next_rate: float = 0.5,
    whole_word_masking: bool = False,
    max_ngram: int = 1,
    masker=None,
    shuffle: bool = True,
    repeat: bool = True,
    seed: int | None = None,
    deterministic_eval: bool = False,
    drop_remainder: bool = True,
    word_segmenter=None,
) -> tf.data.Dataset:
    """Builds a ``tf.data.Dataset`` of ``(x, y, sample_weight)`` for MLM pretraining.

    Examples per epoch: with ``"nsp"``/``"sop"``, one per start sentence (a
    sentence followed by another in its document, see ``count_examples``);
    with ``None``, one per full-sentence pack (``FullSentencePacker.num_packs``;
    the packs are fixed, every sentence is in exactly one). Their order is new
    every epoch when ``shuffle``; sentence pairs and masks are drawn anew every
    epoch inside the graph.

    Args:
        documents: lists of sentences (e.g. from ``read_documents``), or a
            prebuilt ``TokenizedCorpus`` to skip tokenization.
        tokenizer: has ``tokenize`` (``[N]`` strings -> ragged int ids) and
            ``pad_id``, ``cls_id``, ``sep_id``, ``mask_id``,
            ``special_token_ids`` and ``vocabulary_size``.
        batch_size: examples per batch ``B``.
        max_sequence_length: padded length ``T`` of every example.
        sentence_objective: ``"nsp"`` (BERT next-sentence pairs, needs >= 2
            documents), ``"sop"`` (ALBERT sentence-order pairs, needs a
            document with >= 2 sentences) or ``None`` (RoBERTa full-sentence
            packs across documents, segment ids all 0, MLM only).
        mask_rate: fraction of non-special tokens predicted by MLM (default
            masker only).
        max_predictions: MLM predictions per example ``P`` (default masker
            only; a given ``masker`` sets ``P`` with its ``max_predictions``).
        random_next_rate: probability that segment B is a random one (NSP only).
        whole_word_masking: mask whole words (default masker only), see
            :func:`build_masker`.
        max_ngram: with whole words, mask n-grams of up to this many words.
        masker: called as ``masker(token_ids, seed=seed)`` on a ragged int32
            batch like :class:`MaskedLMMasker` (e.g. a whole-word masker), with
            a ``max_predictions`` attribute. Default: :func:`build_masker`'s.
        shuffle: reshuffle the examples every epoch.
        repeat: repeat forever (use ``steps_per_epoch`` in ``fit``).
        seed: makes the whole stream repeatable (a fresh dataset built with
            the same seed yields the same batches); None draws at random.
        deterministic_eval: for held-out evaluation: the same pairs and masks
            every time the dataset is iterated; never repeats.
        drop_remainder: drop the last partial batch, so that every batch has
            the static shape ``[B, T]``.
        word_segmenter: ``"jieba"`` finds the words of Chinese text for
            whole-word masking (passed on to ``TokenizedCorpus.build``).

    Returns:
        A dataset of ``(x, y, sample_weight)``: ``x`` has ``token_ids``,
        ``segment_ids``, ``padding_mask`` (1 = real token) ``[B, T]`` int32 and
        ``mask_positions`` ``[B, P]`` int32; ``y`` has ``mlm`` ``[B, P]`` int32
        original ids and, for a sentence objective, ``nsp`` (1 = random next)
        or ``sop`` (1 = swapped) ``[B]`` int32; ``sample_weight`` has the same
        keys, ``[B, P]`` and ``[B]`` float32.

    Raises:
        CorpusError: ``documents`` cannot be used for ``sentence_objective``.
    """
    if sentence_objective not in SENTENCE_OBJECTIVES:
        raise ValueError(
            f"sentence_objective must be one of {SENTENCE_OBJECTIVES}, got {sentence_objective!r}."
        )
    if word_segmenter is not None and not (whole_word_masking or isinstance(masker, WholeWordMasker)):
        raise ValueError(
            "word_segmenter finds words for whole-word masking; set whole_word_masking=True "
            "(or pass a WholeWordMasker)"
        )
    if isinstance(documents, TokenizedCorpus):
        corpus = documents
    else:
        _VALIDATORS[sentence_objective](documents)
        options = {} if word_segmenter is None else {"word_segmenter": word_segmenter}
        corpus = TokenizedCorpus.build(documents, tokenizer, **options)
    if masker is None:
        masker = build_masker(
            tokenizer, mask_rate, max_predictions, whole_word_masking, max_ngram, word_segmenter
        )
    max_predictions = masker.max_predictions
    rerandomize = not deterministic_eval
    repeat = repeat and not deterministic_eval

    if sentence_objective is None:
        packer = FullSentencePacker(
            corpus, max_sequence_length, tokenizer.cls_id, tokenizer.sep_id
        )
        starts, num_examples = tf.range(packer.num_packs), packer.num_packs
    else:
        pair_options = (corpus, max_sequence_length, tokenizer.cls_id, tokenizer.sep_id)
        if sentence_objective == "nsp":
            pairer = NextSentencePairer(*pair_options, random_next_rate)
        else:
            pairer = SentenceOrderPairer(*pair_options)
        starts, num_examples = corpus.candidate_starts, corpus.num_examples

    dataset = tf.data.Dataset.from_tensor_slices(starts)
    if shuffle:
        dataset = dataset.shuffle(num_examples, seed=seed, reshuffle_each_iteration=rerandomize)
    if repeat:
        dataset = dataset.repeat()
    if sentence_objective is None:
        dataset = dataset.map(packer, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = tf.data.Dataset.zip(dataset, _seed_stream(_offset(seed, 1), rerandomize))
        dataset = dataset.map(pairer, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.ragged_batch(batch_size, drop_remainder=drop_remainder)
    dataset = tf.data.Dataset.zip(dataset, _seed_stream(_offset(seed, 2), rerandomize))

    static_batch = batch_size if drop_remainder else None

    def to_model_inputs(examples: dict, mask_seed: tf.Tensor):
        masked = masker(examples["token_ids"], seed=mask_seed)
        dense = [static_batch, max_sequence_length]
        token_ids = masked["token_ids"].to_tensor(tokenizer.pad_id, shape=dense)
        segment_ids = examples["segment_ids"].to_tensor(0, shape=dense)
        lengths = examples["token_ids"].row_lengths()
        padding_mask = tf.sequence_mask(lengths, max_sequence_length, dtype=tf.int32)
        padding_mask.set_shape(dense)
        for name in ("mask_positions", "mask_ids", "mask_weights"):
            masked[name].set_shape([static_batch, max_predictions])
        x = {
            "token_ids": token_ids,
            "segment_ids": segment_ids,
            "padding_mask": padding_mask,
            "mask_positions": masked["mask_positions"],
        }
        y = {"mlm": masked["mask_ids"]}
        sample_weight = {"mlm": masked["mask_weights"]}
        if sentence_objective is not None:
            label = examples[_LABELS[sentence_objective]]
            label.set_shape([static_batch])
            y[sentence_objective] = label
            sample_weight[sentence_objective] = tf.ones_like(label, tf.float32)
        return x, y, sample_weight

    dataset = dataset.map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def make_bert_pretraining_dataset(
    documents: Sequence[Sequence[str]] | TokenizedCorpus,
    tokenizer,
    batch_size: int,
    max_sequence_length: int = 128,
    mask_rate: float = 0.15,
    max_predictions: int = 20,
    random_next_rate: float = 0.5,
    shuffle: bool = True,
    repeat: bool = True,
    seed: int | None = None,
    deterministic_eval: bool = False,
    drop_remainder: bool = True,
) -> tf.data.Dataset:
    """BERT MLM + NSP batches: :func:`make_masked_lm_dataset` with ``sentence_objective="nsp"``.

    Returns ``(x, y, sample_weight)`` with ``y``/``sample_weight`` keys ``mlm``
    and ``nsp``; see :func:`make_masked_lm_dataset` for the arguments.

    Example:

    >>> ds = make_bert_pretraining_dataset(docs, tokenizer, batch_size=32, seed=1)  # doctest: +SKIP
    >>> sorted(ds.element_spec[1])  # doctest: +SKIP
    ['mlm', 'nsp']
    """
    return make_masked_lm_dataset(
        documents,
        tokenizer,
        batch_size,
        max_sequence_length=max_sequence_length,
        sentence_objective="nsp",
        mask_rate=mask_rate,
        max_predictions=max_predictions,
        random_next_rate=random_next_rate,
        shuffle=shuffle,
        repeat=repeat,
        seed=seed,
        deterministic_eval=deterministic_eval,
        drop_remainder=drop_remainder,
    )
