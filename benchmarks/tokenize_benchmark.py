"""The code of ``tokenize.py`` (tokenizer and pretraining input pipeline throughput); see its docstring.

``tokenize.py`` itself only makes sure that the standard library's
``tokenize`` module is the one Python imports, then calls :func:`main`.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
from pathlib import Path

from interleaved import run_interleaved, same_round_ratio, summarize
from results_io import DEFAULT_DATA_DIR, DEFAULT_WORK_DIR, RESULTS_DIR, Stopwatch, fmt, write_report

TITLE = "Tokenizer and pretraining input pipeline throughput"
FAMILIES = ("wordpiece", "byte_bpe", "sentencepiece")
TARGET_RATIO = 20


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tokenize.py", description=TITLE)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1,000 texts per set, 2 rounds, short blocks")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="holds wikitext2/ and sst2/")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR / "tokenize")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--output-stem", default=None, help="default tokenize (tokenize_quick with --quick)")
    parser.add_argument("--rounds", type=int, default=None, help="timed blocks per contender (default 7; quick 2)")
    parser.add_argument("--batch-size", type=int, default=1024, help="texts per tokenizer call")
    parser.add_argument("--text-limit", type=int, default=None, help="texts per set (default all; quick 1,000)")
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated subset of " + ",".join(FAMILIES))
    parser.add_argument("--vocab-size", type=int, default=None, help="byte-BPE / SentencePiece vocabulary (default 8,000; quick 2,000)")
    parser.add_argument("--variants", default=None, help="comma-separated pipeline recipes (default all)")
    parser.add_argument("--pipeline-batches", type=int, default=None, help="batches per pipeline block (default 300; quick 30)")
    parser.add_argument("--warmup-batches", type=int, default=20)
    parser.add_argument("--corpus-rounds", type=int, default=None, help="corpus tokenizations timed (default 3; quick 2)")
    parser.add_argument("--corpus-scale", type=int, default=None,
                        help="also tokenize the training documents repeated this many times (default 8; quick 2)")
    parser.add_argument("--training-tokens-per-second", type=float, default=2300.0,
                        help="training consumption when results/peers.json has no tfptlm figure")
    parser.add_argument("--peers", type=Path, default=RESULTS_DIR / "peers.json")
    parser.add_argument("--skip-tokenizers", action="store_true")
    parser.add_argument("--skip-pipeline", action="store_true")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = dict(output_stem="tokenize_quick" if quick else "tokenize", rounds=2 if quick else 7,
                    text_limit=1000 if quick else None, vocab_size=2000 if quick else 8000,
                    pipeline_batches=30 if quick else 300, corpus_rounds=2 if quick else 3,
                    corpus_scale=2 if quick else 8)
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    unknown = set(args.families.split(",")) - set(FAMILIES)
    if unknown:
        parser.error(f"--families: unknown {sorted(unknown)}; choose from {FAMILIES}")
    return args


def tokenizer_part(args, stopwatch: Stopwatch) -> dict:
    """Part 1: every family x text set, interleaved blocks, agreement with the reference."""
    import tokenize_speed as speed

    texts = speed.read_texts(args.data_dir, args.text_limit)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    corpus = args.work_dir / "texts.txt"
    corpus.write_text("\n".join(t for values in texts.values() for t in values) + "\n", encoding="utf-8")
    builders = {
        "wordpiece": lambda: speed.wordpiece_contenders(speed.minilm_folder()),
        "byte_bpe": lambda: speed.byte_bpe_contenders(corpus, args.vocab_size, args.work_dir),
        "sentencepiece": lambda: speed.sentencepiece_contenders(corpus, args.vocab_size, args.work_dir),
    }
    results = {"texts": {name: {"count": len(v), "characters": sum(map(len, v))} for name, v in texts.items()},
               "families": {}}
    for family in args.families.split(","):
        stopwatch.log(f"{family}: building the tokenizers")
        contenders, id_to_token = builders[family]()
        reference = contenders[0]
        family_result = {"contenders": {c.name: c.implementation for c in contenders}, "reference": reference.name,
                         "sets": {}}
        for set_name, set_texts in texts.items():
            ids = {c.name: c.ids(set_texts) for c in contenders}
            agreement = {c.name: speed.agreement(ids[reference.name], ids[c.name], set_texts, id_to_token)
                         for c in contenders[1:]}
            runners = {c.name: speed.block_runner(c, set_texts, args.batch_size, sum(map(len, ids[c.name])))
                       for c in contenders}
            stopwatch.log(f"{family} / {set_name}: {args.rounds} rounds")
            blocks = run_interleaved(runners, args.rounds)
            summary = {name: summarize(b, ("tokens", "texts")) for name, b in blocks.items()}
            ours = next(c.name for c in contenders if c.name.startswith("tfptlm"))
            ratios = {other: {"same_round_tokens_per_second": same_round_ratio(blocks[ours], blocks[other], "tokens"),
                              "tokens_per_cpu_second": round(summary[ours]["median_tokens_per_cpu_second"]
                                                             / summary[other]["median_tokens_per_cpu_second"], 3)}
                      for other in blocks if other != ours}
            family_result["sets"][set_name] = {"summary": summary, "tfptlm_vs": ratios, "agreement": agreement,
                                               "blocks": blocks}
            for name, entry in summary.items():
                stopwatch.log(f"  {name}: {entry['median_tokens_per_second']:,.0f} tokens/s, "
                              f"{entry['median_tokens_per_cpu_second']:,.0f} per CPU-s")
        results["families"][family] = family_result
    return results


def pipeline_part(args, stopwatch: Stopwatch) -> dict:
    """Part 2: read, corpus tokenization, per-recipe setup and interleaved steady state."""
    import statistics

    import tokenize_pipeline as pipe
    from tokenize_speed import minilm_folder

    from tfptlm.pretraining import load_corpora, make_datasets
    from tfptlm.tokenizers import load_tokenizer

    folder = minilm_folder()
    files = [args.data_dir / "wikitext2" / "valid.txt", args.data_dir / "wikitext2" / "test.txt"]
    variants = args.variants.split(",") if args.variants else list(pipe.VARIANTS)
    base = pipe.pipeline_config(files, folder, pipe.VARIANTS[variants[0]])
    tokenizer = load_tokenizer(folder)
    reads = [pipe.timed(load_corpora, base) for _ in range(args.corpus_rounds)]
    train, evaluation = reads[0][0]
    corpus_result = {
        "files": [str(f) for f in files],
        "train_documents": len(train), "eval_documents": len(evaluation),
        "train_sentences": sum(map(len, train)),
        "read_seconds_median": round(statistics.median(r[1] for r in reads), 3),
        "read_cpu_seconds_median": round(statistics.median(r[2] for r in reads), 3),
        "tokenization": pipe.corpus_tokenization(train, tokenizer, args.corpus_rounds),
    }
    corpus_result["train_tokens"] = corpus_result["tokenization"]["tokens"]
    if args.corpus_scale > 1:
        corpus_result["tokenization_scaled"] = {
            "scale": args.corpus_scale,
            **pipe.corpus_tokenization(train * args.corpus_scale, tokenizer, args.corpus_rounds)}
    stopwatch.log(f"corpus: {corpus_result['train_tokens']:,} tokens, read {corpus_result['read_seconds_median']} s, "
                  f"tokenized in {corpus_result['tokenization']['first']['seconds']} s (first)")

    batch_size, length = base.training.batch_size, base.data.max_sequence_length
    setups, runners = {}, {}
    for name in variants:
        config = pipe.pipeline_config(files, folder, pipe.VARIANTS[name])
        (train_dataset, _), seconds, cpu_seconds = pipe.timed(
            make_datasets, config, tokenizer, train, evaluation, seed=config.training.seed)
        setups[name] = {"overrides": pipe.VARIANTS[name], "setup_seconds": round(seconds, 3),
                        "setup_cpu_seconds": round(cpu_seconds, 3),
                        "real_token_share": pipe.real_token_share(train_dataset, 10)}
        runners[name] = pipe.BatchBlocks(train_dataset, args.pipeline_batches, batch_size * length,
                                         args.warmup_batches)
        stopwatch.log(f"{name}: make_datasets {seconds:.2f} s")
    blocks = run_interleaved({name: r.run for name, r in runners.items()}, args.rounds,
                             before={name: r.start for name, r in runners.items()})
    training, source = pipe.training_tokens_per_second(args.peers, args.training_tokens_per_second)
    steady = {}
    for name, variant_blocks in blocks.items():
        summary = summarize(variant_blocks, ("batches", "tokens"))
        summary["times_training"] = round(summary["median_tokens_per_second"] / training, 1)
        summary["cpu_share_at_training_rate"] = round(training / summary["median_tokens_per_cpu_second"], 4)
        steady[name] = {**setups[name], **summary, "blocks": variant_blocks}
        stopwatch.log(f"  {name}: {summary['median_batches_per_second']:.1f} batches/s, "
                      f"{summary['median_tokens_per_second']:,.0f} tokens/s = {summary['times_training']}x training")
    return {"config": str(pipe.BASE_CONFIG.relative_to(pipe.REPO_ROOT)), "batch_size": batch_size,
            "sequence_length": length, "max_predictions": base.data.max_predictions,
            "tokens_per_batch": batch_size * length, "pipeline_batches_per_block": args.pipeline_batches,
            "warmup_batches": args.warmup_batches, "corpus": corpus_result, "variants": steady,
            "training_tokens_per_second": training, "training_source": source, "target_ratio": TARGET_RATIO,
            "target_met": all(v["times_training"] >= TARGET_RATIO for v in steady.values())}


def tokenizer_markdown(results: dict) -> list[str]:
    lines = ["## Tokenizers", "",
             "Texts: " + ", ".join(f"{name} {v['count']:,} texts ({v['characters']:,} characters)"
                                   for name, v in results["texts"].items()) + ".",
             "Medians over the interleaved blocks (one block = all texts of the set); min-max in brackets. "
             "HF tokenizers and sentencepiece use their default threads (all cores); TF ops run one batch "
             "on one core. CPU-s = CPU seconds of every thread of the process.", "",
             "| family | texts | contender | tokens/s | texts/s | tokens per CPU-s | tfptlm / it (same round) "
             "| tfptlm / it (per CPU-s) |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for family, family_result in results["families"].items():
        for set_name, entry in family_result["sets"].items():
            for name, s in entry["summary"].items():
                ratio = entry["tfptlm_vs"].get(name, {})
                lines.append(
                    f"| {family} | {set_name} | {name} | {fmt(s['median_tokens_per_second'], 0)} "
                    f"({fmt(s['min_tokens_per_second'], 0)}-{fmt(s['max_tokens_per_second'], 0)}) | "
                    f"{fmt(s['median_texts_per_second'], 0)} | {fmt(s['median_tokens_per_cpu_second'], 0)} | "
                    f"{fmt(ratio.get('same_round_tokens_per_second'), 2)} | {fmt(ratio.get('tokens_per_cpu_second'), 2)} |")
    lines += ["", "### Agreement of the ids with the reference", "",
              "| family | texts | reference | contender | identical texts | share | tokens (reference / contender) |",
              "| --- | --- | --- | --- | ---: | ---: | ---: |"]
    examples = []
    for family, family_result in results["families"].items():
        for set_name, entry in family_result["sets"].items():
            for name, a in entry["agreement"].items():
                lines.append(f"| {family} | {set_name} | {family_result['reference']} | {name} | "
                             f"{a['identical_texts']:,} / {a['texts']:,} | {a['identical_share']:.4f} | "
                             f"{a['reference_tokens']:,} / {a['other_tokens']:,} |")
                examples += [f"- {family} / {set_name} / {name}: `{e['reference_tokens']}` (reference) vs "
                             f"`{e['other_tokens']}`" for e in a["examples"]]
    if examples:
        lines += ["", "First differing tokens (up to 3 texts per pair):", "", *examples]
    return lines + [""]


def corpus_tokenization_lines(corpus: dict) -> list[str]:
    """Markdown bullets of the one-off corpus tokenization (first call, later calls, scaled corpus)."""
    def rates(entry: dict) -> str:
        return (f"{entry['seconds']} s = {fmt(entry['tokens_per_second'], 0)} tokens/s "
                f"({fmt(entry['tokens_per_cpu_second'], 0)} per CPU-s)")

    once = corpus["tokenization"]
    lines = [f"- One-off corpus tokenization (`TokenizedCorpus.build`, {once['tokens']:,} tokens): first call in "
             f"the process {rates(once['first'])}, tracing included; later calls {rates(once['later'])}."]
    scaled = corpus.get("tokenization_scaled")
    if scaled:
        lines.append(f"- The same documents repeated {scaled['scale']} times ({scaled['tokens']:,} tokens), later "
                     f"calls: {rates(scaled['later'])} (the fixed cost per call, mostly tracing, shrinks away).")
    return lines


def pipeline_markdown(results: dict) -> list[str]:
    corpus = results["corpus"]
    lines = ["## Pretraining input pipeline", "",
             f"Config `{results['config']}` (batch {results['batch_size']} x {results['sequence_length']}, "
             f"{results['max_predictions']} predictions), WikiText-2 valid + test, one document per line, "
             "MiniLM vocab.txt (uncased), the path of `tfptlm pretrain` (`load_corpora`, `load_tokenizer`, "
             "`make_datasets`).", "",
             f"- Corpus: {corpus['train_documents']:,} training documents ({corpus['eval_documents']:,} held out), "
             f"{corpus['train_sentences']:,} sentences, {corpus['train_tokens']:,} tokens.",
             f"- Reading the files (`load_corpora`): {corpus['read_seconds_median']} s "
             f"({corpus['read_cpu_seconds_median']} CPU-s), median.",
             *corpus_tokenization_lines(corpus),
             f"- Training consumption: {fmt(results['training_tokens_per_second'], 0)} tokens/s "
             f"({results['training_source']}); target: the pipeline makes >= {results['target_ratio']}x that "
             f"-> {'met' if results['target_met'] else 'NOT met'} by every recipe.", "",
             f"Steady state: medians over interleaved blocks of {results['pipeline_batches_per_block']} batches, "
             f"each from a fresh iterator after {results['warmup_batches']} untimed batches (so no idle iterator "
             "works ahead in the background); tokens = batch x sequence length, padding included, as training "
             "counts them.", "",
             "| recipe | make_datasets s | batches/s | tokens/s | tokens per CPU-s | real-token share "
             "| x training | CPU share at training rate |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, v in results["variants"].items():
        lines.append(
            f"| {name} | {v['setup_seconds']:.2f} | {fmt(v['median_batches_per_second'], 1)} "
            f"({fmt(v['min_batches_per_second'], 1)}-{fmt(v['max_batches_per_second'], 1)}) | "
            f"{fmt(v['median_tokens_per_second'], 0)} | {fmt(v['median_tokens_per_cpu_second'], 0)} | "
            f"{v['real_token_share']:.3f} | {fmt(v['times_training'], 1)} | {v['cpu_share_at_training_rate']:.2%} |")
    return lines + ["", "Recipes (`--set` overrides): " + "; ".join(
        f"{name}: `{' '.join(v['overrides'])}`" for name, v in results["variants"].items()), ""]


def main(argv=None) -> None:
    args = parse_args(argv)
    stopwatch = Stopwatch()
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    report: dict = {"settings": settings}
    body: list[str] = []

    def write(complete: bool) -> Path:
        return write_report(args.output_stem, TITLE, report, body, stopwatch, args.output_dir, complete)

    if not args.skip_tokenizers:
        report["tokenizers"] = tokenizer_part(args, stopwatch)
        body += tokenizer_markdown(report["tokenizers"])
        write(complete=args.skip_pipeline)
    if not args.skip_pipeline:
        report["pipeline"] = pipeline_part(args, stopwatch)
        body += pipeline_markdown(report["pipeline"])
    path = write(complete=True)
    stopwatch.log(f"wrote {path}")
