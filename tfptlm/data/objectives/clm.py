"""Causal language modelling (GPT) with document packing, in the TF graph.

Every document is tokenized once (its sentences joined with a space) and
followed by ``eos_id``. Each epoch the documents are shuffled, their tokens
concatenated into one stream and cut into blocks of ``sequence_length + 1``
tokens, so no position is wasted on padding. A block ``b`` gives the inputs
``b[:-1]`` and the labels ``b[1:]``. Blocks may span documents and, when the
dataset repeats, epochs.

Example:

>>> ds = make_clm_dataset(documents, tokenizer, sequence_length=128,
...                       batch_size=8, seed=1)  # doctest: +SKIP
>>> x, y, sample_weight = next(iter(ds))  # doctest: +SKIP
>>> x["token_ids"].shape, y.shape, sample_weight.shape  # doctest: +SKIP
(TensorShape([8, 128]), TensorShape([8, 128]), TensorShape([8, 128]))
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from tfptlm.data.tokenized_corpus import TokenizedCorpus


def tokenize_documents(documents: Sequence[Sequence[str]], tokenizer) -> tf.RaggedTensor:
    """Tokenizes each document's text (its sentences joined with ``" "``).

    Documents without sentences are skipped.

    Args:
        documents: lists of sentences (e.g. from ``read_documents``).
        tokenizer: has ``tokenize`` (``[N]`` strings -> ragged int ids).

    Returns:
        int32 ragged ``[num_documents, (tokens)]``.

    Example:

    >>> tokenize_documents([["a b", "c"], ["d"]], tokenizer).to_list()  # doctest: +SKIP
    [[7, 8, 9], [10]]
    """
    corpus = TokenizedCorpus.build(
        [[" ".join(document)] for document in documents if len(document)], tokenizer
    )
    return tf.RaggedTensor.from_row_splits(corpus.token_values, corpus.row_splits)


def pack_into_blocks(
    token_ids: tf.data.Dataset, block_length: int, drop_remainder: bool = True
) -> tf.data.Dataset:
    """Concatenates a dataset of 1-D token id tensors and cuts it into blocks.

    Args:
        token_ids: a dataset whose elements are 1-D int tensors of any length.
        block_length: tokens per block.
        drop_remainder: drop the last, shorter block (else it is yielded as is).

    Returns:
        A dataset of 1-D blocks: consecutive slices of the concatenated stream.

    Example:

    >>> ds = tf.data.Dataset.from_tensor_slices(tf.ragged.constant([[1, 2, 3], [4], [5, 6]]))
    >>> [b.numpy().tolist() for b in pack_into_blocks(ds, 4, drop_remainder=False)]
    [[1, 2, 3, 4], [5, 6]]
    """
    if block_length < 1:
        raise ValueError(f"block_length must be >= 1, got {block_length}.")
    return token_ids.rebatch(block_length, drop_remainder=drop_remainder)


def document_stream(
    documents: tf.RaggedTensor,
    seed: int | None,
    shuffle: bool,
    repeat: bool,
) -> tf.data.Dataset:
    """A dataset of the rows of ``documents``, shuffled anew every epoch.

    Example:

    >>> ds = document_stream(tf.ragged.constant([[1, 2], [3]]), seed=1,
    ...                      shuffle=False, repeat=False)
    >>> [row.numpy().tolist() for row in ds]
    [[1, 2], [3]]
    """
    dataset = tf.data.Dataset.from_tensor_slices(documents)
    if shuffle:
        dataset = dataset.shuffle(
            int(documents.nrows()), seed=seed, reshuffle_each_iteration=True
        )
    if repeat:
        dataset = dataset.repeat()
    return dataset


def make_clm_dataset(
    documents: Sequence[Sequence[str]],
    tokenizer,
    sequence_length: int,
    batch_size: int,
    seed: int | None = None,
    shuffle: bool = True,
    repeat: bool = True,
    drop_remainder: bool = True,
) -> tf.data.Dataset:
    """Builds a ``tf.data.Dataset`` of ``(x, labels, sample_weight)`` for causal LM.

    Args:
        documents: lists of sentences (e.g. from ``read_documents``).
        tokenizer: has ``tokenize`` (``[N]`` strings -> ragged int ids),
            ``eos_id`` and ``pad_id``.
        sequence_length: model input length ``T``; blocks hold ``T + 1`` tokens.
        batch_size: blocks per batch ``B``.
        seed: makes the stream repeatable (a fresh dataset built with the same
            seed yields the same batches); None draws at random.
        shuffle: shuffle the document order anew every epoch.
        repeat: repeat forever (use ``steps_per_epoch`` in ``fit``); the stream
            then flows on across epochs, so no block is ever incomplete.
        drop_remainder: drop the last incomplete block and batch (only happens
            without ``repeat``); if False the last block is padded with
            ``pad_id`` and the last batch may be smaller.

    Returns:
        A dataset of ``(x, labels, sample_weight)``: ``x`` has ``token_ids``
        and ``padding_mask`` (1 = real token), ``labels`` are the next tokens,
        all ``[B, T]`` int32; ``sample_weight`` ``[B, T]`` float32 is 1 where a
        label is a real token (everywhere except in a padded last block).

    Example:

    >>> ds = make_clm_dataset([["a b c.", "d e."], ["f g h i."]], tokenizer,
    ...                       sequence_length=4, batch_size=2)  # doctest: +SKIP
    >>> x, labels, sample_weight = next(iter(ds))  # doctest: +SKIP
    >>> x["token_ids"].shape  # doctest: +SKIP
    TensorShape([2, 4])
    """
    if sequence_length < 1:
        raise ValueError(f"sequence_length must be >= 1, got {sequence_length}.")
    token_ids = tokenize_documents(documents, tokenizer)
    eos = tf.fill([token_ids.nrows(), 1], tf.constant(tokenizer.eos_id, tf.int32))
    token_ids = tf.concat([token_ids, eos], axis=1)
    dataset = pack_into_blocks(
        document_stream(token_ids, seed, shuffle, repeat), sequence_length + 1, drop_remainder
    )
    pad_id = tokenizer.pad_id

    def to_model_inputs(block: tf.Tensor):
        length = tf.shape(block)[0]
        block = tf.pad(block, [[0, sequence_length + 1 - length]], constant_values=pad_id)
        block.set_shape([sequence_length + 1])
        x = {
            "token_ids": block[:-1],
            "padding_mask": tf.sequence_mask(length, sequence_length, dtype=tf.int32),
        }
        sample_weight = tf.sequence_mask(length - 1, sequence_length, dtype=tf.float32)
        return x, block[1:], sample_weight

    dataset = dataset.map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)
