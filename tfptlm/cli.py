"""The ``tfptlm`` command.

    tfptlm quickstart [--output-dir DIR]
    tfptlm tokenizer train --files GLOB [GLOB ...] --vocab-size N --output DIR
    tfptlm pretrain --config FILE [--train-files GLOB ...] [--eval-files GLOB ...]
                    [--steps N] [--set key=value ...] --output-dir DIR

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
    tokenizer = subparsers.add_parser("tokenizer", help="train WordPiece vocabularies")
    actions = tokenizer.add_subparsers(dest="action", required=True)
    train = actions.add_parser("train", help="learn a WordPiece vocabulary from text files")
    train.add_argument("--files", nargs="+", required=True, help="text files or globs")
    train.add_argument("--vocab-size", type=int, default=8000)
    train.add_argument("--output", required=True, help="directory for vocab.txt")
    train.add_argument("--no-lowercase", dest="lowercase", action="store_false")
    train.add_argument("--keep-accents", dest="strip_accents", action="store_false")


def _add_pretrain_command(subparsers) -> None:
    pretrain = subparsers.add_parser("pretrain", help="pretrain BERT (MLM + NSP) on text files")
    pretrain.add_argument("--config", help="YAML config (see configs/)")
    pretrain.add_argument("--train-files", nargs="+", help="overrides data.train_files")
    pretrain.add_argument("--eval-files", nargs="+", help="overrides data.eval_files")
    pretrain.add_argument("--steps", type=int, help="overrides training.steps")
    pretrain.add_argument(
        "--one-document-per-line",
        action="store_true",
        help="each line is a document (default: one sentence per line, blank line between documents)",
    )
    pretrain.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set training.batch_size=64",
    )
    pretrain.add_argument("--output-dir", required=True)


def _add_quickstart_command(subparsers) -> None:
    quickstart = subparsers.add_parser(
        "quickstart", help="train a vocabulary and pretrain a tiny BERT on the bundled corpus"
    )
    quickstart.add_argument("--output-dir", default="quickstart_output")
    quickstart.add_argument("--steps", type=int, default=None, help="pretraining steps")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfptlm", description="Pretrain and fine-tune Transformer language models."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_quickstart_command(subparsers)
    _add_tokenizer_commands(subparsers)
    _add_pretrain_command(subparsers)
    return parser


def _tokenizer_train(args) -> None:
    from tfptlm.tokenizers import WordPieceTokenizer, train_wordpiece_vocabulary

    started = time.perf_counter()
    vocabulary = train_wordpiece_vocabulary(
        args.files,
        vocab_size=args.vocab_size,
        lowercase=args.lowercase,
        strip_accents=args.strip_accents,
    )
    tokenizer = WordPieceTokenizer(
        vocabulary, lowercase=args.lowercase, strip_accents=args.strip_accents
    )
    tokenizer.save(args.output)
    print(
        f"Wrote {len(vocabulary)} tokens to {Path(args.output) / 'vocab.txt'} "
        f"in {time.perf_counter() - started:.1f}s"
    )


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


def _quickstart(args) -> None:
    from tfptlm.quickstart import run_quickstart

    run_quickstart(args.output_dir, steps=args.steps)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tfptlm`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    handlers = {"tokenizer": _tokenizer_train, "pretrain": _pretrain, "quickstart": _quickstart}
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
