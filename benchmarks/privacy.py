"""SST-2 with differential privacy: dev accuracy of DP-SGD fine-tuning at epsilon 1, 3 and 8 vs non-private.

all-MiniLM-L6-v2 (converted once by ``finetune_common.minilm_backbone_dir``) is
fine-tuned with ``training.privacy`` (DP-SGD: per-example clipping at
``--clip``, Gaussian noise; the noise multiplier solved by dp-accounting's RDP
accountant so the run spends exactly the target epsilon at delta 1e-5) on a
seeded random subset of the SST-2 training set, and scored on the 872 dev
sentences. The non-private row is the same run without ``training.privacy``.
By default the DP runs train the classification head only (``train_backbone:
false``): with a few dozen steps on 2 CPU cores, noise over all 22.7 M
parameters drowns the signal (``--train-backbone``: the whole model).
The non-private run trains the whole model, or with ``--baseline-head-only``
the head only: the benchmark freezes the backbone (``trainable = False``, as
the library has no non-private head-only setting) and turns the head's dropout
off (``training.dropout=0``; the frozen backbone's own dropout stays on).

Usage (from the repository root; 2 shared CPU cores)::

    python benchmarks/privacy.py --train-subset 2000 --epochs 3 --batch-size 64 --private-learning-rate 0.01
    python benchmarks/privacy.py --train-subset 1200 --epochs 1 --train-backbone --output-stem privacy_full
    python benchmarks/privacy.py --max-steps 3 --epsilons 8 --output-stem privacy_timing   # timing
    python benchmarks/privacy.py --train-subset 20000 --batch-size 256 --epochs 2 --private-learning-rate 0.1 \
        --baseline-head-only --learning-rate 0.1 --output-stem privacy_head_20k

Writes ``benchmarks/results/<stem>.{json,md}`` (default stem privacy), rewritten after every run.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

import tfptlm.finetuning.run as finetuning_run
from finetune_common import finetune, minilm_backbone_dir
from results_io import DEFAULT_DATA_DIR, DEFAULT_WORK_DIR, Stopwatch, fmt, write_report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="holds sst2/")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR / "privacy")
    parser.add_argument("--train-subset", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=48)
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="non-private run")
    parser.add_argument("--private-learning-rate", type=float, default=5e-4, help="DP-SGD runs")
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--train-backbone", action="store_true",
                        help="DP runs train the whole model (default: the head only, privacy.train_backbone false)")
    parser.add_argument("--baseline-head-only", action="store_true",
                        help="the non-private run trains the head only (backbone frozen, head dropout off)")
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 3.0, 8.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-stem", default="privacy")
    return parser.parse_args(argv)


def subset(source: Path, out: Path, count: int, seed: int) -> Path:
    """A seeded random ``count`` rows of a TSV with a header."""
    lines = source.read_text(encoding="utf-8").splitlines()
    rows = lines[1:]
    random.Random(seed).shuffle(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join([lines[0], *rows[:count]]) + "\n", encoding="utf-8")
    return out


def freeze_backbone(prepare):
    """``prepare_backbone`` whose backbone is frozen: ``run_finetuning`` then trains the head only."""
    def frozen(*args, **kwargs):
        backbone, tokenizer = prepare(*args, **kwargs)
        backbone.trainable = False
        return backbone, tokenizer
    return frozen


def main(argv=None) -> None:
    args = parse_args(argv)
    clock = Stopwatch()
    backbone = minilm_backbone_dir(log=clock.log)
    train = subset(args.data_dir / "sst2" / "train.tsv", args.work_dir / "train.tsv", args.train_subset, args.seed)
    common = [
        "task=text_classification", f"backbone.path={backbone}", f"data.train_file={train}",
        f"data.eval_file={args.data_dir / 'sst2' / 'dev.tsv'}", f"data.sequence_length={args.sequence_length}",
        f"training.epochs={args.epochs}", f"training.batch_size={args.batch_size}",
        f"training.seed={args.seed}", "training.eval_batch_size=128",
    ]
    if args.max_steps:
        common.append(f"training.max_steps={args.max_steps}")
    baseline = [f"training.learning_rate={args.learning_rate}"]
    if args.baseline_head_only:
        baseline.append("training.dropout=0")
    plans = [("non-private", None, baseline)]
    for epsilon in args.epsilons:
        plans.append((f"epsilon {epsilon:g}", epsilon, [
            f"training.learning_rate={args.private_learning_rate}",
            f"training.privacy={{enabled: true, l2_norm_clip: {args.clip}, target_epsilon: {epsilon}, "
            f"train_backbone: {str(args.train_backbone).lower()}}}",
        ]))
    baseline_text = ("the classification head only (backbone frozen, head dropout 0, backbone dropout on)"
                     if args.baseline_head_only else "the whole model")
    runs = []
    for name, epsilon, extra in plans:
        out = args.work_dir / name.replace(" ", "_")
        shutil.rmtree(out, ignore_errors=True)  # a fresh run, never a resumed one with other settings
        prepare = finetuning_run.prepare_backbone
        if epsilon is None and args.baseline_head_only:
            finetuning_run.prepare_backbone = freeze_backbone(prepare)
        try:
            record = finetune(common + extra, out, log=clock.log)
        finally:
            finetuning_run.prepare_backbone = prepare
        metrics = record["metrics"]
        full = json.loads((Path(record["output_dir"]) / "metrics.json").read_text())
        record.update(name=name, target_epsilon=epsilon, privacy_epsilon=full.get("privacy_epsilon"),
                      noise_multiplier=(full.get("privacy") or {}).get("noise_multiplier"),
                      sampling_rate=(full.get("privacy") or {}).get("sampling_rate"))
        runs.append(record)
        clock.log(f"{name}: dev accuracy {metrics['accuracy']:.4f}")
        body = [
            "DP-SGD fine-tuning of all-MiniLM-L6-v2 on a seeded SST-2 training subset; dev set (872). "
            "Measured under load: the machine's 2 cores were shared with other workers.",
            "",
            f"Settings: {args.train_subset} training examples, {args.epochs} epoch(s), batch {args.batch_size}, "
            f"sequence length {args.sequence_length}, clip {args.clip}, delta 1e-5 (RDP accountant, Poisson "
            f"sampling assumed: q = batch / N), learning rate {args.learning_rate} (non-private) / "
            f"{args.private_learning_rate} (DP), dropout off under DP; DP runs train "
            f"{'the whole model' if args.train_backbone else 'the classification head only (train_backbone: false)'}"
            f", the non-private run {baseline_text}.",
            "",
            "| run | target epsilon | epsilon spent | sampling rate q | noise multiplier | dev accuracy | steps "
            "| train s |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for run in runs:
            body.append(
                f"| {run['name']} | {fmt(run['target_epsilon'], 1)} | {fmt(run['privacy_epsilon'], 3)} | "
                f"{fmt(run['sampling_rate'], 4)} | {fmt(run['noise_multiplier'], 3)} | "
                f"{fmt(run['metrics']['accuracy'], 4)} | "
                f"{run['metrics']['steps']} | {fmt(run['metrics']['train_seconds'], 0)} |"
            )
        report = {"settings": vars(args) | {"data_dir": str(args.data_dir), "work_dir": str(args.work_dir)},
                  "runs": runs}
        write_report(args.output_stem, "SST-2 accuracy under differential privacy (DP-SGD)", report, body,
                     clock, complete=len(runs) == len(plans))


if __name__ == "__main__":
    main()
