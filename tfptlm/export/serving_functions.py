"""The functions behind each task's exported signatures: raw strings in, answers out.

Each ``*_endpoints`` function returns ``{signature name: (function, input
signature)}`` for `tfptlm.export.saved_model.export_saved_model`. Every
function uses only TensorFlow and tensorflow-text ops, so the SavedModel runs
in TF Serving (which links in tensorflow-text's ops) with no Python code.

Strings are cleaned first: invalid UTF-8 bytes become U+FFFD (which the
tokenizer then drops), so any bytes get an answer; character offsets refer to
the cleaned text, which is the original text whenever it is valid UTF-8.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from tfptlm.data.packing import pack_segments
from tfptlm.tasks.task import BACKBONE_INPUTS
from tfptlm.tokenizers.normalization import split_words_with_offsets

#: Added to the score of impossible answer spans (finite, so JSON can carry it).
_IMPOSSIBLE = -1e9


def strings(name: str) -> tf.TensorSpec:
    """A batch of raw UTF-8 strings."""
    return tf.TensorSpec([None], tf.string, name=name)


def token_inputs() -> dict:
    """The token-level signature's inputs: int32 ``[batch, length]`` per backbone input."""
    return {name: tf.TensorSpec([None, None], tf.int32, name=name) for name in BACKBONE_INPUTS}


def clean(texts: tf.Tensor) -> tf.Tensor:
    """Replaces invalid UTF-8 with U+FFFD so that no input can make the graph fail."""
    return tf.strings.unicode_transcode(
        texts, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
    )


def char_offsets(texts: tf.Tensor, row_ids: tf.Tensor, byte_offsets: tf.Tensor) -> tf.Tensor:
    """Character positions of byte offsets; ``row_ids`` says which text each offset is in."""
    byte_offsets = tf.cast(byte_offsets, tf.int32)
    prefixes = tf.strings.substr(tf.gather(texts, row_ids), tf.zeros_like(byte_offsets), byte_offsets)
    return tf.strings.length(prefixes, unit="UTF8_CHAR")


def vocabulary_table(tokenizer, vocabulary_file: str | Path) -> tf.lookup.StaticHashTable:
    """Id -> token: read from a WordPiece ``vocab.txt`` (which the SavedModel keeps as an
    asset) when there is one, else taken from the tokenizer (SentencePiece, byte-level BPE)."""
    if Path(vocabulary_file).is_file():
        initializer = tf.lookup.TextFileInitializer(
            str(vocabulary_file),
            key_dtype=tf.int64,
            key_index=tf.lookup.TextFileIndex.LINE_NUMBER,
            value_dtype=tf.string,
            value_index=tf.lookup.TextFileIndex.WHOLE_LINE,
        )
    else:
        size = tokenizer.vocabulary_size
        initializer = tf.lookup.KeyValueTensorInitializer(
            tf.range(size, dtype=tf.int64),
            tf.constant([tokenizer.id_to_token(i) for i in range(size)]),
        )
    return tf.lookup.StaticHashTable(initializer, default_value="")


def tokenize_endpoint(tokenizer, sequence_length: int, table: tf.lookup.StaticHashTable) -> dict:
    """``tokenize``: ``text`` -> the packed model inputs and the ``tokens`` as strings,
    for clients that call ``serve_tokens`` themselves or want to see the pieces."""

    def tokenize(text):
        inputs = pack_segments(
            [tokenizer.tokenize(clean(text))],
            sequence_length,
            cls_id=tokenizer.cls_id,
            sep_id=tokenizer.sep_id,
            pad_id=tokenizer.pad_id,
            pad_to_batch=True,
        )
        tokens = table.lookup(tf.cast(inputs["token_ids"], tf.int64))
        return {**inputs, "tokens": tf.where(inputs["padding_mask"] > 0, tokens, "")}

    return {"tokenize": (tokenize, [strings("text")])}


