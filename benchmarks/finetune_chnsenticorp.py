"""ChnSentiCorp (Chinese sentiment): a tiny BERT fine-tuned with tfptlm, accuracy on the test split.

Two variants, same architecture (BERT tiny: 2 layers, hidden 128) and the same
fine-tuning settings:

- *scratch*: ``run_finetuning`` builds a randomly initialised BERT tiny and
  learns a WordPiece vocabulary (``--vocab-size``) on the 9,600 training
  reviews itself (Chinese characters are single tokens);
- *pretrained* (unless ``--no-pretrained``): ``run_pretraining`` (MLM + NSP,
  ``configs/bert_tiny_chinese_pretrain.yaml``, one document per line, split
  into sentences at 。！？) for ``--pretrain-steps`` steps on the CLUECorpusSmall
  sample (2,500 documents) plus the 9,600 training reviews without labels
  (vocabulary trained on that corpus), then fine-tuned the same way.

Data: chnsenticorp/train.tsv (9,600, columns ``label`` TAB ``text_a`` with a
header, read by position: label column 0, text column 1), scored on test.tsv
(1,200). dev.tsv is not used.

Usage (from the repository root; estimated 17 min on 2 idle CPU cores, not yet measured)::

    python benchmarks/finetune_chnsenticorp.py
    python benchmarks/finetune_chnsenticorp.py --no-pretrained      # scratch only
    python benchmarks/finetune_chnsenticorp.py --max-steps 5 --pretrain-steps 20 \
        --output-dir /tmp/smoke --work-dir /tmp/smoke/work           # smoke run, about 3 min

Writes ``benchmarks/results/<stem>.{json,md}`` (default finetune_chnsenticorp),
rewritten after each variant.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from results_io import DEFAULT_DATA_DIR, DEFAULT_WORK_DIR, REPO_ROOT, RESULTS_DIR, Stopwatch, write_report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR / "finetune_chnsenticorp")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--max-steps", type=int, default=None, help="stop fine-tuning after this many steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the pretrained variant (default on)")
    parser.add_argument("--pretrain-steps", type=int, default=1500)
    parser.add_argument("--pretrain-learning-rate", type=float, default=1e-3)
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--output-stem", default="finetune_chnsenticorp")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    stopwatch = Stopwatch()
    from finetune_common import finetune
    from tfptlm.config import PretrainConfig, load_config
    from tfptlm.pretraining import run_pretraining

    data = args.data_dir / "chnsenticorp"
    common = [
        "task=text_classification",
        f"data.train_file={data / 'train.tsv'}",
        f"data.eval_file={data / 'test.tsv'}",
        "data.label_column=0",
        "data.text_column=1",
        f"data.sequence_length={args.sequence_length}",
        f"training.epochs={args.epochs}",
        f"training.batch_size={args.batch_size}",
        f"training.learning_rate={args.learning_rate}",
        f"training.seed={args.seed}",
    ] + ([f"training.max_steps={args.max_steps}"] if args.max_steps else [])
    runs: dict = {}
    pretraining: dict = {}

    def report(complete: bool) -> Path:
        body = [
            "Task: ChnSentiCorp binary sentiment (hotel, book and laptop reviews), train.tsv (9,600) -> test.tsv "
            f"(1,200). Model: BERT tiny (2 layers, hidden 128, 2 heads), fine-tuned with `run_finetuning` "
            f"(text_classification), sequence length {args.sequence_length} (longer reviews truncated), batch "
            f"{args.batch_size}, learning rate {args.learning_rate:g}, 10% warm-up then linear decay, "
            f"{args.epochs} epochs" + (f" (stopped at {args.max_steps} steps)" if args.max_steps else "")
            + ", dropout 0.1, float32.",
            "",
            "| variant | vocabulary | test accuracy | test macro-F1 | steps | train s | run s |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, run in runs.items():
            m = run["metrics"]
            body.append(f"| {name} | {run['vocabulary']} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | "
                        f"{m['steps']:,} | {m['train_seconds']:.0f} | {run['seconds']:.0f} |")
        if pretraining:
            pm = pretraining["metrics"]
            body += [
                "",
                f"Pretraining of the *pretrained* variant: MLM + NSP, {pm['steps']:,} steps of 32 x "
                f"{pretraining['sequence_length']} tokens, AdamW {args.pretrain_learning_rate:g}, on "
                f"{pm['train_documents']:,} documents (CLUECorpusSmall sample + ChnSentiCorp training reviews, "
                f"labels dropped; {pm['eval_documents']} held out), {pretraining['seconds'] / 60:.1f} min, "
                f"{pm['tokens_per_second']:,.0f} tokens/s. Held-out MLM accuracy {pm['mlm_accuracy']:.3f} "
                f"(most-frequent-token baseline {pm['mlm_frequency_baseline']:.3f}), NSP accuracy "
                f"{pm['nsp_accuracy']:.3f}.",
            ]
        return write_report(
            args.output_stem, "ChnSentiCorp: tiny BERT fine-tuned with tfptlm, test accuracy",
            {"settings": {"common_overrides": common, "vocab_size": args.vocab_size,
                          "pretrain_steps": args.pretrain_steps if args.pretrained else None},
             "runs": runs, "pretraining": pretraining},
            body, stopwatch, args.output_dir, complete,
        )

    # From scratch: run_finetuning trains the vocabulary on the training texts.
    runs["scratch"] = finetune(
        common + ["backbone.size=tiny", f"tokenizer.vocab_size={args.vocab_size}"],
        args.work_dir / "scratch", stopwatch.log)
    runs["scratch"]["vocabulary"] = f"{args.vocab_size:,}-token WordPiece trained on the training reviews"
    report(complete=not args.pretrained)

    if args.pretrained:
        corpus = args.work_dir / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        reviews = corpus / "chnsenticorp_train_reviews.txt"
        rows = (data / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
        reviews.write_text("\n".join(r.split("\t", 1)[1].strip() for r in rows) + "\n", encoding="utf-8")
        pretrain_overrides = [
            f"data.train_files=[{args.data_dir / 'clue_corpus_small_sample' / 'CLUECorpusSmall_sampled.txt'}, "
            f"{reviews}]",
            f"data.max_sequence_length={args.sequence_length}",
            f"tokenizer.vocab_size={args.vocab_size}",
            f"training.steps={args.pretrain_steps}",
            f"training.learning_rate={args.pretrain_learning_rate}",
            "training.checkpoint_every=500",
        ]
        pconfig = load_config(str(REPO_ROOT / "configs" / "bert_tiny_chinese_pretrain.yaml"),
                              overrides=pretrain_overrides, config_class=PretrainConfig)
        pretrain_dir = args.work_dir / "pretrain"
        stopwatch.log(f"Pretraining -> {pretrain_dir}: {' '.join(pretrain_overrides)}")
        start = stopwatch.seconds
        metrics = run_pretraining(pconfig, pretrain_dir, verbose=2)
        pretraining.update(metrics=metrics, seconds=round(stopwatch.seconds - start, 1),
                           overrides=pretrain_overrides, sequence_length=args.sequence_length,
                           output_dir=str(pretrain_dir))
        stopwatch.log(f"Pretraining done: {json.dumps(metrics)}")
        runs["pretrained"] = finetune(common + [f"backbone.path={pretrain_dir}"],
                                      args.work_dir / "pretrained", stopwatch.log)
        runs["pretrained"]["vocabulary"] = (f"{metrics['vocabulary_size']:,}-token WordPiece trained on the "
                                            "pretraining corpus")
        report(complete=True)
    print((args.output_dir / f"{args.output_stem}.md").read_text())


if __name__ == "__main__":
    main()
