"""BERT pretraining against its peers: tfptlm vs keras-hub vs Hugging Face transformers (PyTorch).

One command measures, in one run and interleaved block by block, for BERT
``small`` (4 layers, hidden 512, 8 heads, intermediate 2048, vocabulary 30,522,
dropout 0.1) on one fixed synthetic batch (32 x 128 tokens, 20 masked positions
per sequence, the same data for every contender), MLM + NSP, AdamW:

1. training tokens/s (batch x sequence length x steps / seconds) and tokens
   per CPU-second;
2. inference tokens/s (forward pass of the same model, dropout off);
3. peak memory: the worker's RSS before the model is built and its peak RSS
   (``ru_maxrss``) at the end of the training blocks, whose difference is
   the model's own share (weights, optimizer state, activations, compiled code);
4. model FLOPs utilization (MFU): achieved matrix-product FLOP/s over the peak
   FLOP/s of a large square matrix product measured in the same run;
5. ratios: tfptlm's best configuration over the best peer configuration per
   precision (training and inference; once by wall time and once by CPU time,
   each picking its own best), tfptlm's peak memory over keras-hub's, with the
   targets (training >= 1.25x the best peer in float32 and in bfloat16; peak
   training memory no higher than keras-hub's) marked met or not.

Contenders (each its own worker process, ``peers_worker.py``; the Keras dtype
policy is global):

=====================  ====================================================  =====
name                   model                                                 XLA
=====================  ====================================================  =====
tfptlm-{p}             tfptlm ``BertBackbone.from_size("small")`` +          no
                       ``BertPretrainer`` (its own losses and metrics)
tfptlm-{p}-xla         same, ``compile(jit_compile=True)``                   yes
kerashub-{p}           keras-hub ``BertBackbone`` + ``MaskedLMHead`` (tied,  no
                       GELU transform) + ``Dense(2)`` NSP head
kerashub-{p}-xla       same, ``compile(jit_compile=True)``                   yes
hf-torch-{p}           transformers ``BertForPreTraining`` on PyTorch, eager: no
                       ``model.bert``, then ``model.cls.predictions`` on the
                       gathered masked positions only, ``cls.seq_relationship``
                       on the pooled output
=====================  ====================================================  =====

with ``{p}`` = ``fp32`` (float32) or ``bf16`` (Keras ``mixed_bfloat16`` policy;
PyTorch ``torch.autocast("cpu", dtype=torch.bfloat16)``). Every contender
uses the same losses (MLM cross-entropy weighted by the mask weights and
averaged over the predictions, plus NSP cross-entropy), computes the MLM and
NSP accuracies, and uses AdamW with the warm-up/decay schedule of
``tfptlm.training.optimizer.create_optimizer`` (lr 1e-4, weight decay 0.01
except biases and layer norms, global gradient norm clipped to 1, epsilon 1e-6);
Keras models train with ``model.fit(dataset, steps_per_epoch=n)``, PyTorch
with a plain loop. Inference: Keras ``tf.function(model(x, training=False),
jit_compile=XLA)``; PyTorch ``model.eval()`` under ``torch.inference_mode()``.

Method: per precision group (float32, then bfloat16; at most one group alive),
the parent starts the group's workers one at a time; each builds its model and
runs the untimed warm-up steps (tracing, XLA compilation), then waits. A
``matmul`` worker times the group dtype's ``n x n`` products with TensorFlow
and PyTorch. Then ``--rounds`` training rounds: in each, every worker in turn
(the order rotates every round) runs one timed block (``--steps`` training
steps, or ``--matmul-reps`` products) while the others sit idle; then
``--rounds`` inference rounds the same way (``--infer-calls`` forward passes a
block; each contender's first inference block first runs untimed warm-up
calls). Figures are medians over blocks; ratios are also given as the median of
same-round ratios, which cancels load that drifts between rounds.

FLOPs (matrix products only; B batch, T sequence length, P predictions per
sequence, L layers, H hidden, I intermediate, V vocabulary): forward =
B x [L x T x (2 x (4H^2 + 2HI) + 4TH) + 2P x (H^2 + HV) + 2H^2 + 4H], i.e.
2 x (non-embedding matrix parameters: Q, K, V, output, two feed-forward) per
token, plus the attention scores and context products (2 x 2 x T x H per
token and layer), plus the MLM head (H x H transform and H x V tied
projection) at the masked positions only, plus the pooler and NSP head.
Training = 3 x forward (the backward pass takes two products per forward
product). Embedding look-ups, layer norms, softmax and activations are not
counted. For the default workload that is 383.2 GFLOP per training step; the
PyTorch worker checks it with ``torch.utils.flop_counter`` (reported).
MFU = achieved training (or inference) FLOP/s / peak matrix-product FLOP/s of
the same precision (the best library's median; float32 for float32, bfloat16
for mixed bfloat16), in wall time and per CPU-second.

Usage::

    python benchmarks/peers.py                      # full run, 25 min on 2 cores at load 7
    python benchmarks/peers.py --quick              # smoke run (4-8 min), writes peers_quick.*
    python benchmarks/peers.py --contenders 'tfptlm-fp32,kerashub-fp32*,hf-torch-fp32'

``--contenders`` takes comma-separated names or shell patterns. The torch
contenders need ``pip install -e .[peers]`` (torch 2.13.0 CPU, transformers);
without them they are skipped with a note. Results: ``benchmarks/results/peers.{json,md}``
(``peers_quick.*`` with ``--quick``), rewritten after each precision group;
workers' stderr goes to ``results/<stem>_logs/<contender>.log``.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from peers_report import markdown_body
from peers_worker import MODEL, PROTOCOL_PREFIX
from results_io import RESULTS_DIR, Stopwatch, write_report

HERE = Path(__file__).resolve().parent

CONTENDERS = {}
for _tag, _precision in (("fp32", "float32"), ("bf16", "mixed_bfloat16")):
    CONTENDERS[f"tfptlm-{_tag}"] = dict(impl="tfptlm", precision=_precision, jit_compile=False)
    CONTENDERS[f"tfptlm-{_tag}-xla"] = dict(impl="tfptlm", precision=_precision, jit_compile=True)
    CONTENDERS[f"kerashub-{_tag}"] = dict(impl="kerashub", precision=_precision, jit_compile=False)
    CONTENDERS[f"kerashub-{_tag}-xla"] = dict(impl="kerashub", precision=_precision, jit_compile=True)
    CONTENDERS[f"hf-torch-{_tag}"] = dict(impl="torch", precision=_precision, jit_compile=False)
#: The matrix-product peak of each precision group (always run with the group).
PEAK_WORKERS = {
    "float32": ("matmul-fp32", dict(impl="matmul", precision="float32", jit_compile=False)),
    "mixed_bfloat16": ("matmul-bf16", dict(impl="matmul", precision="mixed_bfloat16", jit_compile=False)),
}
LIBRARIES = {"tfptlm": "tfptlm", "kerashub": "keras-hub", "torch": "HF transformers (PyTorch)"}
TARGET_SPEEDUP = 1.25

QUICK = dict(steps=1, rounds=1, warmup=2, infer_calls=1, infer_warmup=1, batch_size=4,
             sequence_length=32, num_predictions=4, matmul_size=512, matmul_reps=2)
DEFAULTS = dict(steps=2, rounds=3, warmup=3, infer_calls=3, infer_warmup=1, batch_size=32,
                sequence_length=128, num_predictions=20, matmul_size=3072, matmul_reps=5)


def forward_flops(batch_size: int, sequence_length: int, num_predictions: int,
                  model: dict = MODEL) -> dict:
    """Matrix-product FLOPs of one forward pass of the pretraining model, by part.

    >>> forward_flops(32, 128, 20)["total"] * 3  # one training step
    383188402176
    """
    L, H, I, V = (model[k] for k in ("num_layers", "hidden_dim", "intermediate_dim",
                                     "vocabulary_size"))
    T, P, B = sequence_length, num_predictions, batch_size
    parts = dict(
        encoder_projections=B * L * T * 2 * (4 * H * H + 2 * H * I),
        attention_products=B * L * T * 4 * T * H,
        mlm_head=B * 2 * P * (H * H + H * V),
        pooler_and_nsp=B * (2 * H * H + 2 * H * 2),
    )
    parts["total"] = sum(parts.values())
    return parts


# ----------------------------------------------------------------------------
# Workers
# ----------------------------------------------------------------------------


class Worker:
    """A persistent ``peers_worker.py`` process driven over its line protocol."""

    def __init__(self, name: str, spec: dict, settings: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "w")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
        # -P: benchmarks/ stays off the worker's sys.path, so a script there named like a
        # standard module (tokenize.py, ...) cannot shadow it; the worker imports nothing from it.
        self.process = subprocess.Popen(
            [sys.executable, "-P", str(HERE / "peers_worker.py"), json.dumps(spec), json.dumps(settings)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1,
            env=env)

    def receive(self, kind: str) -> dict:
        for line in self.process.stdout:
            if line.startswith(PROTOCOL_PREFIX):
                got, _, payload = line[len(PROTOCOL_PREFIX):].partition(" ")
                if got != kind:
                    raise RuntimeError(f"{self.name}: expected {kind}, got {got}")
                return json.loads(payload)
            self._log.write("[stdout] " + line)
        code = self.process.wait()
        self._log.flush()
        tail = self.log_path.read_text()[-3000:]
        raise RuntimeError(f"{self.name} exited with code {code}; log {self.log_path} ends:\n{tail}")

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.receive("BLOCK")

    def close(self) -> dict:
        self.process.stdin.write("EXIT\n")
        self.process.stdin.flush()
        done = self.receive("DONE")
        self.process.stdin.close()
        self.process.wait(timeout=120)
        self._log.close()
        return done

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


def worker_settings(args) -> dict:
    return {key: getattr(args, key) for key in DEFAULTS}


def run_group(precision: str, names: list[str], args, log_dir: Path, results: dict,
              stopwatch: Stopwatch) -> None:
    """Starts the group's workers, runs the interleaved training then inference rounds."""
    workers: list[Worker] = []
    peak_name, peak_spec = PEAK_WORKERS[precision]
    try:
        for name, spec in [(peak_name, peak_spec)] + [(n, CONTENDERS[n]) for n in names]:
            stopwatch.log(f"starting {name}")
            worker = Worker(name, spec, worker_settings(args), log_dir)
            try:
                ready = worker.receive("READY")
            except RuntimeError as error:
                stopwatch.log(f"{name} failed: {error}")
                results[name] = dict(spec, error=str(error)[-2000:])
                worker.kill()
                continue
            stopwatch.log(f"{name} ready: {json.dumps(ready)}")
            results[name] = dict(spec, **ready, train_blocks=[], infer_blocks=[], peak_blocks=[])
            workers.append(worker)
        for phase in ("train", "infer"):
            for round_index in range(args.rounds):
                shift = round_index % max(len(workers), 1)
                for worker in workers[shift:] + workers[:shift]:
                    if worker.name == peak_name:
                        command, key = f"PEAK {args.matmul_reps}", "peak_blocks"
                    elif phase == "train":
                        command, key = f"TRAIN {args.steps}", "train_blocks"
                    else:
                        command, key = f"INFER {args.infer_calls}", "infer_blocks"
                    try:
                        block = worker.ask(command)
                    except RuntimeError as error:  # the others go on without it
                        stopwatch.log(f"{worker.name} failed: {error}")
                        results[worker.name]["error"] = str(error)[-2000:]
                        workers.remove(worker)
                        worker.kill()
                        continue
                    block.update(round=round_index, phase=phase)
                    results[worker.name][key].append(block)
                    stopwatch.log(f"{phase} round {round_index + 1}/{args.rounds} {worker.name}: "
                                  f"{json.dumps(block)}")
            if phase == "train":
                for worker in workers:
                    blocks = results[worker.name]["train_blocks"] or results[worker.name]["peak_blocks"]
                    results[worker.name]["peak_rss_training_mb"] = blocks[-1]["peak_rss_mb"]
        for worker in workers:
            results[worker.name]["peak_rss_end_mb"] = worker.close()["peak_rss_mb"]
    finally:
        for worker in workers:
            worker.kill()


