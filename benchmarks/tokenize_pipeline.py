"""The pretraining input pipeline measured alone: text files -> model-ready batches.

It follows ``tfptlm pretrain`` (``tfptlm/pretraining.py``): the config is
``configs/bert_small_pretrain.yaml`` (batch 32 x 128, 20 predictions) with
``--set``-style overrides, the documents come from ``load_corpora`` (which
reads the files with ``read_documents`` and holds out 5 % for evaluation),
the tokenizer from ``load_tokenizer`` (the all-MiniLM-L6-v2 folder: its
``vocab.txt``, uncased) and the datasets from ``make_datasets``, exactly as a
run builds them. The per-step work (pairs or packs, masking, batching) then
runs in ``tf.data`` while this process only pulls batches.

Example:

>>> config = pipeline_config(files, folder, VARIANTS["bert-nsp"])  # doctest: +SKIP
"""

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from tfptlm.config import PretrainConfig, load_config

REPO_ROOT = Path(__file__).resolve().parent.parent
BASE_CONFIG = REPO_ROOT / "configs" / "bert_small_pretrain.yaml"

#: Pretraining recipes measured: ``--set`` overrides on top of ``BASE_CONFIG``.
VARIANTS = {
    "bert-nsp": ["objective=mlm_nsp"],
    "bert-nsp-whole-word": ["objective=mlm_nsp", "data.whole_word_masking=true"],
    "albert-sop": ["objective=mlm_sop"],
    "albert-sop-ngram3": ["objective=mlm_sop", "data.whole_word_masking=true", "data.max_ngram=3"],
    "roberta-full-sentences": ["objective=mlm"],
}


def pipeline_config(files: list[Path], tokenizer_folder: Path, overrides: list[str]) -> PretrainConfig:
    """The BERT-small pretraining config on ``files`` (one document per line) with ``overrides``."""
    return load_config(
        str(BASE_CONFIG),
        overrides=[
            f"data.train_files={json.dumps([str(f) for f in files])}",
            "data.one_document_per_line=true",
            f"tokenizer.path={tokenizer_folder}",
            *overrides,
        ],
    )


class BatchBlocks:
    """Timed blocks of ``batches`` batches, each from a fresh iterator of ``dataset`` after ``warmup`` batches.

    ``start`` (untimed) makes the iterator and pulls the warm-up batches, so
    its threads and parallelism are up; ``run`` (the timed block) pulls the
    measured batches and drops the iterator. No iterator lives between
    blocks, so none works ahead in the background while another recipe is
    timed, and no block starts from a buffer filled while it waited.
    """

    def __init__(self, dataset, batches: int, tokens_per_batch: int, warmup: int):
        self.dataset, self.batches, self.tokens_per_batch, self.warmup = dataset, batches, tokens_per_batch, warmup
        self.iterator = None

    def start(self) -> None:
        self.iterator = iter(self.dataset)
        for _ in range(self.warmup):
            next(self.iterator)

    def run(self) -> dict:
        for _ in range(self.batches):
            next(self.iterator)
        self.iterator = None
        return {"batches": self.batches, "tokens": self.batches * self.tokens_per_batch}


def real_token_share(dataset, batches: int) -> float:
    """Share of the ``[B, T]`` positions that hold real tokens (not padding), over ``batches`` batches."""
    real, total = 0, 0
    for x, _, _ in dataset.take(batches):
        mask = x["padding_mask"].numpy()
        real, total = real + int(mask.sum()), total + mask.size
    return round(real / total, 4)


def training_tokens_per_second(peers_path: Path, default: float) -> tuple[float, str]:
    """The best tfptlm training tokens/s in ``peers.json`` if it has one, else ``default``.

    A number counts when its key contains ``tokens_per_second`` (not per CPU
    second, not a min/max), its key path has a training part (``train``, no
    ``infer``) and the path, or the string fields of the dictionary holding
    it, mention tfptlm. Returns the figure and where it came from.
    """
    if peers_path.is_file():
        peers = json.loads(peers_path.read_text("utf-8"))
        found: list[tuple[float, str]] = []

        def walk(node, trail: list[str], context: str) -> None:
            if isinstance(node, dict):
                here = " ".join(str(v) for v in node.values() if isinstance(v, str))
                for key, value in node.items():
                    walk(value, trail + [str(key)], here)
            elif isinstance(node, list):
                for index, value in enumerate(node):
                    walk(value, trail + [str(index)], context)
            elif isinstance(node, (int, float)) and not isinstance(node, bool) and trail:
                key, path = trail[-1].lower(), "/".join(trail).lower()
                rate = "tokens_per_second" in key and not any(w in key for w in ("cpu", "min_", "max_"))
                training = "train" in path and "infer" not in path
                if rate and training and "tfptlm" in f"{path} {context}".lower():
                    found.append((float(node), "/".join(trail)))

        walk(peers, [], "")
        if found:
            value, where = max(found)
            settings = peers.get("settings", {}) if isinstance(peers, dict) else {}
            shape = f" (batch {settings.get('batch_size')} x {settings.get('sequence_length')})" if settings else ""
            return value, f"{peers_path.name}: {where}{shape}"
    return default, "--training-tokens-per-second (no tfptlm training tokens/s found in peers.json)"


def corpus_tokenization(documents, tokenizer, rounds: int) -> dict:
    """Times ``rounds`` ``TokenizedCorpus.build`` calls: the first (tracing included) and the median of the rest."""
    from tfptlm.data.tokenized_corpus import TokenizedCorpus

    builds = [timed(TokenizedCorpus.build, documents, tokenizer) for _ in range(rounds)]
    tokens = builds[0][0].num_tokens
    later = builds[1:] or builds
    result = {"documents": len(documents), "tokens": tokens}
    for label, seconds, cpu_seconds in (
        ("first", builds[0][1], builds[0][2]),
        ("later", statistics.median(b[1] for b in later), statistics.median(b[2] for b in later)),
    ):
        result[label] = {"seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3),
                         "tokens_per_second": round(tokens / seconds, 1),
                         "tokens_per_cpu_second": round(tokens / cpu_seconds, 1)}
    return result


def timed(function: Callable, *args, **kwargs):
    """``(result, seconds, cpu_seconds)`` of one call."""
    start, start_cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start, time.process_time() - start_cpu
