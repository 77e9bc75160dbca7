"""Memorization audit: the exposure of inserted canaries (Carlini et al. 2019, "The Secret Sharer").

Random canaries such as ``my secret number is 3 9 1 4 7 2`` are inserted into
a copy of the pretraining corpus (each its own document, ``r`` times for each
``r`` in ``repetitions``), a causal LM is pretrained on it with the user's
config, and each canary's log-perplexity (the summed negative log-likelihood
of its tokens after the document separator) is ranked among candidates of the
same format: the canary and ``candidates - 1`` other secrets drawn at random
without replacement (or all ``10^digits`` secrets when there are no more than
``candidates``). With ``rank`` its exact 1-based rank among those candidates
(ties count against the canary) and ``|R|`` their number::

    exposure = log2(|R|) - log2(rank)

so a canary ranked first among 1,000 has exposure log2(1000) ~ 9.97 and an
unremembered one about 1. Only the causal LM (objective ``clm``) gives the
sequence likelihood this needs.

Example:

>>> report = run_canary_audit(config, "runs/audit", repetitions=(1, 4, 16), candidates=1000)
>>> print(format_table(report))     # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfptlm.config import ConfigError, PretrainConfig
from tfptlm.text_files import expand_file_patterns, read_lines

PREFIX = "my secret number is"


def make_canary(rng: random.Random, digits: int = 6, prefix: str = PREFIX) -> str:
    """A canary: ``prefix`` and ``digits`` random digits separated by spaces.

    Example:
        >>> make_canary(random.Random(0), 4)
        'my secret number is 6 6 0 4'
    """
    return canary_text(prefix, "".join(str(rng.randrange(10)) for _ in range(digits)))


def canary_text(prefix: str, secret: str) -> str:
    """The canary of ``secret`` (a digit string): ``prefix 3 9 1``."""
    return f"{prefix} {' '.join(secret)}"


def exposure(canary_score: float, candidate_scores) -> tuple[int, float]:
    """Rank and exposure of a canary among candidates (scores: log-perplexities, lower = likelier).

    ``candidate_scores`` are the scores of the other candidates; |R| is their
    number plus one (the canary). Ties count against the canary.

    Example:
        >>> exposure(0.5, [1.0] * 999)
        (1, 9.965784284662087)
    """
    scores = np.asarray(candidate_scores, dtype=np.float64)
    rank = 1 + int(np.sum(scores <= canary_score))
    return rank, math.log2(len(scores) + 1) - math.log2(rank)


def insert_canaries(documents: list[str], canaries: dict[str, int], seed: int = 0) -> list[str]:
    """``documents`` with each canary inserted as its own document ``count`` times, at random places."""
    rng = random.Random(seed)
    result = list(documents)
    for canary, count in canaries.items():
        for _ in range(count):
            result.insert(rng.randrange(len(result) + 1), canary)
    return result


def read_paragraphs(patterns: list[str], one_document_per_line: bool) -> list[str]:
    """The documents of the corpus files as text blocks (blank-line separated, or one per line)."""
    documents, current = [], []
    for path in expand_file_patterns(patterns):
        for line in [*read_lines(path), ""]:
            if line and not one_document_per_line:
                current.append(line)
            elif line:
                documents.append(line)
            elif current:
                documents.append("\n".join(current))
                current = []
    return documents


def sequence_scores(model, tokenizer, texts: list[str], batch_size: int = 256) -> np.ndarray:
    """Log-perplexity of each text under a causal LM: the summed NLL of its tokens after ``eos``."""
    ids = [[tokenizer.eos_id, *row] for row in tokenizer.tokenize(texts).to_list()]
    scores = []
    for start in range(0, len(ids), batch_size):
        chunk = ids[start:start + batch_size]
        length = max(map(len, chunk))
        tokens = np.full((len(chunk), length), tokenizer.pad_id, "int32")
        mask = np.zeros_like(tokens)
        for i, row in enumerate(chunk):
            tokens[i, :len(row)], mask[i, :len(row)] = row, 1
        logits = model({"token_ids": tokens[:, :-1], "padding_mask": mask[:, :-1]}, training=False)
        nll = tf.keras.losses.sparse_categorical_crossentropy(tokens[:, 1:], logits, from_logits=True)
        scores.extend((nll.numpy() * mask[:, 1:]).sum(axis=1).tolist())
    return np.array(scores)


def candidate_secrets(secret: str, count: int, rng: random.Random) -> list[str]:
    """``count - 1`` other secrets of the same length (all of them when 10^digits <= count)."""
    space = 10 ** len(secret)
    if space <= count:
        return [f"{n:0{len(secret)}d}" for n in range(space) if f"{n:0{len(secret)}d}" != secret]
    others: set[str] = set()
    while len(others) < count - 1:
        other = f"{rng.randrange(space):0{len(secret)}d}"
        if other != secret:
            others.add(other)
    return sorted(others)


def run_canary_audit(config: PretrainConfig, output_dir: str | Path, repetitions=(1, 4, 16),
                     candidates: int = 1000, digits: int = 6, prefix: str = PREFIX,
                     seed: int = 0, verbose: int = 1) -> dict:
    """Inserts canaries, pretrains with ``config`` and writes ``canaries.json`` (see the module)."""
    from tfptlm.finetuning.backbones import load_model_dir
    from tfptlm.pretraining import run_pretraining

    if config.objective != "clm":
        raise ConfigError(f"audit canaries needs a causal LM (objective: clm, model.family: gpt) for the "
                          f"sequence likelihood; objective {config.objective} has none")
    if candidates < 2 or digits < 1 or not repetitions or min(repetitions) < 1:
        raise ValueError("candidates must be >= 2, digits >= 1 and every repetition count >= 1")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    secrets = ["".join(str(rng.randrange(10)) for _ in range(digits)) for _ in repetitions]
    canaries = {canary_text(prefix, s): r for s, r in zip(secrets, repetitions)}
    documents = read_paragraphs(config.data.train_files, config.data.one_document_per_line)
    corpus = output_dir / "corpus_with_canaries.txt"
    separator = "\n" if config.data.one_document_per_line else "\n\n"
    corpus.write_text(separator.join(insert_canaries(documents, canaries, seed)) + "\n", encoding="utf-8")
    config.data.train_files = [str(corpus)]
    metrics = run_pretraining(config, output_dir / "model", verbose=verbose)
    model, tokenizer = load_model_dir(output_dir / "model", "pretrainer.keras")
    rows = []
    for secret, count in zip(secrets, repetitions):
        others = candidate_secrets(secret, candidates, rng)
        scores = sequence_scores(model, tokenizer, [canary_text(prefix, s) for s in [secret, *others]])
        rank, value = exposure(scores[0], scores[1:])
        rows.append({"canary": canary_text(prefix, secret), "repetitions": count, "rank": rank,
                     "candidates": len(others) + 1, "exposure": value,
                     "max_exposure": math.log2(len(others) + 1), "log_perplexity": float(scores[0])})
    report = {"canaries": rows, "digits": digits, "prefix": prefix, "seed": seed,
              "training": {k: v for k, v in metrics.items() if k in
                           ("loss", "perplexity", "steps", "privacy_epsilon", "privacy_delta")}}
    (output_dir / "canaries.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def format_table(report: dict) -> str:
    """The report as a plain-text table: canary, repetitions, rank, exposure."""
    lines = [f"{'canary':<40} {'repetitions':>11} {'rank':>12} {'exposure':>9}"]
    for row in report["canaries"]:
        rank = f"{row['rank']}/{row['candidates']}"
        lines.append(f"{row['canary']:<40} {row['repetitions']:>11} {rank:>12} "
                     f"{row['exposure']:>9.2f}")
    return "\n".join(lines)
