"""The pretraining run behind ``tfptlm pretrain``: text files in, pretrained BERT out.

Everything lands in one output directory::

    config.yaml      the resolved config
    tokenizer/       vocab.txt + tokenizer.json
    checkpoints/     step checkpoints (model, optimizer, step); re-running resumes here
    logs/            TensorBoard logs
    history.csv      training and held-out metrics every ``checkpoint_every`` steps
    metrics.json     final held-out metrics, steps and tokens per second
    pretrainer.keras the MLM + NSP model; backbone.keras the encoder alone

Example:

>>> config = load_config("configs/bert_tiny_pretrain.yaml")
>>> metrics = run_pretraining(config, "runs/bert_tiny")
>>> metrics["mlm_accuracy"], metrics["nsp_accuracy"]
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections import Counter
from pathlib import Path

import keras
import tensorflow as tf

from tfptlm.config import PretrainConfig, dump_config, load_config
from tfptlm.data import (
    CorpusError,
    make_bert_pretraining_dataset,
    read_documents,
    validate_for_nsp,
)
from tfptlm.models.bert import BertBackbone
from tfptlm.tasks.bert_pretrainer import BertPretrainer
from tfptlm.tokenizers import WordPieceTokenizer, train_wordpiece_vocabulary
from tfptlm.training.callbacks import CheckpointEveryEpoch, StopAtStep, ThroughputMeter
from tfptlm.training.optimizer import create_optimizer
from tfptlm.training.runtime import resolve_jit_compile, set_precision

#: Share of the training documents held out for evaluation when no eval files are given.
HELD_OUT_SHARE = 0.05


def load_corpora(config: PretrainConfig) -> tuple[list, list]:
    """Reads and checks the train and eval documents; fails before any training."""
    data = config.data
    if not data.train_files:
        raise ValueError("no training files: set data.train_files or pass --train-files")
    train = read_documents(data.train_files, data.one_document_per_line)
    if data.eval_files:
        evaluation = read_documents(data.eval_files, data.one_document_per_line)
    else:
        held_out = max(2, int(len(train) * HELD_OUT_SHARE))
        if len(train) < held_out + 2:
            raise CorpusError(
                f"{len(train)} documents in {data.train_files} are too few to hold out "
                f"{held_out} for evaluation and train on the rest; pass evaluation "
                "files (--eval-files or data.eval_files)"
            )
        train, evaluation = train[:-held_out], train[-held_out:]
    validate_for_nsp(train, data.train_files)
    validate_for_nsp(evaluation, data.eval_files or data.train_files)
    return train, evaluation


def check_resumable(config: PretrainConfig, output_dir: Path) -> None:
    """Refuses to resume checkpoints made with a different model or tokenizer config."""
    previous = output_dir / "config.yaml"
    if not (output_dir / "checkpoints" / "checkpoint").is_file() or not previous.is_file():
        return
    before = load_config(previous)
    changed = [
        f"{section}.{name}"
        for section in ("model", "tokenizer")
        for name, value in dataclasses.asdict(getattr(config, section)).items()
        if dataclasses.asdict(getattr(before, section))[name] != value
    ]
    if changed:
        raise ValueError(
            f"{output_dir} holds checkpoints of a run with other settings "
            f"({', '.join(changed)} differ from {previous}); use a new --output-dir "
            "or the same settings to resume"
        )


def prepare_tokenizer(config: PretrainConfig, output_dir: Path) -> WordPieceTokenizer:
    """Loads the run's tokenizer (resume), the configured one, or trains a new one."""
    saved = output_dir / "tokenizer"
    if (saved / "vocab.txt").is_file():
        return WordPieceTokenizer.load(saved)
    if config.tokenizer.path:
        tokenizer = WordPieceTokenizer.load(config.tokenizer.path)
    else:
        print(f"Training a WordPiece vocabulary of about {config.tokenizer.vocab_size} tokens")
        vocabulary = train_wordpiece_vocabulary(
            config.data.train_files,
            vocab_size=config.tokenizer.vocab_size,
            lowercase=config.tokenizer.lowercase,
            strip_accents=config.tokenizer.strip_accents,
        )
        tokenizer = WordPieceTokenizer(
            vocabulary,
            lowercase=config.tokenizer.lowercase,
            strip_accents=config.tokenizer.strip_accents,
        )
    tokenizer.save(saved)
    return tokenizer


def build_pretrainer(config: PretrainConfig, vocabulary_size: int) -> BertPretrainer:
    """Builds the BERT backbone of the configured size and its MLM + NSP heads."""
    model = config.model
    if config.data.max_sequence_length > model.max_sequence_length:
        raise ValueError(
            f"data.max_sequence_length ({config.data.max_sequence_length}) exceeds "
            f"model.max_sequence_length ({model.max_sequence_length})"
        )
    backbone = BertBackbone.from_size(
        model.size,
        vocabulary_size=vocabulary_size,
        num_layers=model.num_layers,
        hidden_dim=model.hidden_dim,
        num_heads=model.num_heads,
        intermediate_dim=model.intermediate_dim,
        max_sequence_length=model.max_sequence_length,
        dropout=model.dropout,
        norm_first=model.norm_first,
        name="bert_backbone",
    )
    return BertPretrainer(backbone, name="bert_pretrainer")


