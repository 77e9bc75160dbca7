"""WikiText-2 causal LM: a small GPT pretrained with tfptlm vs a bigram baseline, test perplexity.

A GPT (``model.size`` tiny by default: 2 layers, hidden 128, 2 heads; pre-LN
causal decoder) is trained with ``run_pretraining`` (objective ``clm``) on
wikitext2/valid.txt -- the only large split in the workplace data (see its
SOURCE.md: there is no train.txt) -- and scored on wikitext2/test.txt.

Corpus layout: ``one_document_per_line: true``, so every non-blank line of the
tokenised WikiText file (a paragraph, or a heading line `` = Title = ``) is one
document, followed by the end-of-sequence token; documents are packed into
blocks of ``--sequence-length`` + 1 tokens (``make_clm_dataset``). This is the
usual WikiText convention (a line end is a token), except that blank lines are
skipped. run_pretraining holds out the last 5% of the valid.txt lines for its
own held-out loss; the model and the bigram train on the same 95%.

Tokenization: the byte-level BPE that run_pretraining trains on valid.txt
(``--vocab-size``, 8,000 by default). Perplexities here are per BPE token of
that vocabulary, not per WikiText word, so they are not comparable with
published word-level WikiText-2 figures; both contenders below use exactly the
same tokens.

Scoring on test.txt: the test documents go through ``make_clm_dataset(...,
shuffle=False, repeat=False, drop_remainder=False)`` with the saved tokenizer,
giving non-overlapping blocks (no sliding window: a token near a block start
sees little context). The saved ``pretrainer.keras`` (CausalLM) is scored on
those blocks with ``model.evaluate`` and, exactly per token, by summing the
token cross-entropies of its logits (Keras averages the per-batch means by
batch size, so ``evaluate`` weighs the short last batch slightly differently).
The bigram baseline reads the (input token, label) pairs of the very same
blocks and sample weights, so both predict the same tokens from the same
previous token at each block's start. The bigram counts come from the same
blocks built from the training documents. Smoothing: interpolated Kneser-Ney
(absolute discount ``--kn-discount``, continuation unigram interpolated with the
uniform distribution); add-k (``--add-k``) and a unigram are listed for context.

Usage (from the repository root)::

    # default: tiny GPT, 800 steps of 16 x 128 tokens, lr 2e-3 (~14 min on 2 busy cores)
    python benchmarks/clm_wikitext.py
    # bigger options (not run here): more steps, a 6 x 512 GPT
    python benchmarks/clm_wikitext.py --steps 5000 --batch-size 32
    python benchmarks/clm_wikitext.py --size small --steps 5000 --learning-rate 5e-4
    python benchmarks/clm_wikitext.py --steps 20 --output-dir /tmp/smoke --work-dir /tmp/smoke/work  # smoke

Writes ``benchmarks/results/<stem>.{json,md}`` (default clm_wikitext).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np

from results_io import DEFAULT_DATA_DIR, DEFAULT_WORK_DIR, RESULTS_DIR, Stopwatch, fmt, write_report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="holds wikitext2/")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR / "clm_wikitext")
    parser.add_argument("--size", default="tiny", help="model.size: tiny (2x128) | small (6x512) | base")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--checkpoint-every", type=int, default=200,
                        help="held-out (valid tail) loss is logged this often")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kn-discount", type=float, default=0.75)
    parser.add_argument("--add-k", type=float, default=0.01)
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--keep-run", action="store_true",
                        help="resume an existing run directory instead of starting afresh")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--output-stem", default="clm_wikitext")
    return parser.parse_args(argv)


def block_pairs(dataset) -> tuple[np.ndarray, np.ndarray]:
    """(previous token, next token) of every weighted position of a make_clm_dataset stream."""
    prev, nxt = [], []
    for x, labels, weights in dataset:
        keep = weights.numpy() > 0
        prev.append(x["token_ids"].numpy()[keep])
        nxt.append(labels.numpy()[keep])
    return np.concatenate(prev).astype(np.int64), np.concatenate(nxt).astype(np.int64)


class BigramLM:
    """Bigram language model over token ids 0..V-1, from (previous, next) pairs, in NumPy."""

    def __init__(self, prev: np.ndarray, nxt: np.ndarray, vocab: int):
        self.V = vocab
        keys = prev * vocab + nxt
        self.keys, self.counts = np.unique(keys, return_counts=True)  # sorted bigram keys
        self.context_count = np.bincount(prev, minlength=vocab).astype(np.float64)  # c(v, .)
        self.unigram = np.bincount(nxt, minlength=vocab).astype(np.float64)
        bigram_prev = self.keys // vocab
        bigram_next = self.keys % vocab
        self.followers = np.bincount(bigram_prev, minlength=vocab).astype(np.float64)  # N1+(v .)
        self.continuation = np.bincount(bigram_next, minlength=vocab).astype(np.float64)  # N1+(. w)
        self.num_bigram_types = float(len(self.keys))  # N1+(. .)

    def _count(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        keys = prev * self.V + nxt
        pos = np.searchsorted(self.keys, keys)
        pos = np.minimum(pos, len(self.keys) - 1)
        found = self.keys[pos] == keys
        return np.where(found, self.counts[pos], 0).astype(np.float64)

    def kneser_ney(self, prev, nxt, d: float) -> np.ndarray:
        """Interpolated Kneser-Ney probabilities P(nxt | prev)."""
        # Lower order: discounted continuation unigram, interpolated with uniform.
        seen_types = float((self.continuation > 0).sum())
        p_cont = (np.maximum(self.continuation[nxt] - d, 0.0) / self.num_bigram_types
                  + d * seen_types / self.num_bigram_types / self.V)
        c_v = self.context_count[prev]
        c_vw = self._count(prev, nxt)
        safe = np.maximum(c_v, 1.0)
        backoff_weight = d * self.followers[prev] / safe
        p = np.maximum(c_vw - d, 0.0) / safe + backoff_weight * p_cont
        return np.where(c_v > 0, p, p_cont)

    def add_k(self, prev, nxt, k: float) -> np.ndarray:
        return (self._count(prev, nxt) + k) / (self.context_count[prev] + k * self.V)

    def unigram_add_one(self, nxt) -> np.ndarray:
        return (self.unigram[nxt] + 1.0) / (self.unigram.sum() + self.V)


def per_token_ppl(probabilities: np.ndarray) -> tuple[float, float]:
    nll = float(-np.log(probabilities).mean())
    return nll, math.exp(nll)


def model_exact_nll(model, dataset) -> tuple[float, int]:
    """Sum of token cross-entropies of the model over the weighted positions, and their count."""
    import tensorflow as tf

    @tf.function
    def batch_nll(x, labels, weights):
        logits = model(x, training=False)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=tf.cast(logits, tf.float32))
        return tf.reduce_sum(ce * weights), tf.reduce_sum(weights)

    total, count = 0.0, 0.0
    for x, labels, weights in dataset:
        s, n = batch_nll(x, labels, weights)
        total += float(s)
        count += float(n)
    return total, int(count)


def main(argv=None) -> None:
    args = parse_args(argv)
    stopwatch = Stopwatch()
    import tfptlm  # noqa: F401
    from tfptlm.config import PretrainConfig, load_config
    from tfptlm.data import read_documents
    from tfptlm.data.objectives import make_clm_dataset
    from tfptlm.metrics.generation import perplexity
    from tfptlm.models.loading import load_keras_model
    from tfptlm.pretraining import load_corpora, run_pretraining
    from tfptlm.tokenizers import load_tokenizer
    from tfptlm.tasks.task import language_model_compile_options

    wiki = args.data_dir / "wikitext2"
    overrides = [
        "objective=clm",
        "model.family=gpt",
        f"model.size={args.size}",
        f"model.dropout={args.dropout}",
        f"model.max_sequence_length={max(args.sequence_length, 128)}",
        "tokenizer.type=byte_bpe",
        f"tokenizer.vocab_size={args.vocab_size}",
        f"data.train_files=[{wiki / 'valid.txt'}]",
        "data.one_document_per_line=true",
        f"data.max_sequence_length={args.sequence_length}",
        f"training.batch_size={args.batch_size}",
        f"training.steps={args.steps}",
        f"training.learning_rate={args.learning_rate}",
        f"training.checkpoint_every={args.checkpoint_every}",
        f"training.seed={args.seed}",
    ]
    config = load_config(None, overrides=overrides, config_class=PretrainConfig)
    run_dir = args.work_dir / "gpt"
    if run_dir.exists() and not args.keep_run:
        shutil.rmtree(run_dir)
    stopwatch.log(f"Pretraining -> {run_dir}: {' '.join(overrides)}")
    start = stopwatch.seconds
    pretrain_metrics = run_pretraining(config, run_dir, verbose=2)
    pretrain_seconds = stopwatch.seconds - start
    stopwatch.log(f"Pretraining done in {pretrain_seconds:.0f} s: {json.dumps(pretrain_metrics)}")
    history = []
    history_file = run_dir / "history.csv"
    if history_file.is_file():
        with open(history_file) as f:
            history = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]

    tokenizer = load_tokenizer(run_dir / "tokenizer")
    train_documents, held_out_documents = load_corpora(config)
    test_documents = read_documents([str(wiki / "test.txt")], one_document_per_line=True, check_nsp=False)

    def blocks(documents):
        return make_clm_dataset(documents, tokenizer, args.sequence_length, args.eval_batch_size,
                                shuffle=False, repeat=False, drop_remainder=False)

    # The GPT on the test blocks.
    stopwatch.log("Scoring the saved CausalLM on test.txt")
    model = load_keras_model(run_dir / "pretrainer.keras")
    model.compile(**language_model_compile_options({}))
    test_eval = model.evaluate(blocks(test_documents), return_dict=True, verbose=0)
    total_nll, test_tokens = model_exact_nll(model, blocks(test_documents))
    gpt = {
        "evaluate_loss": float(test_eval["loss"]),
        "evaluate_perplexity": perplexity(float(test_eval["loss"])),
        "token_accuracy": float(test_eval["accuracy"]),
        "nll_per_token": total_nll / test_tokens,
        "perplexity": math.exp(total_nll / test_tokens),
    }
    stopwatch.log(f"GPT on test: {gpt}")

    # Bigram on the same blocks.
    stopwatch.log("Bigram counts on the training blocks; scoring the test blocks")
    train_prev, train_next = block_pairs(blocks(train_documents))
    test_prev, test_next = block_pairs(blocks(test_documents))
    if len(test_next) != test_tokens:
        raise RuntimeError(f"token counts differ: bigram {len(test_next)}, model {test_tokens}")
    bigram = BigramLM(train_prev, train_next, tokenizer.vocabulary_size)
    baselines = {}
    for name, probabilities in (
        (f"bigram, interpolated Kneser-Ney (d={args.kn_discount:g})",
         bigram.kneser_ney(test_prev, test_next, args.kn_discount)),
        (f"bigram, add-k (k={args.add_k:g})", bigram.add_k(test_prev, test_next, args.add_k)),
        ("bigram, add-one", bigram.add_k(test_prev, test_next, 1.0)),
        ("unigram, add-one", bigram.unigram_add_one(test_next)),
    ):
        nll, ppl = per_token_ppl(probabilities)
        baselines[name] = {"nll_per_token": nll, "perplexity": ppl}
    # Kneser-Ney's discount on the held-out tail of valid.txt (not used to pick anything; for context).
    held_prev, held_next = block_pairs(blocks(held_out_documents))
    kn_held_out = {f"{d:g}": per_token_ppl(bigram.kneser_ney(held_prev, held_next, d))[1]
                   for d in (0.5, 0.75, 0.9)}
    stopwatch.log(f"Baselines: {baselines}; KN on the valid tail by discount: {kn_held_out}")

    kn_name = next(iter(baselines))
    settings = dict(
        overrides=overrides, run_dir=str(run_dir), sequence_length=args.sequence_length,
        batch_size=args.batch_size, steps=args.steps, size=args.size,
        train_file=str(wiki / "valid.txt"), test_file=str(wiki / "test.txt"),
        layout="one_document_per_line (each non-blank line a document + EOS), packed blocks",
    )
    sizes = dict(
        train_documents=len(train_documents), held_out_documents=len(held_out_documents),
        test_documents=len(test_documents), train_tokens_in_blocks=int(len(train_next)),
        test_tokens_scored=int(test_tokens), vocabulary_size=int(tokenizer.vocabulary_size),
        tokens_seen_in_training=args.steps * args.batch_size * args.sequence_length,
        epochs_over_training_tokens=args.steps * args.batch_size * args.sequence_length / max(len(train_next), 1),
        test_words_whitespace=sum(len(s.split()) for d in test_documents for s in d),
    )
    body = [
        f"GPT `{args.size}` trained with `run_pretraining` (objective clm, byte-level BPE of "
        f"{sizes['vocabulary_size']:,} tokens trained on valid.txt) on {sizes['train_documents']:,} lines of "
        f"wikitext2/valid.txt ({sizes['train_tokens_in_blocks']:,} BPE tokens; the last "
        f"{sizes['held_out_documents']} lines held out) for {args.steps:,} steps of {args.batch_size} x "
        f"{args.sequence_length} tokens ({sizes['epochs_over_training_tokens']:.1f} passes), AdamW lr "
        f"{args.learning_rate:g}, 10% warm-up then linear decay, dropout {args.dropout}, "
        f"{pretrain_seconds / 60:.1f} min ({pretrain_metrics['tokens_per_second']:,.0f} tokens/s).",
        "",
        f"Scored on wikitext2/test.txt: {sizes['test_documents']:,} lines, {sizes['test_tokens_scored']:,} "
        f"BPE tokens (EOS after each line included; {sizes['test_words_whitespace']:,} whitespace words), "
        f"non-overlapping blocks of {args.sequence_length} + 1 tokens. Per-token perplexity, same tokens "
        "for every row:",
        "",
        "| model | test NLL/token | test perplexity/token |",
        "| --- | ---: | ---: |",
        f"| GPT {args.size} (exact sum over tokens) | {gpt['nll_per_token']:.4f} | {gpt['perplexity']:.2f} |",
        f"| GPT {args.size} (`model.evaluate` loss) | {gpt['evaluate_loss']:.4f} | {gpt['evaluate_perplexity']:.2f} |",
    ]
    for name, b in baselines.items():
        body.append(f"| {name} | {b['nll_per_token']:.4f} | {b['perplexity']:.2f} |")
    ratio = baselines[kn_name]["perplexity"] / gpt["perplexity"]
    body += [
        "",
        f"GPT test token accuracy {gpt['token_accuracy']:.3f}. Kneser-Ney bigram / GPT perplexity: {ratio:.2f}x. "
        f"run_pretraining's own held-out loss (tail of valid.txt, {pretrain_metrics['eval_documents']} lines, "
        f"first 20 batches): {pretrain_metrics['loss']:.4f} (perplexity {pretrain_metrics['perplexity']:.2f}). "
        "Kneser-Ney bigram perplexity on that valid tail by discount: "
        + ", ".join(f"d={d}: {p:.2f}" for d, p in kn_held_out.items()) + ".",
    ]
    if history:
        body += ["", "Held-out loss during training (tail of valid.txt):", "",
                 "| step | train loss | held-out loss | held-out perplexity |", "| ---: | ---: | ---: | ---: |"]
        for i, row in enumerate(history):
            step = min((i + 1) * args.checkpoint_every, args.steps)
            body.append(f"| {step:,} | {row.get('loss', float('nan')):.4f} | {row.get('val_loss', float('nan')):.4f} | "
                        f"{math.exp(row.get('val_loss', float('nan'))):.2f} |")
    md = write_report(
        args.output_stem, "WikiText-2: small GPT (causal LM) vs bigram, test perplexity per BPE token",
        {"settings": settings, "sizes": sizes, "pretraining": {"metrics": pretrain_metrics,
                                                               "seconds": round(pretrain_seconds, 1),
                                                               "history": history},
         "gpt_test": gpt, "baselines_test": baselines, "kneser_ney_valid_tail_by_discount": kn_held_out},
        body, stopwatch, args.output_dir, complete=True,
    )
    print(md.read_text())


if __name__ == "__main__":
    main()
