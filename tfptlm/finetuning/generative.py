"""Generative recipes: ``seq2seq`` (T5/BART: translation, summarization) and
``causal_lm`` (GPT: dialogue, code generation).

Both read source -> target pairs (see ``FinetuneDataConfig``), train with
teacher forcing and score held-out pairs with the token loss (perplexity)
and with greedy generations: BLEU and ROUGE against the targets, and for
MBPP tasks the share of test asserts the generated code passes. The
generations are written to ``generations.jsonl`` next to the metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import tensorflow as tf

from tfptlm.data.data_errors import ReadResult
from tfptlm.data.generation_inputs import CausalLMPreprocessor, Seq2SeqPreprocessor
from tfptlm.data.text_pairs import (
    TextPair,
    read_dialogues,
    read_mbpp,
    read_pair_columns,
    read_parallel_files,
    read_text_lines,
)
from tfptlm.finetuning.recipe import Recipe, batched_by_length, shuffled
from tfptlm.generation.text import TextGenerator
from tfptlm.metrics.code_execution import pass_share, run_code_tests
from tfptlm.metrics.generation import bleu, perplexity, rouge
from tfptlm.tasks.causal_lm import CausalLM
from tfptlm.tasks.seq2seq_lm import Seq2SeqLM, decoder_start_id

GENERATIONS_FILE = "generations.jsonl"


def _source_target(example) -> tuple[str, str]:
    """(source, target) of a `TextPair` or an MBPP `CodeTask` (prompt, code)."""
    if isinstance(example, TextPair):
        return example.source, example.target
    return example.prompt, example.code


def token_loss_and_accuracy(model, dataset) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over every real target token of ``dataset``.

    Exact per token (``model.evaluate`` averages batch means weighted by the
    number of sequences, which is off when batches hold different token counts).
    """
    total_loss = total_correct = total_tokens = 0.0
    for features, labels, weights in dataset:
        logits = model(features, training=False)
        losses = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        correct = keras.ops.cast(keras.ops.argmax(logits, axis=-1) == labels, "float32")
        total_loss += float(keras.ops.sum(losses * weights))
        total_correct += float(keras.ops.sum(correct * weights))
        total_tokens += float(keras.ops.sum(weights))
    if not total_tokens:
        raise ValueError("no target tokens to score")
    return total_loss / total_tokens, total_correct / total_tokens


class _PairRecipe(Recipe):
    """What the two generative recipes share: reading pairs, batching, scoring."""

    def read(self, path, data, labels, require_labels: bool = True) -> ReadResult:
        if data.format == "dialogue":
            return read_dialogues(path, skip_bad_rows=data.skip_bad_rows)
        if data.format == "mbpp":
            return ReadResult(read_mbpp(path))
        if data.format == "parallel" or (data.source_suffix and data.target_suffix):
            if not (data.source_suffix and data.target_suffix):
                raise ValueError("format parallel needs data.source_suffix and data.target_suffix")
            if not require_labels:
                return self._sources_only(f"{path}{data.source_suffix}")
            return read_parallel_files(
                f"{path}{data.source_suffix}", f"{path}{data.target_suffix}", skip_bad_rows=data.skip_bad_rows
            )
        return read_pair_columns(
            path,
            source_column=data.source_column,
            target_column=data.target_column if require_labels else None,
            file_format=data.format,
            has_header=data.has_header,
            delimiter=data.delimiter,
            skip_bad_rows=data.skip_bad_rows,
        )

    def _sources_only(self, path: str) -> ReadResult:
        lines = read_text_lines(path)
        return ReadResult([TextPair(line, "", i + 1) for i, line in enumerate(lines) if line.strip()])

    def texts(self, examples):
        return [text for example in examples.examples for text in _source_target(example)]

    def dataset(self, model, examples, batch_size, seed):
        sources, targets = zip(*map(_source_target, examples.examples))
        dataset = tf.data.Dataset.from_tensor_slices((list(sources), list(targets)))
        dataset = batched_by_length(
            shuffled(dataset, len(sources), seed),
            lambda source, target: tf.strings.length(source) + tf.strings.length(target),
            batch_size,
            seed,
        )
        preprocessor = model.preprocessor
        dataset = dataset.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.prefetch(tf.data.AUTOTUNE), len(sources), {}

    def evaluate(self, model, examples, data, batch_size, output_dir):
        dataset, _, _ = self.dataset(model, examples, batch_size, seed=None)
        loss, accuracy = token_loss_and_accuracy(model, dataset)
        metrics = {"loss": loss, "token_accuracy": accuracy, "perplexity": perplexity(loss)}
        scored = examples.examples[: data.max_eval_generations]
        sources = [_source_target(e)[0] for e in scored]
        generations = TextGenerator(model, model.preprocessor).generate(
            sources, max_new_tokens=data.target_length, batch_size=batch_size
        )
        references = [_source_target(e)[1] for e in scored]
        metrics["generated_examples"] = len(scored)
        metrics.update(self._generation_metrics(scored, generations, references, data))
        if output_dir is not None:
            lines = [
                json.dumps({"source": s, "target": r, "generated": g}, ensure_ascii=False)
                for s, r, g in zip(sources, references, generations)
            ]
            Path(output_dir, GENERATIONS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
        return metrics

    def _generation_metrics(self, examples, generations, references, data) -> dict:
        if examples and not isinstance(examples[0], TextPair):  # MBPP tasks: run the tests
            results = [
                run_code_tests(code, task.tests, setup_code=task.setup_code)
                for code, task in zip(generations, examples)
            ]
            return {
                "test_pass_share": pass_share(results),
                "tasks_fully_passed": sum(r.all_passed for r in results) / max(len(results), 1),
            }
        scores = rouge(generations, references, data.language)
        scores["bleu"] = bleu(generations, references, data.language)["bleu"]
        return scores

    def predict(self, model, examples, data, batch_size):
        sources = [_source_target(e)[0] for e in examples.examples]
        generations = TextGenerator(model, model.preprocessor).generate(
            sources, max_new_tokens=data.target_length, batch_size=batch_size
        )
        return [{"source": s, "generated": g} for s, g in zip(sources, generations)]

    def raw_examples(self, texts, options):
        return ReadResult([TextPair(text, "", i + 1) for i, text in enumerate(texts)])


class Seq2SeqRecipe(_PairRecipe):
    """Source -> target with an encoder-decoder (translation, summarization)."""

    task = "seq2seq"

    def build(self, backbone, labels, config, tokenizer):
        return Seq2SeqLM(backbone, decoder_start_id=decoder_start_id(backbone, tokenizer))

    def preprocessor(self, tokenizer, data, model):
        return Seq2SeqPreprocessor(
            tokenizer, data.sequence_length, data.target_length, model.decoder_start_id
        )


class CausalLMRecipe(_PairRecipe):
    """Prompt -> response with a decoder-only model (dialogue, code generation)."""

    task = "causal_lm"

    def build(self, backbone, labels, config, tokenizer):
        return CausalLM(backbone)

    def preprocessor(self, tokenizer, data, model):
        return CausalLMPreprocessor(tokenizer, data.sequence_length)