def frequency_baseline(dataset: tf.data.Dataset) -> float:
    """MLM accuracy of always predicting the most frequent masked token."""
    counts: Counter = Counter()
    for _, labels, weights in dataset:
        ids = labels["mlm"].numpy()[weights["mlm"].numpy() > 0]
        counts.update(ids.tolist())
    total = sum(counts.values())
    return counts.most_common(1)[0][1] / total if total else 0.0


def run_pretraining(config: PretrainConfig, output_dir: str | Path, verbose: int = 1) -> dict:
    """Pretrains BERT with MLM + NSP as configured; resumes from ``output_dir`` if it has checkpoints.

    Returns the final held-out metrics (also written to ``metrics.json``).
    """
    config.validate()
    output_dir = Path(output_dir)
    train_documents, eval_documents = load_corpora(config)
    output_dir.mkdir(parents=True, exist_ok=True)
    check_resumable(config, output_dir)
    dump_config(config, output_dir / "config.yaml")

    training = config.training
    keras.utils.set_random_seed(training.seed)
    set_precision(training.mixed_precision)
    tokenizer = prepare_tokenizer(config, output_dir)
    pretrainer = build_pretrainer(config, tokenizer.vocabulary_size)
    optimizer = create_optimizer(
        learning_rate=training.learning_rate,
        total_steps=training.steps,
        warmup_steps=int(training.steps * training.warmup_ratio),
        weight_decay=training.weight_decay,
        clip_norm=training.clip_norm,
    )
    optimizer.build(pretrainer.trainable_variables)
    checkpoint = tf.train.Checkpoint(model=pretrainer, optimizer=optimizer)
    manager = tf.train.CheckpointManager(checkpoint, output_dir / "checkpoints", max_to_keep=3)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    start_step = int(optimizer.iterations.numpy())
    if start_step:
        print(f"Resuming from {manager.latest_checkpoint} (step {start_step})")

    data = config.data
    dataset_options = dict(
        tokenizer=tokenizer,
        batch_size=training.batch_size,
        max_sequence_length=data.max_sequence_length,
        mask_rate=data.mask_rate,
        max_predictions=data.max_predictions,
        random_next_rate=data.random_next_rate,
    )
    # A resumed run gets a new seed so that it does not replay the batches it saw.
    train_dataset = make_bert_pretraining_dataset(
        train_documents, seed=training.seed + start_step, **dataset_options
    )
    eval_dataset = make_bert_pretraining_dataset(
        eval_documents,
        shuffle=False,
        repeat=False,
        seed=training.seed,
        deterministic_eval=True,
        drop_remainder=False,
        **dataset_options,
    ).take(training.eval_batches)

    jit_compile = resolve_jit_compile(training.jit_compile, training.mixed_precision)
    pretrainer.compile(optimizer=optimizer, jit_compile=jit_compile)
    steps_per_epoch = min(training.checkpoint_every, training.steps)
    throughput = ThroughputMeter(training.batch_size * data.max_sequence_length)
    started = time.perf_counter()
    if start_step < training.steps:
        pretrainer.fit(
            train_dataset,
            epochs=math.ceil(training.steps / steps_per_epoch),
            initial_epoch=start_step // steps_per_epoch,
            steps_per_epoch=steps_per_epoch,
            validation_data=eval_dataset,
            shuffle=False,  # the dataset shuffles itself, every epoch
            callbacks=[
                StopAtStep(training.steps),
                CheckpointEveryEpoch(manager),
                throughput,
                keras.callbacks.CSVLogger(str(output_dir / "history.csv"), append=True),
                keras.callbacks.TensorBoard(str(output_dir / "logs"), write_graph=False),
            ],
            verbose=verbose,
        )
    train_seconds = time.perf_counter() - started

    results = pretrainer.evaluate(eval_dataset, return_dict=True, verbose=0)
    metrics = {
        "mlm_accuracy": float(results["mlm_accuracy"]),
        "nsp_accuracy": float(results["nsp_accuracy"]),
        "mlm_loss": float(results["mlm_loss"]),
        "nsp_loss": float(results["nsp_loss"]),
        "loss": float(results["loss"]),
        "mlm_frequency_baseline": frequency_baseline(eval_dataset),
        "steps": int(optimizer.iterations.numpy()),
        "steps_this_run": int(optimizer.iterations.numpy()) - start_step,
        "tokens_per_second": throughput.tokens_per_second,
        "train_seconds": train_seconds,
        "jit_compile": jit_compile,
        "mixed_precision": training.mixed_precision,
        "vocabulary_size": tokenizer.vocabulary_size,
        "train_documents": len(train_documents),
        "eval_documents": len(eval_documents),
    }
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    pretrainer.save(output_dir / "pretrainer.keras")
    pretrainer.backbone.save(output_dir / "backbone.keras")
    return metrics


def summarize(metrics: dict) -> str:
    """One short human summary of :func:`run_pretraining`'s metrics."""
    return (
        f"steps {metrics['steps']} | {metrics['tokens_per_second']:,.0f} tokens/s | "
        f"held-out MLM accuracy {metrics['mlm_accuracy']:.3f} "
        f"(most-frequent-token baseline {metrics['mlm_frequency_baseline']:.3f}) | "
        f"NSP accuracy {metrics['nsp_accuracy']:.3f} (chance 0.5) | "
        f"MLM loss {metrics['mlm_loss']:.3f}"
    )