# ----------------------------------------------------------------------------
# Summaries
# ----------------------------------------------------------------------------


def _median(values) -> float | None:
    values = list(values)
    return statistics.median(values) if values else None


def summarize_peaks(results: dict) -> dict:
    """Per precision: each library's median GFLOP/s (wall and per CPU-s) and the best of them."""
    peaks = {}
    for precision, (name, _) in PEAK_WORKERS.items():
        blocks = results.get(name, {}).get("peak_blocks") or []
        if not blocks:
            continue
        libraries = {
            library: dict(
                gflops=_median(b["libraries"][library]["gflops"] for b in blocks),
                gflops_per_cpu_second=_median(
                    b["libraries"][library]["gflops_per_cpu_second"] for b in blocks),
            )
            for library in blocks[0]["libraries"]
        }
        peaks[precision] = dict(
            size=results[name]["size"], libraries=libraries,
            gflops=max(v["gflops"] for v in libraries.values()),
            gflops_per_cpu_second=max(v["gflops_per_cpu_second"] for v in libraries.values()))
    return peaks


def summarize_phase(blocks: list[dict], tokens_per_unit: int, flops_per_unit: int,
                    peak: dict | None) -> dict:
    """Medians of one contender's training or inference blocks, with its MFU."""
    rates = [tokens_per_unit * b["count"] / b["seconds"] for b in blocks]
    cpu_rates = [tokens_per_unit * b["count"] / b["cpu_seconds"] for b in blocks]
    summary = dict(
        tokens_per_second=round(_median(rates), 1),
        min_tokens_per_second=round(min(rates), 1),
        max_tokens_per_second=round(max(rates), 1),
        tokens_per_cpu_second=round(_median(cpu_rates), 1),
        ms_per_unit=round(_median(1000 * b["seconds"] / b["count"] for b in blocks), 1),
        loadavg_1min=round(_median(b["loadavg_1min"] for b in blocks), 2),
        gflops=round(_median(rates) * flops_per_unit / tokens_per_unit / 1e9, 1),
        gflops_per_cpu_second=round(_median(cpu_rates) * flops_per_unit / tokens_per_unit / 1e9, 1),
    )
    if peak:
        summary["mfu"] = round(summary["gflops"] / peak["gflops"], 4)
        summary["mfu_cpu"] = round(summary["gflops_per_cpu_second"] / peak["gflops_per_cpu_second"], 4)
    return summary


