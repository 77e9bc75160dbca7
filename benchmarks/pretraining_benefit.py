"""Does pretraining pay? A tiny BERT pretrained with tfptlm vs the same model from random init, 1,000 SST-2 labels.

1. Unlabelled corpus (BERT format: one sentence per line, blank line between
   documents): the WikiText-2 v1 paragraphs of ``wikitext2/valid.txt`` (the
   workplace copy has no train split; heading lines dropped, each paragraph a
   document split into sentences with ``tfptlm.data.text_corpus.split_sentences``)
   plus the text of all 67,349 SST-2 training rows without their labels,
   ``--group`` consecutive rows to a pseudo-document (NSP needs multi-sentence
   documents; consecutive SST-2 rows are unrelated, so their NSP pairs are noise,
   MLM is what they are for). Held-out pretraining metrics: ``wikitext2/test.txt``.
2. ``run_pretraining`` (MLM + NSP) of BERT ``--size`` (default tiny: 2 layers,
   hidden 128) with a WordPiece vocabulary trained on that corpus.
3. Labelled data: ``random.Random(--sample-seed).sample`` draws
   ``--labelled + --validation`` distinct rows of SST-2 train.tsv; the first
   ``--labelled`` are the training set, the rest a validation set used only to
   pick each side's learning rate. Scores: the 872 SST-2 dev sentences.
4. Fine-tuning (``run_finetuning``, text_classification) of
   - *pretrained*: the pretraining run's ``backbone.keras`` + tokenizer;
   - *scratch*: the same architecture, built by ``tfptlm.pretraining.build_pretrainer``
     from the same pretraining config, randomly initialised (seeded per run),
     with the same tokenizer;
   over the same grid (``--learning-rates`` x ``--seeds``, same epochs, batch,
   warm-up). Each side's learning rate is the one with the best mean
   validation accuracy over the seeds; its mean dev accuracy is the figure.
   Target: pretrained beats scratch by >= 5 points of dev accuracy.

Usage (from the repository root; about 25 min on 2 CPU cores)::

    python benchmarks/pretraining_benefit.py
    python benchmarks/pretraining_benefit.py --pretrain-steps 300 --seeds 0 \
        --learning-rates 1e-3 --epochs 2 --output-stem pretraining_benefit_smoke   # smoke run

Re-running with the same ``--work-dir`` reuses a finished pretraining run
(same settings). Writes ``benchmarks/results/<stem>.{json,md}`` (default
pretraining_benefit), rewritten after every fine-tuning run.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
from pathlib import Path

from results_io import DEFAULT_DATA_DIR, DEFAULT_WORK_DIR, REPO_ROOT, RESULTS_DIR, Stopwatch, write_report

TARGET_GAIN = 0.05


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR / "pretraining_benefit")
    parser.add_argument("--group", type=int, default=8, help="SST-2 rows per pseudo-document")
    parser.add_argument("--size", default="tiny", help="BERT size (tiny 2x128, mini 4x256, ...)")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--pretrain-steps", type=int, default=6000)
    parser.add_argument("--pretrain-batch-size", type=int, default=32)
    parser.add_argument("--pretrain-sequence-length", type=int, default=64)
    parser.add_argument("--pretrain-max-predictions", type=int, default=10)
    parser.add_argument("--pretrain-learning-rate", type=float, default=1e-3)
    parser.add_argument("--labelled", type=int, default=1000)
    parser.add_argument("--validation", type=int, default=1000)
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--learning-rates", default="1e-4,3e-4,1e-3")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--output-stem", default="pretraining_benefit")
    return parser.parse_args(argv)


def build_corpus(data_dir: Path, out: Path, group: int) -> dict:
    """Writes ``train.txt`` and ``eval.txt`` in BERT format; returns counts."""
    from tfptlm.data.text_corpus import split_sentences

    out.mkdir(parents=True, exist_ok=True)

    def wikitext_documents(path: Path) -> list[list[str]]:
        documents = []
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("= "):  # blank lines and `= Heading =` lines
                continue
            sentences = split_sentences(line)
            if sentences:
                documents.append(sentences)
        return documents

    wiki = wikitext_documents(data_dir / "wikitext2" / "valid.txt")
    rows = (data_dir / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    sst2_texts = [row.rsplit("\t", 1)[0].strip() for row in rows]
    sst2 = [sst2_texts[i : i + group] for i in range(0, len(sst2_texts), group)]
    sst2 = [[t for t in doc if t] for doc in sst2]
    sst2 = [doc for doc in sst2 if doc]

    def write(path: Path, documents: list[list[str]]) -> None:
        path.write_text("\n\n".join("\n".join(doc) for doc in documents) + "\n", encoding="utf-8")

    write(out / "train.txt", wiki + sst2)
    evaluation = wikitext_documents(data_dir / "wikitext2" / "test.txt")
    write(out / "eval.txt", evaluation)
    words = lambda docs: sum(len(s.split()) for d in docs for s in d)  # noqa: E731
    return {
        "wikitext_documents": len(wiki),
        "wikitext_words": words(wiki),
        "sst2_pseudo_documents": len(sst2),
        "sst2_rows": len(sst2_texts),
        "sst2_words": words(sst2),
        "eval_documents": len(evaluation),
        "eval_words": words(evaluation),
    }


def labelled_sample(train_tsv: Path, labelled: int, validation: int, seed: int, out: Path) -> dict:
    """Writes ``train_<n>.tsv`` and ``validation_<m>.tsv``: distinct random rows of ``train_tsv``."""
    lines = train_tsv.read_text(encoding="utf-8").splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    chosen = random.Random(seed).sample(range(len(body)), labelled + validation)
    train_rows, validation_rows = sorted(chosen[:labelled]), sorted(chosen[labelled:])
    out.mkdir(parents=True, exist_ok=True)
    paths = {"train": out / f"train_{labelled}_seed{seed}.tsv",
             "validation": out / f"validation_{validation}_seed{seed}.tsv"}
    paths["train"].write_text(header + "".join(body[i] for i in train_rows), encoding="utf-8")
    paths["validation"].write_text(header + "".join(body[i] for i in validation_rows), encoding="utf-8")
    positives = sum(body[i].rstrip("\n").endswith("\t1") for i in train_rows)
    return {"train_file": str(paths["train"]), "validation_file": str(paths["validation"]),
            "train_rows": train_rows, "train_positive": positives}


def main(argv=None) -> None:
    args = parse_args(argv)
    stopwatch = Stopwatch()
    import keras

    from finetune_common import finetune
    from tfptlm.config import PretrainConfig, load_config
    from tfptlm.finetuning.run import evaluate_file, load_finetuned
    from tfptlm.pretraining import build_pretrainer, run_pretraining

    work = args.work_dir
    learning_rates = [float(x) for x in args.learning_rates.split(",") if x.strip()]
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]

    # 1. Corpus.
    corpus = build_corpus(args.data_dir, work / "corpus", args.group)
    stopwatch.log(f"Corpus: {corpus}")

    # 2. Pretraining.
    pretrain_overrides = [
        f"data.train_files={work / 'corpus' / 'train.txt'}",
        f"data.eval_files={work / 'corpus' / 'eval.txt'}",
        f"data.max_sequence_length={args.pretrain_sequence_length}",
        f"data.max_predictions={args.pretrain_max_predictions}",
        f"model.size={args.size}",
        f"tokenizer.vocab_size={args.vocab_size}",
        f"training.steps={args.pretrain_steps}",
        f"training.batch_size={args.pretrain_batch_size}",
        f"training.learning_rate={args.pretrain_learning_rate}",
        "training.checkpoint_every=1000",
    ]
    pconfig = load_config(str(REPO_ROOT / "configs" / "bert_tiny_pretrain.yaml"), overrides=pretrain_overrides,
                          config_class=PretrainConfig)
    pretrain_dir = work / "pretrain"
    metrics_file = pretrain_dir / "metrics.json"
    previous = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
    if previous and previous.get("steps") == args.pretrain_steps and (pretrain_dir / "backbone.keras").is_file():
        stopwatch.log(f"Reusing the finished pretraining run in {pretrain_dir}")
        pretrain_metrics, pretrain_seconds = previous, None
    else:
        stopwatch.log(f"Pretraining -> {pretrain_dir}: {' '.join(pretrain_overrides)}")
        start = stopwatch.seconds
        pretrain_metrics = run_pretraining(pconfig, pretrain_dir, verbose=2)
        pretrain_seconds = round(stopwatch.seconds - start, 1)
        stopwatch.log(f"Pretraining done in {pretrain_seconds:.0f} s: {pretrain_metrics}")
    tokenizer_dir = pretrain_dir / "tokenizer"

    # 3. Labelled sample.
    sample = labelled_sample(args.data_dir / "sst2" / "train.tsv", args.labelled, args.validation,
                             args.sample_seed, work / "labelled")
    dev_file = args.data_dir / "sst2" / "dev.tsv"

    # 4. Fine-tuning grid.
    def random_init_dir(seed: int) -> Path:
        """The pretraining architecture, randomly initialised with ``seed``, + the same tokenizer."""
        out = work / f"random_init_seed{seed}"
        if not (out / "backbone.keras").is_file():
            keras.backend.clear_session()
            keras.utils.set_random_seed(seed)
            from tfptlm.tokenizers import WordPieceTokenizer

            vocabulary_size = WordPieceTokenizer.load(tokenizer_dir).vocabulary_size
            backbone = build_pretrainer(pconfig, vocabulary_size).backbone
            out.mkdir(parents=True, exist_ok=True)
            backbone.save(out / "backbone.keras")
            shutil.copytree(tokenizer_dir, out / "tokenizer", dirs_exist_ok=True)
        return out

    runs: list[dict] = []
    settings = dict(
        corpus=corpus, group=args.group, size=args.size, vocab_size=args.vocab_size,
        pretrain_config="configs/bert_tiny_pretrain.yaml", pretrain_overrides=pretrain_overrides,
        labelled=args.labelled, validation=args.validation, sample_seed=args.sample_seed,
        train_positive=sample["train_positive"], learning_rates=learning_rates, seeds=seeds,
        epochs=args.epochs, batch_size=args.batch_size, sequence_length=args.sequence_length,
        target_gain=TARGET_GAIN,
    )

    def summarize() -> dict:
        summary = {}
        for side in ("pretrained", "scratch"):
            per_lr = {}
            for lr in learning_rates:
                cell = [r for r in runs if r["side"] == side and r["learning_rate"] == lr]
                if cell:
                    per_lr[lr] = {
                        "validation_mean": statistics.mean(r["validation_accuracy"] for r in cell),
                        "dev_mean": statistics.mean(r["metrics"]["accuracy"] for r in cell),
                        "dev": [r["metrics"]["accuracy"] for r in cell],
                        "runs": len(cell),
                    }
            if per_lr:
                chosen = max(per_lr, key=lambda lr: per_lr[lr]["validation_mean"])
                summary[side] = {
                    "chosen_learning_rate": chosen,
                    "dev_accuracy": per_lr[chosen]["dev_mean"],
                    "best_dev_mean_over_grid": max(v["dev_mean"] for v in per_lr.values()),
                    "per_learning_rate": {f"{lr:g}": v for lr, v in per_lr.items()},
                }
        if len(summary) == 2:
            summary["gain"] = summary["pretrained"]["dev_accuracy"] - summary["scratch"]["dev_accuracy"]
            summary["gain_best_over_grid"] = (summary["pretrained"]["best_dev_mean_over_grid"]
                                              - summary["scratch"]["best_dev_mean_over_grid"])
            summary["target_met"] = summary["gain"] >= TARGET_GAIN
        return summary

    def report(complete: bool) -> Path:
        summary = summarize()
        pm = pretrain_metrics
        body = [
            f"Pretraining: BERT {args.size} ({pm.get('vocabulary_size'):,}-token WordPiece vocabulary trained on the corpus), "
            f"MLM + NSP, {pm.get('steps'):,} steps of {args.pretrain_batch_size} x {args.pretrain_sequence_length} tokens, "
            f"AdamW {args.pretrain_learning_rate:g}, {pm.get('train_documents'):,} training documents "
            f"({corpus['wikitext_documents']:,} WikiText-2 valid paragraphs, {corpus['wikitext_words']:,} words; "
            f"{corpus['sst2_pseudo_documents']:,} pseudo-documents of {args.group} SST-2 training rows, "
            f"{corpus['sst2_words']:,} words, labels dropped). "
            f"Held-out (WikiText-2 test): MLM accuracy {pm['mlm_accuracy']:.3f} (most-frequent-token baseline "
            f"{pm['mlm_frequency_baseline']:.3f}), NSP accuracy {pm['nsp_accuracy']:.3f}; "
            f"{pm.get('tokens_per_second', 0):,.0f} tokens/s"
            + (f", {pretrain_seconds / 60:.1f} min." if pretrain_seconds else " (reused run)."),
            "",
            f"Fine-tuning: {args.labelled:,} SST-2 training rows ({sample['train_positive']} positive) drawn with "
            f"`random.Random({args.sample_seed}).sample` (the next {args.validation:,} drawn rows: validation set "
            f"for choosing the learning rate), {args.epochs} epochs, batch {args.batch_size}, sequence length "
            f"{args.sequence_length}, AdamW, 10% warm-up then linear decay, dropout 0.1; seeds {seeds} "
            "(training order, dropout, head init; scratch: also the backbone init). "
            "Scores: accuracy on the 872 SST-2 dev sentences.",
            "",
            "| side | learning rate | seed | validation accuracy | dev accuracy | train s |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in runs:
            body.append(f"| {r['side']} | {r['learning_rate']:g} | {r['seed']} | {r['validation_accuracy']:.4f} | "
                        f"{r['metrics']['accuracy']:.4f} | {r['metrics']['train_seconds']:.0f} |")
        if "gain" in summary:
            p, s = summary["pretrained"], summary["scratch"]
            body += [
                "",
                "| side | learning rate chosen on validation | mean dev accuracy | best mean dev accuracy over the grid |",
                "| --- | ---: | ---: | ---: |",
                f"| pretrained | {p['chosen_learning_rate']:g} | {p['dev_accuracy']:.4f} | {p['best_dev_mean_over_grid']:.4f} |",
                f"| scratch | {s['chosen_learning_rate']:g} | {s['dev_accuracy']:.4f} | {s['best_dev_mean_over_grid']:.4f} |",
                "",
                f"Gain of pretraining: {100 * summary['gain']:+.1f} points of dev accuracy "
                f"({100 * summary['gain_best_over_grid']:+.1f} comparing each side's best grid point on dev). "
                f"Target +{100 * TARGET_GAIN:.0f} points: "
                + ("met." if summary["target_met"] else f"missed by {100 * (TARGET_GAIN - summary['gain']):.1f} points."),
            ]
        return write_report(
            args.output_stem,
            "Pretraining benefit: tiny BERT pretrained with tfptlm vs random init, 1,000 SST-2 labels",
            {"settings": settings, "pretraining": {"metrics": pretrain_metrics, "seconds": pretrain_seconds,
                                                   "output_dir": str(pretrain_dir)},
             "runs": runs, "summary": summary},
            body, stopwatch, args.output_dir, complete,
        )

    for seed in seeds:
        for lr in learning_rates:
            for side in ("pretrained", "scratch"):
                backbone_dir = pretrain_dir if side == "pretrained" else random_init_dir(seed)
                overrides = [
                    "task=text_classification",
                    f"backbone.path={backbone_dir}",
                    f"data.train_file={sample['train_file']}",
                    f"data.eval_file={dev_file}",
                    "data.text_column=0",
                    "data.label_column=1",
                    f"data.sequence_length={args.sequence_length}",
                    f"training.epochs={args.epochs}",
                    f"training.batch_size={args.batch_size}",
                    f"training.learning_rate={lr}",
                    f"training.seed={seed}",
                ]
                out = work / "finetune" / f"{side}_lr{lr:g}_seed{seed}"
                run = finetune(overrides, out, stopwatch.log, verbose=0)
                model = load_finetuned(out)
                run["validation_accuracy"] = evaluate_file(model, sample["validation_file"])["accuracy"]
                run.update(side=side, learning_rate=lr, seed=seed)
                stopwatch.log(f"{side} lr {lr:g} seed {seed}: validation {run['validation_accuracy']:.4f}, "
                              f"dev {run['metrics']['accuracy']:.4f}")
                runs.append(run)
                report(complete=False)
    md = report(complete=True)
    print(md.read_text())


if __name__ == "__main__":
    main()