def classification_endpoints(model, text_pairs: bool) -> dict:
    """``serving_default``: ``text`` (and ``text_pair``) -> ``label``, ``score``, ``probabilities``;
    ``serve_tokens``: the backbone inputs -> the same."""
    preprocessor = model.preprocessor
    label_names = tf.constant(model.label_names)

    def answers(inputs):
        probabilities = tf.nn.softmax(model(inputs, training=False), axis=-1)
        return {
            "label": tf.gather(label_names, tf.argmax(probabilities, axis=-1)),
            "score": tf.reduce_max(probabilities, axis=-1),
            "probabilities": probabilities,
        }

    if text_pairs:
        def serve(text, text_pair):
            return answers(preprocessor(clean(text), clean(text_pair)))

        signature = [strings("text"), strings("text_pair")]
    else:
        def serve(text):
            return answers(preprocessor(clean(text)))

        signature = [strings("text")]
    return {
        "serving_default": (serve, signature),
        "serve_tokens": (answers, [token_inputs()]),
    }


def token_classification_endpoints(model) -> dict:
    """``serving_default``: ``text`` -> per word ``words``, ``tags``, character ``starts``/``ends``
    (padded with "" and -1); ``serve_tokens``: the backbone inputs -> ``tag_ids`` per position."""
    preprocessor = model.preprocessor
    tag_names = tf.constant(model.tag_names)

    def serve(text):
        text = clean(text)
        words, starts, ends = split_words_with_offsets(text)
        features = preprocessor(words)
        logits = model({name: features[name] for name in BACKBONE_INPUTS}, training=False)
        first = features["first_piece"] > 0
        # Words are kept in order, so the first-piece predictions belong to the
        # first `words_kept` words; the words cut off by the length are tagged O.
        kept = tf.ragged.boolean_mask(tf.argmax(logits, axis=-1, output_type=tf.int32), first)
        cut = words.row_lengths() - tf.cast(kept.row_lengths(), tf.int64)
        tags = tf.concat(
            [
                tf.gather(tag_names, kept),
                tf.RaggedTensor.from_row_lengths(tf.fill([tf.reduce_sum(cut)], "O"), cut),
            ],
            axis=1,
        )
        row_ids = words.value_rowids()
        return {
            "words": words.to_tensor(""),
            "tags": tags.to_tensor(""),
            "starts": words.with_flat_values(char_offsets(text, row_ids, starts.flat_values)).to_tensor(-1),
            "ends": words.with_flat_values(char_offsets(text, row_ids, ends.flat_values)).to_tensor(-1),
        }

    def serve_tokens(inputs):
        return {"tag_ids": tf.argmax(model(inputs, training=False), axis=-1, output_type=tf.int32)}

    return {
        "serving_default": (serve, [strings("text")]),
        "serve_tokens": (serve_tokens, [token_inputs()]),
    }