def summarize(results: dict, args) -> tuple[dict, dict]:
    """Adds ``train``/``infer``/``memory`` summaries to each contender; returns (peaks, flops)."""
    peaks = summarize_peaks(results)
    flops = forward_flops(args.batch_size, args.sequence_length, args.num_predictions)
    tokens = args.batch_size * args.sequence_length
    for name, entry in results.items():
        if name not in CONTENDERS or "error" in entry:
            continue
        peak = peaks.get(entry["precision"])
        if entry["train_blocks"]:
            entry["train"] = summarize_phase(entry["train_blocks"], tokens, 3 * flops["total"], peak)
            entry["train"]["all_losses_finite"] = all(b["finite"] for b in entry["train_blocks"])
        if entry["infer_blocks"]:
            entry["infer"] = summarize_phase(entry["infer_blocks"], tokens, flops["total"], peak)
        if "peak_rss_training_mb" in entry:
            entry["memory"] = dict(
                rss_before_build_mb=entry["rss_before_build_mb"],
                peak_rss_training_mb=entry["peak_rss_training_mb"],
                model_share_mb=round(entry["peak_rss_training_mb"] - entry["rss_before_build_mb"], 1),
                peak_rss_end_mb=entry.get("peak_rss_end_mb"))
    return peaks, flops


