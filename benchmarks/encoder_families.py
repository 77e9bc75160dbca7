"""BERT vs ALBERT vs RoBERTa vs XLNet: each pretrained with its own objective on one corpus and budget, then fine-tuned on 1,000 SST-2 labels.

1. Corpus: the one of ``pretraining_benefit.py`` (WikiText-2 valid paragraphs
   plus the SST-2 training sentences without labels, ``--group`` rows per
   pseudo-document; held-out text: WikiText-2 test).
2. For each family, ``run_pretraining`` with its example config
   (``configs/<family>_tiny_pretrain.yaml``) and the same steps, batch,
   sequence length, learning rate and vocabulary size:
   BERT MLM + NSP (WordPiece), ALBERT MLM with n-grams of up to 3 whole words
   + SOP (WordPiece), RoBERTa dynamic MLM on full-sentence packs (byte-level
   BPE), XLNet permuted LM (WordPiece). Held-out metrics: MLM / PLM accuracy
   and NSP / SOP accuracy on the WikiText-2 test documents.
3. Fine-tuning (``run_finetuning``, text_classification) of each pretrained
   backbone and of a randomly initialised BERT of the same size ("no
   pretraining", with BERT's tokenizer) on the same ``--labelled`` SST-2 rows
   (``random.Random(--sample-seed).sample``), at each of ``--learning-rates``
   with each of ``--seeds``; scores: accuracy on the 872 SST-2 dev sentences,
   one column per learning rate (a pretrained model wants a smaller one than
   random init), the mean over the seeds with each seed's figure.
4. Parameter counts of every backbone, split into embedding (token, position,
   segment tables and ALBERT's E->H projection) and the rest; ALBERT is also
   counted without cross-layer sharing, at this size and at base (12 layers),
   to show what sharing saves.

Usage (from the repository root; about 25 min on 2 otherwise idle CPU cores)::

    python benchmarks/encoder_families.py
    python benchmarks/encoder_families.py --pretrain-steps 50 --epochs 1 \
        --output-stem encoder_families_smoke    # smoke run

Re-running with the same ``--work-dir`` reuses finished pretraining and fine-tuning runs.
Writes ``benchmarks/results/<stem>.{json,md}`` (default encoder_families).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from pretraining_benefit import build_corpus, labelled_sample
from results_io import DEFAULT_DATA_DIR, DEFAULT_WORK_DIR, REPO_ROOT, RESULTS_DIR, Stopwatch, write_report

FAMILIES = ("bert", "albert", "roberta", "xlnet")
OBJECTIVE_NAMES = {
    "bert": "MLM + NSP",
    "albert": "MLM (whole-word n-grams <= 3) + SOP",
    "roberta": "dynamic MLM, full-sentence packing",
    "xlnet": "permuted LM (K = 6)",
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR / "encoder_families")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--group", type=int, default=8, help="SST-2 rows per pseudo-document")
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--pretrain-steps", type=int, default=1500)
    parser.add_argument("--pretrain-batch-size", type=int, default=32)
    parser.add_argument("--pretrain-sequence-length", type=int, default=64)
    parser.add_argument("--pretrain-max-predictions", type=int, default=10)
    parser.add_argument("--pretrain-learning-rate", type=float, default=1e-3)
    parser.add_argument("--labelled", type=int, default=1000)
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--learning-rates", default="1e-4,3e-4,1e-3",
                        help="fine-tuning learning rates, comma-separated; every model is tuned at each")
    parser.add_argument("--seeds", default="0,1", help="fine-tuning seeds (training order, dropout, head)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--output-stem", default="encoder_families")
    return parser.parse_args(argv)


def parameter_counts(backbone) -> dict:
    """Backbone parameters split into embedding tables (+ ALBERT's projection) and the rest."""
    total = embedding = 0
    for variable in backbone.weights:
        size = int(variable.numpy().size)
        total += size
        if "embedding" in variable.path:
            embedding += size
    return {"total": total, "embedding": embedding, "non_embedding": total - embedding}


def main(argv=None) -> None:
    args = parse_args(argv)
    stopwatch = Stopwatch()
    import keras

    from finetune_common import finetune
    from tfptlm.config import PretrainConfig, load_config
    from tfptlm.pretraining import build_backbone, run_pretraining
    from tfptlm.tokenizers import load_tokenizer

    work = args.work_dir
    learning_rates = [float(rate) for rate in args.learning_rates.split(",") if rate]
    seeds = [int(seed) for seed in args.seeds.split(",") if seed]
    families = [f for f in args.families.split(",") if f]
    corpus = build_corpus(args.data_dir, work / "corpus", args.group)
    stopwatch.log(f"Corpus: {corpus}")
    sample = labelled_sample(args.data_dir / "sst2" / "train.tsv", args.labelled, 0,
                             args.sample_seed, work / "labelled")
    dev_file = args.data_dir / "sst2" / "dev.tsv"
    common = [
        f"data.train_files={work / 'corpus' / 'train.txt'}",
        f"data.eval_files={work / 'corpus' / 'eval.txt'}",
        f"data.max_sequence_length={args.pretrain_sequence_length}",
        f"data.max_predictions={args.pretrain_max_predictions}",
        f"model.size={args.size}",
        f"tokenizer.vocab_size={args.vocab_size}",
        f"training.steps={args.pretrain_steps}",
        f"training.batch_size={args.pretrain_batch_size}",
        f"training.learning_rate={args.pretrain_learning_rate}",
        "training.checkpoint_every=500",
    ]
    results: dict = {"pretraining": {}, "finetuning": {}, "parameters": {}}
    settings = dict(vars(args), corpus=corpus, pretrain_overrides=common,
                    train_positive=sample["train_positive"])
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in settings.items()}

    def report(complete: bool) -> Path:
        body = [
            f"Pretraining corpus: {corpus['wikitext_documents']:,} WikiText-2 valid paragraphs and "
            f"{corpus['sst2_pseudo_documents']:,} pseudo-documents of {args.group} SST-2 training rows "
            f"(labels dropped); held out: {corpus['eval_documents']:,} WikiText-2 test paragraphs. Each family: "
            f"size {args.size}, {args.pretrain_steps:,} steps of {args.pretrain_batch_size} x "
            f"{args.pretrain_sequence_length} tokens, AdamW {args.pretrain_learning_rate:g}, "
            f"{args.vocab_size:,}-token vocabulary trained on the corpus.",
            "",
            f"Fine-tuning: {args.labelled:,} SST-2 training rows ({sample['train_positive']} positive, "
            f"`random.Random({args.sample_seed}).sample`), {args.epochs} epochs, batch {args.batch_size}, "
            f"sequence length {args.sequence_length}, AdamW at each learning rate with seeds {seeds}; "
            "score: accuracy on the 872 SST-2 dev sentences, mean over the seeds (each seed's in brackets).",
            "",
            "| model | objective | held-out MLM/PLM accuracy | NSP/SOP accuracy | pretrain tokens/s | "
            "pretrain min | " + " | ".join(f"SST-2 dev, lr {rate:g}" for rate in learning_rates) + " |",
            "| --- | --- | ---: | ---: | ---: | ---: |" + " ---: |" * len(learning_rates),
        ]
        for family in families + ["none"]:
            pretrain = results["pretraining"].get(family)
            tuned = results["finetuning"].get(family, {})
            if family == "none":
                row = ["BERT, no pretraining", "-", "-", "-", "-", "-"]
            elif pretrain is None:
                continue
            else:
                m = pretrain["metrics"]
                token_accuracy = m.get("mlm_accuracy", m.get("plm_accuracy"))
                sentence = m.get("nsp_accuracy", m.get("sop_accuracy"))
                row = [family, OBJECTIVE_NAMES[family], f"{token_accuracy:.3f}",
                       "-" if sentence is None else f"{sentence:.3f}",
                       f"{m['tokens_per_second']:,.0f}", f"{m['train_seconds'] / 60:.1f}"]
            for rate in learning_rates:
                scores = [run["metrics"]["accuracy"] for run in tuned.get(f"{rate:g}", {}).values()]
                each = ", ".join(f"{score:.3f}" for score in scores)
                row.append(f"{sum(scores) / len(scores):.3f} ({each})" if scores else "-")
            body.append("| " + " | ".join(row) + " |")
        body += ["", "| backbone | parameters | embedding | non-embedding |", "| --- | ---: | ---: | ---: |"]
        for name, counts in results["parameters"].items():
            body.append(f"| {name} | {counts['total']:,} | {counts['embedding']:,} | {counts['non_embedding']:,} |")
        return write_report(
            args.output_stem,
            f"Encoder families: {args.size} BERT, ALBERT, RoBERTa and XLNet pretrained on one corpus, "
            f"then fine-tuned on {args.labelled:,} SST-2 labels",
            {"settings": settings, **results}, body, stopwatch, args.output_dir, complete,
        )

    def finetune_side(name: str, backbone_dir: Path) -> None:
        for rate in learning_rates:
            for seed in seeds:
                finetune_once(name, backbone_dir, rate, seed)

    def finetune_once(name: str, backbone_dir: Path, rate: float, seed: int) -> None:
        out = work / "finetune" / f"{name}_lr{rate:g}_seed{seed}"
        runs = results["finetuning"].setdefault(name, {}).setdefault(f"{rate:g}", {})
        if (out / "metrics.json").is_file():  # a finished run of an earlier invocation
            stopwatch.log(f"Reusing the finished fine-tuning run in {out}")
            metrics = json.loads((out / "metrics.json").read_text())
            runs[str(seed)] = {"output_dir": str(out), "reused": True, "metrics": metrics}
            report(complete=False)
            return
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
            f"training.learning_rate={rate}",
            f"training.seed={seed}",
        ]
        runs[str(seed)] = finetune(overrides, out, stopwatch.log, verbose=0)
        report(complete=False)

    for family in families:
        config_file = REPO_ROOT / "configs" / f"{family}_tiny_pretrain.yaml"
        config = load_config(str(config_file), overrides=common, config_class=PretrainConfig)
        out = work / "pretrain" / family
        metrics_file = out / "metrics.json"
        previous = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
        if previous and previous.get("steps") == args.pretrain_steps and (out / "backbone.keras").is_file():
            stopwatch.log(f"Reusing the finished {family} run in {out}")
            metrics = previous
        else:
            stopwatch.log(f"Pretraining {family} -> {out}")
            keras.backend.clear_session()
            metrics = run_pretraining(config, out, verbose=2)
            stopwatch.log(f"{family}: {metrics}")
        results["pretraining"][family] = {"config": str(config_file.relative_to(REPO_ROOT)), "metrics": metrics}
        tokenizer = load_tokenizer(out / "tokenizer")
        results["parameters"][family] = parameter_counts(build_backbone(config, tokenizer))
        if family == "albert":  # what cross-layer sharing saves, at this size and at base (12 layers)
            for size in (args.size, "base"):
                for sharing in ("all", "none"):
                    config.model.size, config.model.parameter_sharing = size, sharing
                    keras.backend.clear_session()
                    results["parameters"][f"albert {size}, sharing {sharing}"] = parameter_counts(
                        build_backbone(config, tokenizer)
                    )
        report(complete=False)
        finetune_side(family, out)
        if family == "bert":
            scratch = work / "random_init_bert"
            keras.backend.clear_session()
            keras.utils.set_random_seed(seeds[0])
            scratch.mkdir(parents=True, exist_ok=True)
            build_backbone(config, tokenizer).save(scratch / "backbone.keras")
            shutil.copytree(out / "tokenizer", scratch / "tokenizer", dirs_exist_ok=True)
            finetune_side("none", scratch)
    print(report(complete=True).read_text())


if __name__ == "__main__":
    main()