def question_answering_endpoints(model, max_answer_length: int) -> dict:
    """``serving_default``: ``question``, ``context`` -> ``answer``, character ``start``/``end``,
    ``score`` (the best span over all windows); ``serve_tokens``: the backbone inputs ->
    ``start_logits``, ``end_logits``."""
    preprocessor = model.preprocessor
    length = preprocessor.sequence_length
    window_fields = {
        **{name: tf.int32 for name in BACKBONE_INPUTS},
        "start_offsets": tf.int64,
        "end_offsets": tf.int64,
    }
    band = tf.linalg.band_part(tf.ones([length, length], tf.bool), 0, max_answer_length - 1)

    def serve(question, context):
        context = clean(context)
        windows = tf.map_fn(
            lambda example: {
                k: v
                for k, v in preprocessor.windows(example[0], example[1]).items()
                if k in window_fields
            },
            (clean(question), context),
            fn_output_signature={
                k: tf.RaggedTensorSpec([None, length], dtype, ragged_rank=0)
                for k, dtype in window_fields.items()
            },
        )
        example_of_window = windows["token_ids"].value_rowids()
        flat = {k: v.values for k, v in windows.items()}  # [windows, length]
        logits = model({name: flat[name] for name in BACKBONE_INPUTS}, training=False)
        in_context = flat["start_offsets"] >= 0
        allowed = band[tf.newaxis] & in_context[:, :, tf.newaxis] & in_context[:, tf.newaxis, :]
        scores = logits["start"][:, :, tf.newaxis] + logits["end"][:, tf.newaxis, :]
        scores = tf.reshape(tf.where(allowed, scores, _IMPOSSIBLE), [-1, length * length])
        best = tf.argmax(scores, axis=-1, output_type=tf.int32)
        best_score = tf.reduce_max(scores, axis=-1)
        start = tf.gather(flat["start_offsets"], best // length, batch_dims=1)
        end = tf.gather(flat["end_offsets"], best % length, batch_dims=1)
        # The best window of each example.
        per_example = tf.RaggedTensor.from_value_rowids(best_score, example_of_window)
        choice = windows["token_ids"].row_starts() + tf.argmax(
            per_example.to_tensor(_IMPOSSIBLE * 2), axis=-1
        )
        score = tf.gather(best_score, choice)
        found = score > _IMPOSSIBLE / 2
        start = tf.where(found, tf.gather(start, choice), 0)
        end = tf.where(found, tf.gather(end, choice), 0)
        rows = tf.range(tf.shape(context, out_type=tf.int64)[0])
        return {
            "answer": tf.strings.substr(context, tf.cast(start, tf.int32), tf.cast(end - start, tf.int32)),
            "start": char_offsets(context, rows, start),
            "end": char_offsets(context, rows, end),
            "score": score,
        }

    def serve_tokens(inputs):
        logits = model(inputs, training=False)
        return {"start_logits": logits["start"], "end_logits": logits["end"]}

    return {
        "serving_default": (serve, [strings("question"), strings("context")]),
        "serve_tokens": (serve_tokens, [token_inputs()]),
    }


def fill_mask_endpoints(pretrainer, tokenizer, sequence_length: int, table, top_k: int = 5) -> dict:
    """``serving_default``: ``text`` with ``[MASK]`` marks -> the ``top_k`` ``tokens`` and
    their ``scores`` (probabilities) for each mark, ``[batch, marks, top_k]`` (padded with
    "" and 0); ``serve_tokens``: the backbone inputs plus ``mask_positions`` -> the same.
    The mark is the tokenizer's mask token (``[MASK]`` for WordPiece, ``<mask>`` otherwise)."""
    mask_id = tokenizer.mask_id
    mask_token = tokenizer.id_to_token(mask_id)

    def predictions(inputs, positions, real):
        logits = pretrainer({**inputs, "mask_positions": positions}, training=False)["mlm"]
        best = tf.math.top_k(tf.nn.softmax(logits, axis=-1), k=top_k)
        real = real[:, :, tf.newaxis]
        tokens = table.lookup(tf.cast(best.indices, tf.int64))
        return {"tokens": tf.where(real, tokens, ""), "scores": tf.where(real, best.values, 0.0)}

    def serve(text):
        # "[MASK]" would be split like any bracketed word, so the text is cut
        # at each mark and the mask id is put back between the pieces.
        parts = tf.strings.split(clean(text), sep=mask_token)  # [batch, (parts)]
        pieces = tokenizer.tokenize(parts.flat_values)
        position = tf.ragged.range(parts.row_lengths()).flat_values
        follows = tf.cast(position < tf.repeat(parts.row_lengths() - 1, parts.row_lengths()), tf.int64)
        marks = tf.RaggedTensor.from_row_lengths(tf.fill([tf.reduce_sum(follows)], mask_id), follows)
        token_ids = parts.with_flat_values(tf.concat([pieces, marks], axis=1)).merge_dims(1, 2)
        inputs = pack_segments(
            [token_ids],
            sequence_length,
            cls_id=tokenizer.cls_id,
            sep_id=tokenizer.sep_id,
            pad_id=tokenizer.pad_id,
            pad_to_batch=True,
        )
        return serve_tokens(inputs)

    def serve_tokens(inputs):
        is_mask = inputs["token_ids"] == mask_id
        columns = tf.broadcast_to(tf.range(tf.shape(is_mask)[1]), tf.shape(is_mask))
        found = tf.ragged.boolean_mask(columns, is_mask)
        width = tf.maximum(tf.reduce_max(found.row_lengths()), 1)  # at least one column
        shape = tf.stack([tf.shape(is_mask, out_type=tf.int64)[0], tf.cast(width, tf.int64)])
        positions = found.to_tensor(0, shape=shape)
        real = tf.ragged.boolean_mask(tf.ones_like(columns, tf.bool), is_mask).to_tensor(False, shape=shape)
        return predictions(inputs, positions, real)

    return {
        "serving_default": (serve, [strings("text")]),
        "serve_tokens": (serve_tokens, [token_inputs()]),
    }