#: How each speed measure reads a block and a contender's summary.
MEASURES = {
    "wall": ("seconds", "tokens_per_second"),
    "cpu": ("cpu_seconds", "tokens_per_cpu_second"),
}


def _same_round_ratio(a: list[dict], b: list[dict], seconds_key: str) -> float | None:
    """Median over rounds of a's rate / b's rate in the same round."""
    by_round = {blk["round"]: blk["count"] / blk[seconds_key] for blk in b}
    ratios = [(blk["count"] / blk[seconds_key]) / by_round[blk["round"]]
              for blk in a if blk["round"] in by_round]
    return round(statistics.median(ratios), 3) if ratios else None


def _best(results: dict, names: list[str], phase: str, figure: str) -> str | None:
    ran = [n for n in names if phase in results.get(n, {})]
    return max(ran, key=lambda n: results[n][phase][figure]) if ran else None


def compute_ratios(results: dict) -> dict:
    """tfptlm's best vs the best peer per precision, phase and measure; tfptlm vs keras-hub memory.

    Each measure (wall-clock tokens/s, tokens per CPU-second) picks its own
    best configurations. Training rows carry the target and whether the median
    of same-round ratios meets it.
    """
    speed, memory = [], []
    for precision in ("float32", "mixed_bfloat16"):
        group = [n for n, s in CONTENDERS.items() if s["precision"] == precision]
        ours = [n for n in group if CONTENDERS[n]["impl"] == "tfptlm"]
        peers = [n for n in group if CONTENDERS[n]["impl"] != "tfptlm"]
        for phase in ("train", "infer"):
            for measure, (seconds_key, figure) in MEASURES.items():
                top, bottom = _best(results, ours, phase, figure), _best(results, peers, phase, figure)
                if not top or not bottom:
                    continue
                a, b = results[top], results[bottom]
                row = dict(
                    precision=precision, phase=phase, measure=measure, tfptlm=top, peer=bottom,
                    same_round_ratio=_same_round_ratio(a[f"{phase}_blocks"], b[f"{phase}_blocks"],
                                                       seconds_key),
                    ratio_of_medians=round(a[phase][figure] / b[phase][figure], 3))
                if phase == "train":
                    row["target"] = TARGET_SPEEDUP
                    row["met"] = (row["same_round_ratio"] is not None
                                  and row["same_round_ratio"] >= TARGET_SPEEDUP)
                speed.append(row)
        for suffix in ("", "-xla"):
            tag = "fp32" if precision == "float32" else "bf16"
            top, bottom = results.get(f"tfptlm-{tag}{suffix}", {}), results.get(f"kerashub-{tag}{suffix}", {})
            if "memory" not in top or "memory" not in bottom:
                continue
            peak_ratio = top["memory"]["peak_rss_training_mb"] / bottom["memory"]["peak_rss_training_mb"]
            memory.append(dict(
                tfptlm=f"tfptlm-{tag}{suffix}", peer=f"kerashub-{tag}{suffix}",
                peak_rss_ratio=round(peak_ratio, 3),
                model_share_ratio=round(top["memory"]["model_share_mb"] / bottom["memory"]["model_share_mb"], 3),
                met=peak_ratio <= 1.0))
    return dict(speed=speed, memory=memory)


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------


