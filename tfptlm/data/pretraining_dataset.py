"""The BERT pretraining input pipeline: documents -> NSP pairs -> MLM -> batches.

Example:

>>> docs = read_documents("corpus/*.txt")  # doctest: +SKIP
>>> ds = make_bert_pretraining_dataset(docs, tokenizer, batch_size=32, seed=1)  # doctest: +SKIP
>>> x, y, sample_weight = next(iter(ds))  # doctest: +SKIP
>>> x["token_ids"].shape, y["mlm"].shape, y["nsp"].shape  # doctest: +SKIP
(TensorShape([32, 128]), TensorShape([32, 20]), TensorShape([32]))
>>> model.fit(ds, steps_per_epoch=count_examples(docs) // 32)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from tfptlm.data.objectives.mlm import MaskedLMMasker
from tfptlm.data.objectives.nsp import NextSentencePairer
from tfptlm.data.text_corpus import validate_for_nsp
from tfptlm.data.tokenized_corpus import TokenizedCorpus


def _seed_stream(seed: int | None, rerandomize: bool) -> tf.data.Dataset:
    """An endless dataset of ``[2]`` int64 stateless seeds."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=rerandomize).batch(2)


def _offset(seed: int | None, offset: int) -> int | None:
    return None if seed is None else seed + offset


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
    """Builds a ``tf.data.Dataset`` of ``(x, y, sample_weight)`` for BERT MLM + NSP.

    Each epoch has one example per start sentence (a sentence followed by
    another in its document, see ``count_examples``), in a new random order
    when ``shuffle``; sentence pairs (NSP) and masks (MLM) are drawn anew every
    epoch inside the graph.

    Args:
        documents: lists of sentences (e.g. from ``read_documents``), or a
            prebuilt ``TokenizedCorpus`` to skip tokenization.
        tokenizer: has ``tokenize`` (``[N]`` strings -> ragged int ids) and
            ``pad_id``, ``cls_id``, ``sep_id``, ``mask_id``,
            ``special_token_ids`` and ``vocabulary_size``.
        batch_size: examples per batch ``B``.
        max_sequence_length: padded length ``T`` of every example.
        mask_rate: fraction of non-special tokens predicted by MLM.
        max_predictions: MLM predictions per example ``P``.
        random_next_rate: probability that segment B is a random one.
        shuffle: reshuffle the start sentences every epoch.
        repeat: repeat forever (use ``steps_per_epoch`` in ``fit``).
        seed: makes the whole stream repeatable (a fresh dataset built with
            the same seed yields the same batches); None draws at random.
        deterministic_eval: for held-out evaluation: the same pairs and masks
            every time the dataset is iterated; never repeats.
        drop_remainder: drop the last partial batch, so that every batch has
            the static shape ``[B, T]``.

    Returns:
        A dataset of ``(x, y, sample_weight)``: ``x`` has ``token_ids``,
        ``segment_ids``, ``padding_mask`` (1 = real token) ``[B, T]`` int32 and
        ``mask_positions`` ``[B, P]`` int32; ``y`` has ``mlm`` ``[B, P]`` int32
        original ids and ``nsp`` ``[B]`` int32 (1 = random next);
        ``sample_weight`` has ``mlm`` ``[B, P]`` and ``nsp`` ``[B]`` float32.
    """
    if isinstance(documents, TokenizedCorpus):
        corpus = documents
    else:
        validate_for_nsp(documents)
        corpus = TokenizedCorpus.build(documents, tokenizer)
    pairer = NextSentencePairer(
        corpus, max_sequence_length, tokenizer.cls_id, tokenizer.sep_id, random_next_rate
    )
    special_ids = [tokenizer.pad_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id]
    masker = MaskedLMMasker(
        vocabulary_size=tokenizer.vocabulary_size,
        mask_id=tokenizer.mask_id,
        unselectable_ids=list(tokenizer.special_token_ids) + special_ids,
        mask_rate=mask_rate,
        max_predictions=max_predictions,
    )
    rerandomize = not deterministic_eval
    repeat = repeat and not deterministic_eval

    dataset = tf.data.Dataset.from_tensor_slices(corpus.candidate_starts)
    if shuffle:
        dataset = dataset.shuffle(
            corpus.num_examples, seed=seed, reshuffle_each_iteration=rerandomize
        )
    if repeat:
        dataset = dataset.repeat()
    dataset = tf.data.Dataset.zip(dataset, _seed_stream(_offset(seed, 1), rerandomize))
    dataset = dataset.map(pairer, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.ragged_batch(batch_size, drop_remainder=drop_remainder)
    dataset = tf.data.Dataset.zip(dataset, _seed_stream(_offset(seed, 2), rerandomize))

    static_batch = batch_size if drop_remainder else None

    def to_model_inputs(pairs: dict, mask_seed: tf.Tensor):
        masked = masker(pairs["token_ids"], seed=mask_seed)
        dense = [static_batch, max_sequence_length]
        token_ids = masked["token_ids"].to_tensor(tokenizer.pad_id, shape=dense)
        segment_ids = pairs["segment_ids"].to_tensor(0, shape=dense)
        lengths = pairs["token_ids"].row_lengths()
        padding_mask = tf.sequence_mask(lengths, max_sequence_length, dtype=tf.int32)
        padding_mask.set_shape(dense)
        nsp = pairs["is_random_next"]
        nsp.set_shape([static_batch])
        for name in ("mask_positions", "mask_ids", "mask_weights"):
            masked[name].set_shape([static_batch, max_predictions])
        x = {
            "token_ids": token_ids,
            "segment_ids": segment_ids,
            "padding_mask": padding_mask,
            "mask_positions": masked["mask_positions"],
        }
        y = {"mlm": masked["mask_ids"], "nsp": nsp}
        sample_weight = {"mlm": masked["mask_weights"], "nsp": tf.ones_like(nsp, tf.float32)}
        return x, y, sample_weight

    dataset = dataset.map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
