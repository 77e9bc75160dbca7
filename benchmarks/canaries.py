"""Canary exposure of a tiny GPT pretrained with and without DP-SGD (the "secret sharer" test).

Four canaries (``my secret number is d d d d d d``) are inserted 1, 4, 16 and 64
times into the first ``--corpus-chars`` characters of WikiText-2 (shipped in
tfptlm/resources); a tiny GPT is pretrained on it twice with the same
settings, once plainly and once with ``training.privacy`` (DP-SGD, noise
multiplier ``--noise-multiplier``, clip 1.0), and each canary is ranked among
1,000 candidates by ``tfptlm.analysis.canaries.run_canary_audit``.

Usage (from the repository root)::

    python benchmarks/canaries.py --steps 400

Writes ``benchmarks/results/canaries.{json,md}``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from tfptlm.analysis.canaries import format_table, run_canary_audit
from tfptlm.config import PretrainConfig, load_config

from results_io import DEFAULT_WORK_DIR, REPO_ROOT, Stopwatch, fmt, write_report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR / "canaries")
    parser.add_argument("--corpus-chars", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repetitions", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--noise-multiplier", type=float, default=0.7)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    return parser.parse_args(argv)


def config_for(corpus: Path, args, private: bool) -> PretrainConfig:
    overrides = [
        "objective=clm", "model.family=gpt", "model.num_layers=2", "model.hidden_dim=64", "model.num_heads=2",
        "model.intermediate_dim=128", "model.max_sequence_length=128", "model.dropout=0.0",
        "tokenizer.vocab_size=2000", "data.max_sequence_length=64", "training.batch_size=16",
        f"training.steps={args.steps}", f"training.learning_rate={args.learning_rate}",
        f"training.checkpoint_every={args.steps}", "training.eval_batches=5", f"data.train_files=[{corpus}]",
    ]
    if private:
        overrides.append(f"training.privacy={{enabled: true, l2_norm_clip: 1.0, "
                         f"noise_multiplier: {args.noise_multiplier}}}")
    return load_config(None, overrides)


def main(argv=None) -> None:
    args = parse_args(argv)
    clock = Stopwatch()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    text = (REPO_ROOT / "tfptlm" / "resources" / "wikitext2_train.txt").read_text(encoding="utf-8")
    corpus = args.work_dir / "corpus.txt"
    corpus.write_text(text[:args.corpus_chars].rsplit("\n", 1)[0] + "\n", encoding="utf-8")
    runs = {}
    for name, private in (("plain", False), ("dp", True)):
        out = args.work_dir / name
        shutil.rmtree(out, ignore_errors=True)  # a fresh run, never a resumed one
        report = run_canary_audit(config_for(corpus, args, private), out, args.repetitions, args.candidates,
                                  seed=0, verbose=2)
        clock.log(f"{name}:\n{format_table(report)}")
        runs[name] = report
    body = [
        "Tiny GPT (2 layers, hidden 64), the same canaries and seed in both runs; exposure = "
        "log2(|R|) - log2(rank) with |R| = the canary + random candidates of the same format "
        f"({args.candidates}; max exposure {fmt(runs['plain']['canaries'][0]['max_exposure'], 2)}). "
        "Measured under load (2 shared cores). The DP guarantee is per packed 64-token block: a canary "
        "inserted k times is protected only as a group of k blocks.",
        "",
        "| repetitions | exposure, plain | exposure, DP-SGD | rank plain | rank DP |",
        "| --- | --- | --- | --- | --- |",
    ]
    for plain, dp in zip(runs["plain"]["canaries"], runs["dp"]["canaries"]):
        body.append(f"| {plain['repetitions']} | {fmt(plain['exposure'], 2)} | {fmt(dp['exposure'], 2)} | "
                     f"{plain['rank']} | {dp['rank']} |")
    body += ["", "Training: " + "; ".join(
        f"{name}: " + ", ".join(f"{k} {v:.4g}" for k, v in run["training"].items())
        for name, run in runs.items())]
    write_report("canaries", "Canary exposure with and without DP-SGD", {"settings": {
        k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "runs": runs}, body, clock)


if __name__ == "__main__":
    main()