def select_contenders(patterns: str | None) -> list[str]:
    """Contender names matching the comma-separated names or shell patterns (all for None/'all')."""
    if not patterns or patterns == "all":
        return list(CONTENDERS)
    names = []
    for pattern in (p.strip() for p in patterns.split(",") if p.strip()):
        matched = fnmatch.filter(CONTENDERS, pattern)
        if not matched:
            raise SystemExit(f"--contenders: {pattern!r} matches none of {', '.join(CONTENDERS)}")
        names += [n for n in matched if n not in names]
    return [n for n in CONTENDERS if n in names]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contenders", default=None,
                        help=f"comma-separated names or shell patterns of: {', '.join(CONTENDERS)} "
                        "(default all)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: batch 4 x 32, 4 predictions, 2 warm-up steps, 1 round of "
                        "1 step and 1 inference call, 512 x 512 products; writes peers_quick.*")
    help_texts = dict(
        steps="training steps per timed block", rounds="interleaved rounds (training, then inference)",
        warmup="untimed warm-up training steps (the first traces/compiles; PyTorch needs a "
        "few before its allocations settle)",
        infer_calls="forward passes per timed inference block",
        infer_warmup="untimed forward passes before the first inference block",
        batch_size="sequences per batch", sequence_length="tokens per sequence",
        num_predictions="masked positions per sequence",
        matmul_size="n of the n x n matrix products of the peak",
        matmul_reps="products per library in a peak block (median taken)")
    for key, default in DEFAULTS.items():
        parser.add_argument("--" + key.replace("_", "-"), type=int, default=None,
                            help=f"{help_texts[key]} (default {default}, --quick {QUICK[key]})")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--output-stem", default=None,
                        help="result file name without extension (default peers, peers_quick with --quick)")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.output_stem is None:
        args.output_stem = "peers_quick" if args.quick else "peers"
    return args


