"""The ``tfptlm`` command.

    tfptlm quickstart [--output-dir DIR] [--steps N] [--finetune-steps N]
    tfptlm tokenizer train --files GLOB [GLOB ...] --vocab-size N --output DIR
                           [--type wordpiece|sentencepiece|byte_bpe]
    tfptlm clean --input FILE_OR_GLOB [...] --output FILE [--report R.json] [--removed R.jsonl] [options]
    tfptlm pretrain --config FILE [--train-files GLOB ...] [--eval-files GLOB ...]
                    [--steps N] [--set key=value ...] --output-dir DIR
    tfptlm finetune --config FILE [--train-file F] [--eval-file F] [--set key=value ...]
                    --output-dir DIR
    tfptlm evaluate --model DIR --data FILE [--set data.key=value ...]
    tfptlm evaluate --model DIR [--data FILE] --bias en|zh|TERMS.tsv [--output REPORT.json]
    tfptlm evaluate --model DIR --data FILE --robustness [--robustness-rate R] [--robustness-words N]
                    [--robustness-flips N] [--robustness-seed S] [--output REPORT.json]
    tfptlm predict --model DIR [TEXT ...] [--input FILE] [--output FILE.jsonl]
    tfptlm generate --model DIR --prompt TEXT [--prompt TEXT ...] [--strategy greedy|beam|top_k|top_p|random]
                    [--max-new-tokens N] [--num-beams N] [--top-k K] [--top-p P] [--temperature T]
    tfptlm convert --from hf DIR --output DIR
    tfptlm export --model DIR --format saved_model|tflite --output DIR [--max-new-tokens N]
    tfptlm explain --model DIR TEXT [--text-pair T] [--target LABEL] [--steps N] [--output DIR]
    tfptlm audit canaries --config FILE --output-dir DIR [--repetitions 1 4 16] [--candidates N] [--set ...]

Bad input (a missing file, invalid UTF-8, an unknown config key...) stops the
command with one line naming the file, line or key; set ``TFPTLM_DEBUG=1``
to see the full traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _add_tokenizer_commands(subparsers) -> None:
    tokenizer = subparsers.add_parser("tokenizer", help="train tokenizers")
    actions = tokenizer.add_subparsers(dest="action", required=True)
    train = actions.add_parser("train", help="learn a vocabulary from text files")
    train.add_argument("--files", nargs="+", required=True, help="text files or globs")
    train.add_argument(
        "--type", choices=["wordpiece", "sentencepiece", "byte_bpe"], default="wordpiece",
        help="WordPiece (BERT), SentencePiece (T5; Chinese) or byte-level BPE (GPT, BART)",
    )
    train.add_argument("--vocab-size", type=int, default=8000)
    train.add_argument("--output", required=True, help="directory for the tokenizer files")
    train.add_argument("--no-lowercase", dest="lowercase", action="store_false")
    train.add_argument("--keep-accents", dest="strip_accents", action="store_false")


def _add_generate_command(subparsers) -> None:
    generate = subparsers.add_parser(
        "generate", help="continue prompts with a GPT, or transform them with a T5/BART model"
    )
    generate.add_argument(
        "--model", required=True, help="a `tfptlm pretrain` or `tfptlm finetune` output directory"
    )
    generate.add_argument("--prompt", action="append", required=True, help="a prompt (repeatable)")
    generate.add_argument(
        "--strategy", default="greedy", help="greedy, beam, top_k, top_p or random"
    )
    generate.add_argument("--max-new-tokens", type=int, default=64)
    generate.add_argument("--num-beams", type=int, default=4, help="beam search width")
    generate.add_argument("--length-penalty", type=float, default=1.0, help="beam search")
    generate.add_argument("--top-k", type=int, default=50)
    generate.add_argument("--top-p", type=float, default=0.9)
    generate.add_argument("--temperature", type=float, default=1.0)
    generate.add_argument("--seed", type=int, default=None, help="makes sampling repeatable")


def _add_pretrain_command(subparsers) -> None:
    pretrain = subparsers.add_parser(
        "pretrain",
        help="pretrain BERT (MLM + NSP), ALBERT (MLM + SOP), RoBERTa (MLM), XLNet "
        "(permuted LM), GPT (causal LM) or T5/BART on text files",
    )
    pretrain.add_argument("--config", help="YAML config (see configs/)")
    pretrain.add_argument("--train-files", nargs="+", help="overrides data.train_files")
    pretrain.add_argument("--eval-files", nargs="+", help="overrides data.eval_files")
    pretrain.add_argument("--steps", type=int, help="overrides training.steps")
    pretrain.add_argument(
        "--one-document-per-line",
        action="store_true",
        help="each line is a document (default: one sentence per line, blank line between documents)",
    )
    _add_set_option(pretrain)
    pretrain.add_argument("--output-dir", required=True)


def _add_quickstart_command(subparsers) -> None:
    quickstart = subparsers.add_parser(
        "quickstart",
        help="pretrain a tiny BERT on the bundled corpus, then fine-tune it for sentiment",
    )
    quickstart.add_argument("--output-dir", default="quickstart_output")
    quickstart.add_argument("--steps", type=int, default=None, help="pretraining steps")
    quickstart.add_argument(
        "--finetune-steps", type=int, default=None, help="fine-tuning steps (default: 3 epochs)"
    )


def _add_finetune_commands(subparsers) -> None:
    finetune = subparsers.add_parser(
        "finetune",
        help="fine-tune on labelled files (classification, NER, extractive QA, seq2seq, causal LM)",
    )
    finetune.add_argument("--config", help="YAML config (see configs/*_finetune.yaml)")
    finetune.add_argument("--train-file", help="overrides data.train_file")
    finetune.add_argument("--eval-file", help="overrides data.eval_file")
    _add_set_option(finetune)
    finetune.add_argument("--output-dir", required=True)

    evaluate = subparsers.add_parser("evaluate", help="score a fine-tuned model on a labelled file")
    evaluate.add_argument("--model", required=True, help="a `tfptlm finetune` output directory")
    evaluate.add_argument("--data", help="labelled file in the model's format (not needed for --bias on an MLM)")
    evaluate.add_argument(
        "--bias", metavar="TERMS",
        help="bias report instead of metrics: identity-term file (en, zh or a path); a classifier "
        "gets counterfactual swaps of the --data texts, a masked-LM pretraining folder a template probe",
    )
    evaluate.add_argument(
        "--robustness", action="store_true",
        help="classifiers: accuracy under character noise, embedding-neighbour word swaps and a "
        "HotFlip attack, next to clean accuracy (JSON to --output, default MODEL/robustness.json)",
    )
    evaluate.add_argument("--robustness-rate", type=float, default=0.1, metavar="R",
                          help="share of words hit by character noise (default 0.1)")
    evaluate.add_argument("--robustness-words", type=int, default=2, metavar="N",
                          help="words substituted per text (default 2)")
    evaluate.add_argument("--robustness-flips", type=int, default=3, metavar="N",
                          help="most HotFlip flips per text (default 3)")
    evaluate.add_argument("--robustness-seed", type=int, default=0, metavar="S", help="seed of the noise")
    evaluate.add_argument("--output", help="also write the metrics to this JSON file")
    _add_set_option(evaluate, "override how the file is read, e.g. --set text_column=1")

    predict = subparsers.add_parser("predict", help="answer raw inputs with a fine-tuned model")
    predict.add_argument("--model", required=True, help="a `tfptlm finetune` output directory")
    predict.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify or tag")
    predict.add_argument("--text-pair", nargs="+", help="second texts, one per TEXT")
    predict.add_argument("--question", nargs="+", help="questions (question answering)")
    predict.add_argument("--context", help="the context the questions are about")
    predict.add_argument("--input", help="a file in the model's format (labels not needed)")
    predict.add_argument("--output", help="write JSON lines here instead of printing them")
    _add_set_option(predict, "override how --input is read, e.g. --set text_column=1")

    convert = subparsers.add_parser("convert", help="import a Hugging Face BERT checkpoint")
    convert.add_argument("--from", dest="source_format", choices=["hf"], required=True)
    convert.add_argument("source", metavar="DIR", help="folder with config.json, model.safetensors, vocab.txt")
    convert.add_argument("--output", required=True, help="new backbone directory")


def _add_export_command(subparsers) -> None:
    export = subparsers.add_parser(
        "export", help="export a fine-tuned model for TF Serving (SavedModel) or phones (TFLite)"
    )
    export.add_argument(
        "--model", required=True,
        help="a `tfptlm finetune` output directory, or a `tfptlm pretrain` one (SavedModel only)",
    )
    export.add_argument("--format", choices=["saved_model", "tflite"], default="saved_model")
    export.add_argument("--output", required=True, help="export base directory (versions 1, 2, ...)")
    export.add_argument("--version", type=int, help="version number (default: the next free one)")
    export.add_argument(
        "--quantize", choices=["none", "dynamic_int8", "float16"], default="none",
        help="TFLite weight quantization",
    )
    export.add_argument(
        "--max-new-tokens", type=int, default=64,
        help="the most tokens a GPT, T5 or BART export writes per prompt",
    )


def _add_explain_command(subparsers) -> None:
    explain = subparsers.add_parser(
        "explain", help="explain a classifier's prediction: integrated gradients and attention maps"
    )
    explain.add_argument("--model", required=True, help="a `tfptlm finetune` text classifier directory")
    explain.add_argument("text", metavar="TEXT", help="the text to explain")
    explain.add_argument("--text-pair", help="the second text, for a pair classifier")
    explain.add_argument("--target", help="the label to explain (default: the predicted one)")
    explain.add_argument("--steps", type=int, default=50, help="integration steps of integrated gradients")
    explain.add_argument(
        "--baseline", choices=["pad", "zeros"], default="pad",
        help="baseline word vectors: [PAD]'s or zeros ([CLS]/[SEP], positions and segments stay)",
    )
    explain.add_argument(
        "--score", choices=["probability", "logit"], default="probability",
        help="what the attributions explain: the target's probability or its logit",
    )
    explain.add_argument(
        "--output", default="explanations", help="folder for explanation.html, explanation.json and the PNGs"
    )


def _add_clean_command(subparsers) -> None:
    """Options named like the fields of ``tfptlm.data.cleaning.CleaningConfig``; unset ones keep its defaults."""
    clean = subparsers.add_parser(
        "clean", help="clean a pretraining corpus: Unicode, control characters, markup, scripts, lengths, "
        "exact and near duplicates (MinHash), with a report of every removal",
    )
    clean.add_argument("--input", nargs="+", required=True, metavar="FILE_OR_GLOB", help="corpus files or globs")
    clean.add_argument("--output", required=True, metavar="FILE", help="the cleaned corpus, in the input's format")
    clean.add_argument("--report", metavar="FILE", help="report JSON (default: OUTPUT.report.json)")
    clean.add_argument("--removed", metavar="FILE",
                       help="write every removed line/document with its text and reason (JSONL)")
    clean.add_argument("--one-document-per-line", action="store_true", default=None,
                       help="each line is a document (default: one sentence per line, blank line between documents)")
    clean.add_argument("--normalization", choices=["NFKC", "NFC", "none"], help="Unicode form (default NFKC)")
    clean.add_argument("--keep-control", dest="remove_control", action="store_false", default=None,
                       help="keep control and format characters")
    clean.add_argument("--keep-markup", dest="remove_markup", action="store_false", default=None,
                       help="keep HTML tags, entities and wiki markup")
    clean.add_argument("--remove-urls", action="store_true", default=None, help="remove http(s)://, www. addresses")
    clean.add_argument("--keep-scripts", metavar="SCRIPTS",
                       help="comma-separated scripts to keep, e.g. latin,han (default: all)")
    clean.add_argument("--min-script-share", type=float, metavar="S",
                       help="share of letters in those scripts (default 0.5)")
    clean.add_argument("--script-unit", choices=["line", "document"],
                       help="what the script filter drops (default line)")
    for unit, unit_name in (("line", "lines"), ("doc", "documents")):
        for measure, measure_name in (("chars", "characters"), ("words", "words; a Han/kana character is one")):
            for bound, bound_name in (("min", "under"), ("max", "over")):
                clean.add_argument(f"--{bound}-{unit}-{measure}", type=int, metavar="N",
                                   help=f"drop {unit_name} {bound_name} N {measure_name}")
    clean.add_argument("--no-exact-dedup", dest="exact_dedup", action="store_false", default=None,
                       help="keep exact duplicate documents")
    clean.add_argument("--no-near-dedup", dest="near_dedup", action="store_false", default=None,
                       help="keep near-duplicate documents (no MinHash, no datasketch needed)")
    clean.add_argument("--shingle", choices=["auto", "word", "char"],
                       help="near-duplicate shingles (default auto: characters for Chinese/Japanese)")
    clean.add_argument("--word-ngram", type=int, metavar="N", help="words per shingle (default 5)")
    clean.add_argument("--char-ngram", type=int, metavar="N", help="characters per shingle (default 5)")
    clean.add_argument("--threshold", type=float, metavar="J",
                       help="estimated Jaccard similarity of a near duplicate (default 0.8)")
    clean.add_argument("--num-perm", type=int, metavar="N", help="MinHash permutations (default 128)")
    clean.add_argument("--seed", type=int, help="MinHash seed (default 1)")
    clean.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_audit_command(subparsers) -> None:
    audit = subparsers.add_parser("audit", help="memorization audits of a pretraining run")
    canaries = audit.add_subparsers(dest="audit", required=True).add_parser(
        "canaries", help="insert random canaries into the corpus, pretrain (causal LM), report their exposure")
    canaries.add_argument("--config", required=True, help="a pretraining config (objective clm)")
    canaries.add_argument("--output-dir", required=True)
    canaries.add_argument("--repetitions", type=int, nargs="+", default=[1, 4, 16],
                          help="one canary per value, inserted that many times")
    canaries.add_argument("--candidates", type=int, default=1000, help="|R|: the canary + random others")
    canaries.add_argument("--digits", type=int, default=6)
    canaries.add_argument("--prefix", default="my secret number is")
    canaries.add_argument("--seed", type=int, default=0)
    _add_set_option(canaries)


def _audit(args) -> None:
    from tfptlm.analysis.canaries import format_table, run_canary_audit
    from tfptlm.config import load_config

    report = run_canary_audit(load_config(args.config, args.overrides), args.output_dir, args.repetitions,
                              args.candidates, args.digits, args.prefix, args.seed)
    print(format_table(report))
    print(f"Report: {Path(args.output_dir) / 'canaries.json'}")


def _add_set_option(parser, help_text: str = "override a config value, e.g. --set training.epochs=2") -> None:
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help_text
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``tfptlm`` argument parser, one sub-command per job.

    Example:

    >>> build_parser().parse_args(["export", "--model", "runs/sst2", "--format", "tflite", "--output", "out"]).command
    'export'
    """
    parser = argparse.ArgumentParser(
        prog="tfptlm", description="Pretrain and fine-tune Transformer language models."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_quickstart_command(subparsers)
    _add_tokenizer_commands(subparsers)
    _add_clean_command(subparsers)
    _add_pretrain_command(subparsers)
    _add_finetune_commands(subparsers)
    _add_generate_command(subparsers)
    _add_export_command(subparsers)
    _add_explain_command(subparsers)
    _add_audit_command(subparsers)
    return parser


def _tokenizer_train(args) -> None:
    from tfptlm.tokenizers import train_tokenizer

    started = time.perf_counter()
    options = {"wordpiece": dict(lowercase=args.lowercase, strip_accents=args.strip_accents),
               "sentencepiece": dict(lowercase=args.lowercase),
               "byte_bpe": {}}[args.type]
    tokenizer = train_tokenizer(args.type, args.files, args.vocab_size, **options)
    tokenizer.save(args.output)
    print(
        f"Wrote a {args.type} tokenizer of {tokenizer.vocabulary_size} tokens to {args.output} "
        f"in {time.perf_counter() - started:.1f}s"
    )


def _generate(args) -> None:
    from tfptlm.generation.text import load_generator

    sampler_options = {
        "greedy": {},
        "beam": dict(num_beams=args.num_beams, length_penalty=args.length_penalty),
        "top_k": dict(k=args.top_k, temperature=args.temperature),
        "top_p": dict(p=args.top_p, temperature=args.temperature),
        "random": dict(temperature=args.temperature),
    }
    if args.strategy not in sampler_options:
        raise ValueError(
            f"unknown --strategy {args.strategy!r}; choose one of {', '.join(sampler_options)}"
        )
    generator = load_generator(args.model)
    outputs = generator.generate(
        args.prompt,
        max_new_tokens=args.max_new_tokens,
        strategy=args.strategy,
        seed=args.seed,
        **sampler_options[args.strategy],
    )
    for prompt, output in zip(args.prompt, outputs):
        print(f"{prompt!r} -> {output!r}" if len(args.prompt) > 1 else output)


def _pretrain(args) -> None:
    from tfptlm.config import load_config
    from tfptlm.pretraining import run_pretraining, summarize

    config = load_config(args.config, args.overrides)
    if args.train_files:
        config.data.train_files = args.train_files
    if args.eval_files:
        config.data.eval_files = args.eval_files
    if args.steps is not None:
        config.training.steps = args.steps
    if args.one_document_per_line:
        config.data.one_document_per_line = True
    metrics = run_pretraining(config, args.output_dir)
    print(summarize(metrics))
    print(f"Everything is in {args.output_dir}")


def _finetune(args) -> None:
    from tfptlm.config import FinetuneConfig, load_config
    from tfptlm.finetuning import run_finetuning

    config = load_config(args.config, args.overrides, config_class=FinetuneConfig)
    if args.train_file:
        config.data.train_file = args.train_file
    if args.eval_file:
        config.data.eval_file = args.eval_file
    metrics = run_finetuning(config, args.output_dir)
    print(_headline(metrics))
    print(f"Everything is in {args.output_dir}")


def _headline(metrics: dict) -> str:
    """The metrics people report for the task, on one line."""
    names = ("accuracy", "macro_f1", "entity_f1", "exact_match", "f1", "perplexity", "bleu",
             "rougeL", "test_pass_share")
    found = [f"{name} {metrics[name]:.4f}" for name in names if name in metrics]
    return " | ".join(found + [f"{metrics.get('eval_examples', metrics.get('examples', ''))} examples"])


def _data_overrides(overrides: list[str]) -> dict:
    """``--set key=value`` for the data settings of a saved model (``data.`` prefix optional)."""
    from tfptlm.config import FinetuneConfig, load_config

    prefixed = [o if o.startswith("data.") else f"data.{o}" for o in overrides]
    data = load_config(None, prefixed, config_class=FinetuneConfig).data
    keys = {o.partition("=")[0].strip()[len("data."):] for o in prefixed}
    return {key: getattr(data, key) for key in keys}


def _evaluate(args) -> None:
    import json

    from tfptlm.finetuning import evaluate_file, load_finetuned

    if args.bias and args.robustness:
        raise ValueError("--bias and --robustness are separate reports; run one at a time")
    if args.bias:
        from tfptlm.analysis.bias_report import bias_report, format_bias_report

        report = bias_report(args.model, args.bias, args.data, _data_overrides(args.overrides))
        print(format_bias_report(report))
        text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
        else:
            print(text)
        return
    if not args.data:
        raise ValueError("--data FILE is required")
    model = load_finetuned(args.model, _data_overrides(args.overrides))
    if args.robustness:
        from tfptlm.analysis.robustness import RobustnessSettings, evaluate_robustness_file, format_robustness

        settings = RobustnessSettings(args.robustness_rate, args.robustness_words, args.robustness_flips,
                                      args.robustness_seed)
        report = evaluate_robustness_file(model, args.data, settings, log=print)
        output = Path(args.output or Path(args.model) / "robustness.json")
        output.write_text(json.dumps(report, indent=2) + "\n")
        print(format_robustness(report))
        print(f"Wrote {output}")
        return
    metrics = evaluate_file(model, args.data)
    if args.output:
        Path(args.output).write_text(json.dumps(metrics, indent=2) + "\n")
    print(_headline(metrics))


def _predict(args) -> None:
    import json

    from tfptlm.finetuning import load_finetuned, predict_examples, read_unlabelled

    model = load_finetuned(args.model, _data_overrides(args.overrides))
    if args.input:
        examples = read_unlabelled(model, args.input)
    else:
        options = {"text_pair": args.text_pair, "question": args.question, "context": args.context}
        examples = model.recipe.raw_examples(args.texts, options)
    if not examples.examples:
        raise ValueError("nothing to predict: give TEXT arguments or --input FILE")
    lines = [json.dumps(p, ensure_ascii=False) for p in predict_examples(model, examples)]
    if args.output:
        Path(args.output).write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"Wrote {len(lines)} predictions to {args.output}")
    else:
        print("\n".join(lines))


