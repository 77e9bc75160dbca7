"""Extractive QA recipe: SQuAD v1.1 JSON in, exact match and F1 out."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfptlm.data.question_answering_inputs import QuestionAnsweringPreprocessor
from tfptlm.data.squad import QAExample, read_squad
from tfptlm.data.data_errors import ReadResult
from tfptlm.finetuning.recipe import Recipe, shuffled
from tfptlm.metrics import squad_metrics
from tfptlm.tasks.question_answerer import QuestionAnswerer, window_dataset
from tfptlm.tasks.task import BACKBONE_INPUTS

#: How many unanswerable question ids the report lists.
_LISTED_IDS = 10


class QuestionAnsweringRecipe(Recipe):
    """Answers are spans of the context; long contexts are read in windows."""

    task = "question_answering"

    def read(self, path, data, labels, require_labels: bool = True) -> ReadResult:
        return read_squad(path, skip_bad_rows=data.skip_bad_rows, require_answers=require_labels)

    def texts(self, examples):
        return sorted({e.context for e in examples.examples}) + [e.question for e in examples.examples]

    def build(self, backbone, labels, config, tokenizer):
        return QuestionAnswerer(backbone)

    def preprocessor(self, tokenizer, data, model):
        return QuestionAnsweringPreprocessor(
            tokenizer, data.sequence_length, data.doc_stride, data.max_question_length
        )

    def dataset(self, model, examples, batch_size, seed):
        """Windows of the training questions; a question whose (first) answer is
        in no window (e.g. cut off with a long question) is left out and reported."""
        items = examples.examples
        starts, ends = zip(*(_answer_bytes(e) for e in items)) if items else ((), ())
        columns = {name: [] for name in (*BACKBONE_INPUTS, "start_positions", "end_positions", "has_answer", "example_index")}
        for windows in window_dataset(
            model.preprocessor, [e.question for e in items], [e.context for e in items], 256, starts, ends
        ):
            for name in columns:
                columns[name].append(windows[name].numpy())
        arrays = {name: np.concatenate(values) for name, values in columns.items()}
        answered = np.zeros(len(items), bool)
        answered[arrays["example_index"][arrays["has_answer"]]] = True
        keep = answered[arrays["example_index"]]
        lost = [items[i].id for i in np.flatnonzero(~answered)]
        if lost:
            print(
                f"{len(lost)} training question(s) have no window that holds the whole answer "
                f"and are left out, e.g. {', '.join(lost[:_LISTED_IDS])}"
            )
        inputs = {name: arrays[name][keep] for name in BACKBONE_INPUTS}
        labels = {"start": arrays["start_positions"][keep], "end": arrays["end_positions"][keep]}
        count = int(keep.sum())
        dataset = tf.data.Dataset.from_tensor_slices((inputs, labels))
        dataset = shuffled(dataset, count, seed).batch(batch_size)
        report = {"questions_without_answer_window": len(lost), "training_windows": count}
        return dataset.prefetch(tf.data.AUTOTUNE), count, report

    def evaluate(self, model, examples, data, batch_size, output_dir):
        answers = model.answer(
            [e.question for e in examples.examples],
            [e.context for e in examples.examples],
            max_answer_length=data.max_answer_length,
            batch_size=batch_size,
        )
        return squad_metrics(
            {e.id: a["text"] for e, a in zip(examples.examples, answers)},
            {e.id: [text for text, _ in e.answers] for e in examples.examples},
        )

    def predict(self, model, examples, data, batch_size):
        answers = model.answer(
            [e.question for e in examples.examples],
            [e.context for e in examples.examples],
            max_answer_length=data.max_answer_length,
            batch_size=batch_size,
        )
        return [{"id": e.id, "question": e.question, **a} for e, a in zip(examples.examples, answers)]

    def raw_examples(self, texts, options):
        questions, context = options.get("question") or [], options.get("context")
        if texts or not questions or not context:
            raise ValueError("question answering takes --question Q [Q ...] --context TEXT (or --input FILE.json)")
        return ReadResult(
            [QAExample(f"q{i + 1}", q, context, [], f"argument {i + 1}") for i, q in enumerate(questions)]
        )


def _answer_bytes(example: QAExample) -> tuple[int, int]:
    """The first answer's UTF-8 byte span in the context, or (-1, -1) without answers."""
    if not example.answers:
        return -1, -1
    text, start = example.answers[0]
    begin = len(example.context[:start].encode("utf-8"))
    return begin, begin + len(text.encode("utf-8"))
