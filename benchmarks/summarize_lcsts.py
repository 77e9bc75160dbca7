"""LCSTS Chinese short-text summarization: a small BART from scratch with tfptlm, ROUGE on held-out pairs.

The workplace has only LCSTS part II (10,666 Weibo post -> headline pairs, one
split named "test", CRLF line ends; see lcsts/SOURCE.md). This benchmark holds
out ``--eval-pairs`` (500) pairs drawn with ``random.Random(--split-seed)``,
writes both parts as LF parallel files (``<part>.src.txt`` / ``<part>.tgt.txt``)
under ``--work-dir``, and trains with ``run_finetuning`` (task ``seq2seq``,
``backbone.family: bart``, ``--size`` tiny by default: 2 + 2 layers, hidden
128) from random initialization on the other 10,166 pairs, with a SentencePiece
vocabulary (``--vocab-size``) learned on the training posts and summaries.

Scores on the held-out pairs: ROUGE-1/2/L F1 (rouge-score, every Chinese
character a token: ``data.language: zh``), BLEU (sacreBLEU ``zh`` tokenizer),
all 0-1 fractions, on greedy generations of every held-out pair, and
perplexity per summary token (teacher forcing).

Baseline for context: lead-N, the first N characters of the post, with N the
mean character length of the training summaries (rounded).

Usage (from the repository root)::

    # default: tiny BART, 3 epochs (~14 min on 2 busy cores)
    python benchmarks/summarize_lcsts.py
    # bigger options (not run here)
    python benchmarks/summarize_lcsts.py --epochs 10
    python benchmarks/summarize_lcsts.py --size small --epochs 10 --learning-rate 5e-4
    # smoke run
    python benchmarks/summarize_lcsts.py --max-steps 5 --eval-pairs 16 --output-dir /tmp/smoke

Writes ``benchmarks/results/<stem>.{json,md}`` (default summarize_lcsts).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

from results_io import DEFAULT_DATA_DIR, DEFAULT_WORK_DIR, RESULTS_DIR, Stopwatch, write_report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="holds lcsts/")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR / "summarize_lcsts")
    parser.add_argument("--size", default="tiny", help="backbone.size: tiny (2x128) | small (6x512)")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--sequence-length", type=int, default=128, help="source tokens (cap)")
    parser.add_argument("--target-length", type=int, default=32, help="summary tokens (cap)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--warmup-ratio", type=float, default=0.05)
    parser.add_argument("--eval-pairs", type=int, default=500)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--output-stem", default="summarize_lcsts")
    return parser.parse_args(argv)


def split_lcsts(data: Path, eval_pairs: int, seed: int, out: Path) -> tuple[Path, Path, list, list]:
    """Writes out/train.{src,tgt}.txt and out/heldout.{src,tgt}.txt (LF); returns prefixes and pairs."""
    src = (data / "test.src.txt").read_text(encoding="utf-8").splitlines()  # splitlines drops the \r too
    tgt = (data / "test.tgt.txt").read_text(encoding="utf-8").splitlines()
    if len(src) != len(tgt):
        raise SystemExit(f"LCSTS line counts differ: {len(src)} sources, {len(tgt)} summaries")
    held = set(random.Random(seed).sample(range(len(src)), eval_pairs))
    out.mkdir(parents=True, exist_ok=True)
    parts = {"train": [i for i in range(len(src)) if i not in held], "heldout": sorted(held)}
    pairs = {}
    for name, indexes in parts.items():
        (out / f"{name}.src.txt").write_text("".join(src[i].strip() + "\n" for i in indexes), encoding="utf-8")
        (out / f"{name}.tgt.txt").write_text("".join(tgt[i].strip() + "\n" for i in indexes), encoding="utf-8")
        pairs[name] = [(src[i].strip(), tgt[i].strip()) for i in indexes]
    return out / "train", out / "heldout", pairs["train"], pairs["heldout"]


def main(argv=None) -> None:
    args = parse_args(argv)
    stopwatch = Stopwatch()
    from finetune_common import finetune
    from tfptlm.metrics.generation import bleu, rouge

    train_prefix, eval_prefix, train_pairs, eval_pairs = split_lcsts(
        args.data_dir / "lcsts", args.eval_pairs, args.split_seed, args.work_dir / "data")
    overrides = [
        "task=seq2seq",
        "backbone.family=bart",
        f"backbone.size={args.size}",
        "tokenizer.type=sentencepiece",
        f"tokenizer.vocab_size={args.vocab_size}",
        "tokenizer.lowercase=false",
        "data.format=parallel",
        f"data.train_file={train_prefix}",
        f"data.eval_file={eval_prefix}",
        "data.source_suffix=.src.txt",
        "data.target_suffix=.tgt.txt",
        f"data.sequence_length={args.sequence_length}",
        f"data.target_length={args.target_length}",
        f"data.max_eval_generations={args.eval_pairs}",
        "data.language=zh",
        f"training.epochs={args.epochs}",
        f"training.batch_size={args.batch_size}",
        f"training.learning_rate={args.learning_rate}",
        f"training.warmup_ratio={args.warmup_ratio}",
        f"training.seed={args.seed}",
    ] + ([f"training.max_steps={args.max_steps}"] if args.max_steps else [])
    run_dir = args.work_dir / "bart"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run = finetune(overrides, run_dir, stopwatch.log)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    generations = [json.loads(line) for line in (run_dir / "generations.jsonl").read_text(encoding="utf-8").splitlines()
                   if line.strip()]

    # Lead-N baseline on the same held-out pairs.
    lead_n = round(sum(len(t) for _, t in train_pairs) / len(train_pairs))
    sources = [g["source"] for g in generations]
    references = [g["target"] for g in generations]
    leads = [s[:lead_n] for s in sources]
    lead_scores = rouge(leads, references, "zh")
    lead_scores["bleu"] = bleu(leads, references, "zh")["bleu"]
    generated_lengths = [len(g["generated"]) for g in generations]
    stopwatch.log(f"model: {metrics}; lead-{lead_n}: {lead_scores}")

    body = [
        f"Task: LCSTS part II, Weibo post -> headline. {len(train_pairs):,} training pairs and {len(eval_pairs)} "
        f"held-out pairs (random.Random({args.split_seed}).sample of the 10,666 lines). Model: BART `{args.size}` "
        f"from random initialization, `run_finetuning` (task seq2seq), SentencePiece vocabulary of "
        f"{args.vocab_size:,} trained on the training posts + summaries, sources cut to {args.sequence_length} "
        f"tokens, summaries to {args.target_length}; {args.epochs} epoch(s)"
        + (f", stopped at {args.max_steps} steps" if args.max_steps else "")
        + f" = {metrics['steps']:,} steps of batch {args.batch_size}, AdamW lr {args.learning_rate:g}, "
        f"{args.warmup_ratio:.0%} warm-up then linear decay, dropout 0.1. Training "
        f"{metrics['train_seconds'] / 60:.1f} min ({metrics['examples_per_second']:.1f} pairs/s).",
        "",
        f"Scores on the {metrics['generated_examples']} held-out pairs (greedy, up to {args.target_length} tokens): "
        "ROUGE F1 per Chinese character (mean per summary), sacreBLEU with the zh tokenizer, 0-1 fractions; "
        "perplexity per summary token (teacher forcing).",
        "",
        "| system | ROUGE-1 | ROUGE-2 | ROUGE-L | BLEU | perplexity | mean length (chars) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| BART {args.size} from scratch (greedy) | {metrics['rouge1']:.4f} | {metrics['rouge2']:.4f} | "
        f"{metrics['rougeL']:.4f} | {metrics['bleu']:.4f} | {metrics['perplexity']:.2f} | "
        f"{sum(generated_lengths) / len(generated_lengths):.1f} |",
        f"| lead-{lead_n} characters of the post | {lead_scores['rouge1']:.4f} | {lead_scores['rouge2']:.4f} | "
        f"{lead_scores['rougeL']:.4f} | {lead_scores['bleu']:.4f} | – | {lead_n} |",
        "",
        f"Reference summaries: mean {sum(len(r) for r in references) / len(references):.1f} characters. "
        f"Token accuracy (teacher forcing) {metrics['token_accuracy']:.3f}.",
        "",
        "First generations:",
        "",
    ]
    for g in generations[:5]:
        body.append(f"- post: {g['source'][:80]}…  \n  reference: {g['target']}  \n  model: {g['generated']}")
    md = write_report(
        args.output_stem, "LCSTS: BART from scratch (SentencePiece), ROUGE on held-out pairs",
        {"settings": {"overrides": overrides, "epochs": args.epochs, "eval_pairs": args.eval_pairs,
                      "split_seed": args.split_seed, "train_pairs": len(train_pairs)},
         "run": run, "metrics": metrics, "lead_baseline": {"n_characters": lead_n, **lead_scores},
         "mean_generated_characters": sum(generated_lengths) / len(generated_lengths)},
        body, stopwatch, args.output_dir, complete=True,
    )
    print(md.read_text())


if __name__ == "__main__":
    main()