def _convert(args) -> None:
    from tfptlm.convert import convert_hf_bert

    output = convert_hf_bert(args.source, args.output)
    print(f"Converted {args.source} into {output} (use it as backbone.path in a finetune config)")


def _export(args) -> None:
    if args.format == "tflite":
        from tfptlm.export.tflite import export_tflite

        path = export_tflite(args.model, args.output, version=args.version, quantize=args.quantize)
        print(f"Wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
        return
    from tfptlm.export import export_saved_model

    path = export_saved_model(args.model, args.output, version=args.version, max_new_tokens=args.max_new_tokens)
    print(f"Exported {args.model} to {path}; it answers raw strings like the Keras model")


def _explain(args) -> None:
    from tfptlm.analysis.explain_report import explain_model_dir, format_explanation

    explanation, paths = explain_model_dir(
        args.model, args.text, args.text_pair, args.target, args.steps, args.output, args.baseline, args.score
    )
    print(format_explanation(explanation))
    print(f"Wrote {paths[-1]} ({len(paths)} files in {args.output})")


def _clean(args) -> None:
    import dataclasses

    from tfptlm.data.cleaning import CleaningConfig, clean_corpus

    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(CleaningConfig)
               if getattr(args, f.name, None) is not None}
    if args.keep_scripts is not None:
        options["keep_scripts"] = tuple(args.keep_scripts.split(","))
    report_path = args.report or f"{args.output}.report.json"
    try:
        report = clean_corpus(args.input, args.output, CleaningConfig(**options), report_path, args.removed,
                              show_progress=not args.no_progress)
    except ImportError as error:  # datasketch missing: say how to install it, in one line
        raise ValueError(str(error)) from None
    print(report.summary())
    print(f"Wrote {args.output}, the report {report_path}" + (f" and {args.removed}" if args.removed else ""))


def _quickstart(args) -> None:
    from tfptlm.quickstart import run_quickstart

    run_quickstart(args.output_dir, steps=args.steps, finetune_steps=args.finetune_steps)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tfptlm`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    handlers = {
        "tokenizer": _tokenizer_train,
        "clean": _clean,
        "pretrain": _pretrain,
        "quickstart": _quickstart,
        "finetune": _finetune,
        "evaluate": _evaluate,
        "predict": _predict,
        "convert": _convert,
        "generate": _generate,
        "export": _export,
        "explain": _explain,
        "audit": _audit,
    }
    try:
        handlers[args.command](args)
    except (ValueError, FileNotFoundError) as error:
        if os.environ.get("TFPTLM_DEBUG"):
            raise
        print(f"tfptlm {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
