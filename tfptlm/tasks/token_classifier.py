"""Token classification (named-entity recognition): one tag per word.

Only the first word piece of each word is trained and read (see
`TokenClassificationPreprocessor`); predictions come back per word, and as
entities with character offsets for raw text.

Example:

>>> tagger = TokenClassifier(backbone, tag_names=["O", "B-PER", "I-PER"])
>>> tagger.preprocessor = TokenClassificationPreprocessor(tokenizer, 128)
>>> tagger.tag_words([["Angela", "Merkel", "spoke"]])        # doctest: +SKIP
[['B-PER', 'I-PER', 'O']]
>>> tagger.find_entities(["Angela Merkel spoke."])           # doctest: +SKIP
[[{'type': 'PER', 'text': 'Angela Merkel', 'start': 0, 'end': 13}]]
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tfptlm.data.conll import tags_to_spans
from tfptlm.tasks.task import Task, backbone_inputs, head_initializer
from tfptlm.tokenizers.normalization import split_words_with_offsets


@keras.saving.register_keras_serializable(package="tfptlm")
class TokenClassifier(Task):
    """A dense layer on every position of the backbone's output; float32 logits `[batch, length, tags]`.

    Args:
        backbone: the encoder (see `tfptlm.tasks.task`).
        tag_names: one name per tag id, e.g. ``["O", "B-PER", "I-PER"]``.
        tag_scheme: how the tags mark entities: ``iob1``, ``iob2`` or ``bmes``.
        dropout: dropout before the output layer.
    """

    def __init__(
        self,
        backbone: keras.Model,
        tag_names: Sequence[str],
        tag_scheme: str = "iob2",
        dropout: float = 0.1,
        **kwargs,
    ):
        # === Layers ===
        self.backbone = backbone
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            len(tag_names), kernel_initializer=head_initializer(), dtype="float32", name="logits"
        )
        # === Functional model ===
        inputs = backbone_inputs()
        sequence = backbone(inputs)["sequence_output"]
        logits = self.output_dense(self.output_dropout(sequence))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        # === Config ===
        self.tag_names = [str(name) for name in tag_names]
        self.tag_scheme = tag_scheme
        self.dropout = dropout
        self.preprocessor = None

    def task_config(self) -> dict:
        return {"tag_names": self.tag_names, "tag_scheme": self.tag_scheme, "dropout": self.dropout}

    def compile(self, optimizer="adam", **kwargs) -> None:
        """Cross-entropy averaged over the weighted (first-piece) positions, and their accuracy."""
        kwargs.setdefault(
            "loss",
            keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, reduction="mean_with_sample_weight"
            ),
        )
        kwargs.setdefault(
            "weighted_metrics", [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        )
        super().compile(optimizer=optimizer, **kwargs)

    def tag_words(self, sentences: Sequence[Sequence[str]], batch_size: int = 32) -> list[list[str]]:
        """Tags pre-split words; words cut off by the sequence length get ``"O"``.

        Needs ``self.preprocessor`` (a `TokenClassificationPreprocessor`).
        """
        if self.preprocessor is None:
            raise ValueError("set tagger.preprocessor before tagging raw text")
        tagged = []
        for begin in range(0, len(sentences), batch_size):
            chunk = [list(words) for words in sentences[begin : begin + batch_size]]
            words = tf.ragged.constant(chunk, dtype=tf.string, ragged_rank=1)
            features = self.preprocessor(words)
            inputs = {name: features[name] for name in ("token_ids", "segment_ids", "padding_mask")}
            predicted = np.argmax(keras.ops.convert_to_numpy(self.predict_on_batch(inputs)), -1)
            word_ids = features["word_ids"].numpy()
            first = features["first_piece"].numpy().astype(bool)
            for row, sentence in enumerate(chunk):
                tags = ["O"] * len(sentence)
                for word, tag in zip(word_ids[row][first[row]], predicted[row][first[row]]):
                    tags[word] = self.tag_names[tag]
                tagged.append(tags)
        return tagged

    def find_entities(self, texts: Sequence[str], batch_size: int = 32) -> list[list[dict]]:
        """Entities in raw strings: ``{"type", "text", "start", "end"}`` with character offsets.

        Text is split into words at whitespace, punctuation and CJK characters.
        """
        words, starts, ends = split_words_with_offsets(tf.constant(list(texts), tf.string))
        sentences = [[word.decode("utf-8") for word in row] for row in words.to_list()]
        all_tags = self.tag_words(sentences, batch_size)
        results = []
        for text, tags, word_starts, word_ends in zip(
            texts, all_tags, starts.to_list(), ends.to_list()
        ):
            encoded = text.encode("utf-8")
            entities = []
            for entity_type, first, last in tags_to_spans(tags, self.tag_scheme):
                start, end = word_starts[first], word_ends[last - 1]
                entities.append(
                    {
                        "type": entity_type,
                        "text": encoded[start:end].decode("utf-8"),
                        "start": len(encoded[:start].decode("utf-8")),
                        "end": len(encoded[:end].decode("utf-8")),
                    }
                )
            results.append(entities)
        return results
