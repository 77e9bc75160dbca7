"""Token classification (NER) recipe: CoNLL files in, entity-level F1 out."""

from __future__ import annotations

import tensorflow as tf

from tfptlm.data.conll import read_conll
from tfptlm.data.token_classification_inputs import TokenClassificationPreprocessor
from tfptlm.data.data_errors import ReadResult
from tfptlm.finetuning.recipe import Recipe, shuffled
from tfptlm.metrics import entity_metrics
from tfptlm.tasks.task import BACKBONE_INPUTS
from tfptlm.tasks.token_classifier import TokenClassifier


class TokenClassificationRecipe(Recipe):
    """One tag per word, in the file's tag scheme (IOB1, IOB2 or BMES)."""

    task = "token_classification"

    def read(self, path, data, labels, require_labels: bool = True) -> ReadResult:
        return read_conll(
            path,
            word_column=data.word_column,
            tag_column=data.tag_column,
            scheme=data.tag_scheme,
            skip_bad_rows=data.skip_bad_rows,
            label_names=labels,
        )

    def label_names(self, examples, data):
        if data.label_names:
            return list(data.label_names)
        tags = {tag for e in examples for sentence in e.examples for tag in sentence.tags}
        # "O" first, then entity tags grouped by type: B-PER, I-PER, ...
        return sorted(tags, key=lambda tag: (tag != "O", tag[2:], tag))

    def texts(self, examples):
        return [" ".join(sentence.words) for sentence in examples.examples]

    def build(self, backbone, labels, config, tokenizer):
        return TokenClassifier(
            backbone, labels, tag_scheme=config.data.tag_scheme, dropout=config.training.dropout
        )

    def preprocessor(self, tokenizer, data, model):
        return TokenClassificationPreprocessor(tokenizer, data.sequence_length)

    def dataset(self, model, examples, batch_size, seed):
        index = {tag: i for i, tag in enumerate(model.tag_names)}
        words = tf.ragged.constant([s.words for s in examples.examples], dtype=tf.string, ragged_rank=1)
        tags = tf.ragged.constant(
            [[index[t] for t in s.tags] for s in examples.examples], dtype=tf.int32, ragged_rank=1
        )
        dataset = tf.data.Dataset.from_tensor_slices((words, tags))
        dataset = shuffled(dataset, len(examples.examples), seed).ragged_batch(batch_size)
        preprocessor = model.preprocessor

        def to_model(words, tags):
            features = preprocessor(words, tags)
            inputs = {name: features[name] for name in BACKBONE_INPUTS}
            return inputs, features["labels"], features["first_piece"]

        dataset = dataset.map(to_model, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.prefetch(tf.data.AUTOTUNE), len(examples.examples), {}

    def evaluate(self, model, examples, data, batch_size, output_dir):
        predicted = model.tag_words([s.words for s in examples.examples], batch_size)
        return entity_metrics([s.tags for s in examples.examples], predicted, model.tag_scheme)

    def predict(self, model, examples, data, batch_size):
        if examples.examples and isinstance(examples.examples[0], str):  # raw text
            entities = model.find_entities(examples.examples, batch_size)
            return [{"text": t, "entities": e} for t, e in zip(examples.examples, entities)]
        predicted = model.tag_words([s.words for s in examples.examples], batch_size)
        return [
            {"words": s.words, "tags": tags, "source": s.source}
            for s, tags in zip(examples.examples, predicted)
        ]

    def raw_examples(self, texts, options):
        return ReadResult(list(texts))
