"""The fine-tuning run behind ``tfptlm finetune``, and loading, scoring and using its output.

A fine-tuned model directory holds::

    config.yaml          the resolved config
    run_info.json        package versions, git commit, seed and start step of every invocation
    checkpoints/         a checkpoint per epoch; re-running the same command resumes there
    task.json            the task and how its inputs are read and packed
    model.keras          the task model (backbone + head)
    tokenizer/           vocab.txt + tokenizer.json
    history.csv, logs/   training curves (CSV and TensorBoard)
    metrics.json         held-out metrics (accuracy/macro_f1, entity_f1, exact_match/f1, or
                         perplexity/bleu/rouge/test_pass_share for the generative tasks),
                         skipped bad rows, time taken
    confusion_matrix.png classification only
    generations.jsonl    seq2seq and causal_lm: the held-out generations

Example:

>>> config = load_config("configs/sst2_finetune.yaml", config_class=FinetuneConfig)
>>> metrics = run_finetuning(config, "runs/sst2")
>>> model = load_finetuned("runs/sst2")
>>> predict_examples(model, model.recipe.raw_examples(["A joy to watch."], {}))
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from pathlib import Path

import keras

from tfptlm.analysis.bias import augment_with_counterfactuals
from tfptlm.config import ConfigError, FinetuneConfig, FinetuneDataConfig, dump_config
from tfptlm.finetuning.backbones import TOKENIZER_DIR, load_model_dir, prepare_backbone
from tfptlm.finetuning.classification import ClassificationRecipe
from tfptlm.finetuning.generative import CausalLMRecipe, Seq2SeqRecipe
from tfptlm.finetuning.question_answering import QuestionAnsweringRecipe
from tfptlm.data.data_errors import ReadResult
from tfptlm.finetuning.recipe import Recipe, split_held_out
from tfptlm.finetuning.token_classification import TokenClassificationRecipe
from tfptlm.training.callbacks import CheckpointEveryEpoch, StopAtStep, ThroughputMeter
from tfptlm.training.checkpoints import check_resumable, continue_stream, resume
from tfptlm.training.distribution import (
    jit_compile_for_strategy, outside_strategy, run_distributed, shard_by_data,
)
from tfptlm.training.adversarial import adversarial_trainer
from tfptlm.training.privacy import plan_privacy
from tfptlm.training.nan_guard import NaNGuard
from tfptlm.training.optimizer import create_optimizer
from tfptlm.training.output_dir import check_output_dir
from tfptlm.training.reproducibility import seed_everything
from tfptlm.training.run_records import record_run
from tfptlm.training.runtime import set_precision

RECIPES: dict[str, Recipe] = {
    recipe.task: recipe
    for recipe in (
        ClassificationRecipe(),
        TokenClassificationRecipe(),
        QuestionAnsweringRecipe(),
        Seq2SeqRecipe(),
        CausalLMRecipe(),
    )
}
MODEL_FILE = "model.keras"
TASK_FILE = "task.json"


def run_finetuning(config: FinetuneConfig, output_dir: str | Path, verbose: int = 1) -> dict:
    """Fine-tunes as configured, scores the held-out examples and saves the model.

    Returns the metrics (also written to ``metrics.json``). With
    ``training.distribution`` it runs on this worker's share of the devices or
    machines (:mod:`tfptlm.training.distribution`); only the chief writes ``output_dir``.
    """
    config.validate()
    return run_distributed(config.training, output_dir, lambda out: _finetune(config, out, Path(output_dir), verbose))


def _finetune(config: FinetuneConfig, output_dir: Path, shared_dir: Path, verbose: int) -> dict:
    """:func:`run_finetuning` on one worker: writes ``output_dir``, resumes from ``shared_dir`` (the chief's)."""
    check_output_dir(output_dir)
    recipe = RECIPES[config.task]
    data = config.data
    if not data.train_file:
        raise ConfigError("data.train_file is not set (use --train-file or the config)")
    # Read and check every file before any long work starts.
    labels = list(data.label_names) if data.label_names else None
    train = recipe.read(data.train_file, data, labels)
    evaluation = recipe.read(data.eval_file, data, labels) if data.eval_file else None
    if evaluation is None:
        train, evaluation = split_held_out(train, data.eval_share, config.training.seed)
    labels = recipe.label_names([train, evaluation], data)
    train, augmentation = augment_with_counterfactuals(train, data.counterfactual_augmentation)
    for name, examples in (("training", train), ("evaluation", evaluation)):
        if examples.skipped:
            print(f"Skipped {examples.skipped} bad {name} row(s), e.g. {examples.skipped_examples[0]}")

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    check_resumable(config, output_dir, ("task", "backbone", "tokenizer"))
    dump_config(config, output_dir / "config.yaml")
    training = config.training
    seed_everything(training.seed, training.deterministic)
    set_precision(training.mixed_precision)
    backbone, tokenizer = prepare_backbone(config, recipe.texts(train))
    model = recipe.build(backbone, labels, config, tokenizer)
    model.preprocessor = recipe.preprocessor(tokenizer, data, model)

    dataset, count, report = recipe.dataset(model, train, training.batch_size, training.seed)
    steps_per_epoch = math.ceil(count / training.batch_size)
    total_steps = steps_per_epoch * training.epochs
    if training.max_steps:
        total_steps = min(total_steps, training.max_steps)
    optimizer = create_optimizer(
        learning_rate=training.learning_rate,
        total_steps=max(total_steps, 1),
        warmup_steps=int(total_steps * training.warmup_ratio),
        weight_decay=training.weight_decay,
        clip_norm=None if training.privacy.enabled else training.clip_norm,  # DP clips per example
    )
    privacy = plan_privacy(training.privacy, count, training.batch_size, total_steps)
    # Resume: weights, optimizer, step and dropout seeds from the newest readable
    # checkpoint (one per epoch), and the data stream from the batch after the last one.
    optimizer.build(model.trainable_variables)
    manager, start_step = resume(model, optimizer, output_dir, shared_dir, total_steps)
    record_run(output_dir, start_step, training.seed, training.deterministic)
    epoch_steps = min(steps_per_epoch, total_steps)

    jit_compile = jit_compile_for_strategy(training.jit_compile)
    # The model itself, or a trainer that also fits it on perturbed word embeddings.
    fitted = privacy.trainer(model) if privacy else adversarial_trainer(model, training.adversarial)
    fitted.compile(optimizer=optimizer, jit_compile=jit_compile)
    throughput = ThroughputMeter(training.batch_size)
    started = time.perf_counter()
    if start_step < total_steps:  # else: a finished run re-run, nothing left to train
        # Taggers and QA readers do not use the backbone's pooler; Keras would
        # warn on every run that it gets no gradients.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Gradients do not exist for variables \[.*pool")
            fitted.fit(
                shard_by_data(continue_stream(dataset.repeat(), start_step)),
                epochs=math.ceil(total_steps / steps_per_epoch),
                initial_epoch=start_step // epoch_steps,
                steps_per_epoch=epoch_steps,
                class_weight=recipe.class_weight(model, train, training.class_weights),
                shuffle=False,  # the dataset shuffles itself, every epoch
                callbacks=[
                    NaNGuard(output_dir / "checkpoints"),  # first: it raises before anything saves
                    StopAtStep(total_steps),
                    CheckpointEveryEpoch(manager),
                    throughput,
                    keras.callbacks.CSVLogger(str(output_dir / "history.csv"), append=start_step > 0),
                    keras.callbacks.TensorBoard(str(output_dir / "logs"), write_graph=False),
                ],
                verbose=verbose,
            )
    train_seconds = time.perf_counter() - started

    save_finetuned(model, tokenizer, recipe, data, output_dir)
    with outside_strategy(model):  # exact held-out scores, the same on every worker
        metrics = recipe.evaluate(model, evaluation, data, training.eval_batch_size, output_dir)
    metrics.update(
        task=config.task,
        train_examples=len(train.examples),
        eval_examples=len(evaluation.examples),
        skipped_rows={"train": train.skipped, "eval": evaluation.skipped},
        steps=int(optimizer.iterations.numpy()),
        steps_this_run=int(optimizer.iterations.numpy()) - start_step,
        train_seconds=train_seconds,
        examples_per_second=throughput.tokens_per_second,
        **report,
        **augmentation,
        **(privacy.report(int(optimizer.iterations.numpy())) if privacy else {}),
    )
    if privacy:
        print(f"Privacy: epsilon {metrics['privacy_epsilon']:.3f} at delta {privacy.delta:g}")
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def save_finetuned(model, tokenizer, recipe: Recipe, data: FinetuneDataConfig, output_dir: str | Path) -> None:
    """Writes ``model.keras``, ``tokenizer/`` and ``task.json`` (task + data settings)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save(output_dir / MODEL_FILE)
    tokenizer.save(output_dir / TOKENIZER_DIR)
    task = {"task": recipe.task, "data": dataclasses.asdict(data)}
    (output_dir / TASK_FILE).write_text(json.dumps(task, indent=2) + "\n")


def load_finetuned(model_dir: str | Path, data_overrides: dict | None = None):
    """Loads a fine-tuned model directory, ready for raw inputs.

    The model gets ``preprocessor`` (as in training), ``recipe`` and
    ``data_config`` (the saved data settings, with ``data_overrides``).
    """
    model_dir = Path(model_dir)
    task_file = model_dir / TASK_FILE
    if not task_file.is_file():
        raise FileNotFoundError(f"{model_dir} is not a fine-tuned model directory (no {TASK_FILE})")
    task = json.loads(task_file.read_text())
    data = FinetuneDataConfig(**{**task["data"], **(data_overrides or {})})
    recipe = RECIPES[task["task"]]
    model, tokenizer = load_model_dir(model_dir, MODEL_FILE, "a `tfptlm finetune` output directory holds both")
    model.preprocessor = recipe.preprocessor(tokenizer, data, model)
    model.recipe = recipe
    model.data_config = data
    return model


def evaluate_file(model, path: str, batch_size: int = 64, output_dir: str | Path | None = None) -> dict:
    """Scores a loaded fine-tuned model on a labelled file read with its data settings."""
    recipe, data = model.recipe, model.data_config
    labels = getattr(model, "label_names", None) or getattr(model, "tag_names", None)
    examples = recipe.read(path, data, labels)
    metrics = recipe.evaluate(model, examples, data, batch_size, output_dir)
    metrics["skipped_rows"] = examples.skipped
    return metrics


def read_unlabelled(model, path: str) -> ReadResult:
    """Reads inputs to predict from a file in the model's format (labels not required)."""
    return model.recipe.read(path, model.data_config, None, require_labels=False)


def predict_examples(model, examples: ReadResult, batch_size: int = 64) -> list[dict]:
    """JSON-ready predictions of a loaded fine-tuned model."""
    return model.recipe.predict(model, examples, model.data_config, batch_size)