def torch_missing() -> str | None:
    """Why the PyTorch contenders cannot run here, or None."""
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        return (f"The HF transformers (PyTorch) contenders were skipped: {' and '.join(missing)} "
                "not installed (`pip install -e .[peers]`).")
    return None


def contention_notes(results: dict) -> list[str]:
    """A warning when other processes loaded the machine during the timed blocks."""
    loads = [b["loadavg_1min"] for entry in results.values()
             for key in ("train_blocks", "infer_blocks") for b in entry.get(key) or []]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if not loads or max(loads) <= cpus + 1:
        return []
    return [f"The machine was shared during the timed blocks (1-minute load {min(loads):.1f} to "
            f"{max(loads):.1f} on {cpus} CPUs): wall-clock figures (tokens/s, MFU, same-round "
            "ratios) are depressed and noisy; the per-CPU-second figures and their verdicts "
            "depend much less on that load."]


def peer_versions() -> dict:
    from importlib import metadata

    versions = {}
    for package in ("torch", "transformers"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def main(argv=None) -> None:
    args = parse_args(argv)
    names = select_contenders(args.contenders)
    notes = []
    skipped = torch_missing()
    if skipped and any(CONTENDERS[n]["impl"] == "torch" for n in names):
        notes.append(skipped)
        names = [n for n in names if CONTENDERS[n]["impl"] != "torch"]
    if not names:
        raise SystemExit(" ".join(notes) or "peers.py: no contender selected")
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(CONTENDERS[name]["precision"], []).append(name)

    log_dir = args.output_dir / f"{args.output_stem}_logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    stopwatch = Stopwatch()
    results: dict = {}
    md_path = None
    for index, (precision, group) in enumerate(groups.items()):
        stopwatch.log(f"group {precision}: {', '.join(group)}")
        run_group(precision, group, args, log_dir, results, stopwatch)
        peaks, flops = summarize(results, args)
        report = dict(
            settings=worker_settings(args), model=MODEL, contenders={n: CONTENDERS[n] for n in names},
            peer_versions=peer_versions(), flops_per_forward=flops,
            flops_per_training_step=3 * flops["total"], matmul_peaks=peaks,
            ratios=compute_ratios(results), notes=notes + contention_notes(results),
            results=results)
        md_path = write_report(
            args.output_stem, "BERT pretraining against its peers: tfptlm, keras-hub, HF transformers",
            report, markdown_body(report, CONTENDERS, LIBRARIES), stopwatch, args.output_dir,
            complete=index == len(groups) - 1)
        stopwatch.log(f"wrote {md_path}")
    if md_path is not None:
        print(md_path.read_text())


if __name__ == "__main__":
    main()
