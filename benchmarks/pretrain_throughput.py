"""BERT pretraining throughput: tfptlm against keras-hub on the same workload.

Measures training tokens per second (batch x sequence length x steps / seconds)
of MLM + NSP pretraining for BERT ``small`` (4 layers, hidden 512, 8 heads,
intermediate 2048, vocabulary 30,522) on a fixed synthetic batch (32 x 128,
20 masked positions per sequence) that is identical for every contender.

Contenders (each in its own worker process, since the dtype policy is global):

=====================  ============================================  =========  ====
name                   model                                         precision  XLA
=====================  ============================================  =========  ====
tfptlm-fp32            ``tfptlm`` BertBackbone + BertPretrainer      float32    no
tfptlm-fp32-xla        same                                          float32    yes
kerashub-fp32          ``keras_hub`` BertBackbone + MaskedLMHead     float32    no
                       + Dense(2) NSP head
kerashub-fp32-xla      same                                          float32    yes
tfptlm-bf16            as tfptlm-fp32                                mixed bf16 no
tfptlm-bf16-xla        as tfptlm-fp32                                mixed bf16 yes
kerashub-bf16          as kerashub-fp32                              mixed bf16 no
kerashub-bf16-xla      as kerashub-fp32                              mixed bf16 yes
=====================  ============================================  =========  ====

Both models use the same losses (sparse categorical cross-entropy from logits,
MLM weighted by the mask weights and averaged over real predictions, plus NSP),
the same weighted/unweighted accuracy metrics, the same AdamW optimizer from
``tfptlm.training.optimizer.create_optimizer`` and dropout 0.1, and are trained
with ``model.fit(dataset, steps_per_epoch=N, epochs=1, verbose=0)``.

Method: the parent starts one persistent worker per contender (one at a time,
so model building and the warm-up steps, which include tracing and XLA
compilation, do not overlap). Each worker builds its model and runs the warm-up
steps, then waits. The parent then runs ``--rounds`` round-robin passes; in each
pass every worker, one after the other (the order rotates every round), runs one
timed block of ``--steps`` steps while the others sit idle. Interleaving keeps
the comparison fair when the machine's load drifts. The figure per contender is
the median over its blocks; each block also records the worker's CPU time, and
tokens per CPU-second is a second figure that depends much less on other load
on the machine. float32 and bfloat16 contenders form two groups
that run one after the other (to bound memory: at most one group is alive), so
tfptlm / keras-hub ratios are always taken between interleaved runs.

Usage::

    python benchmarks/pretrain_throughput.py              # full run (fp32 + bf16)
    python benchmarks/pretrain_throughput.py --no-bf16    # float32 only
    python benchmarks/pretrain_throughput.py --quick      # smoke run, tiny batch,
                                                          # tfptlm-fp32 + kerashub-fp32
    python benchmarks/pretrain_throughput.py --contenders tfptlm-fp32,kerashub-fp32 \
        --steps 5 --rounds 4

Results go to ``benchmarks/results/pretrain_throughput.{json,md}`` (``--quick``
writes ``pretrain_throughput_quick.*``; ``--output-stem`` changes the name),
rewritten after each precision group so that an interrupted run keeps its
first group; workers' stderr goes to ``<stem>_logs/<contender>.log``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results_io import cpu_and_memory

HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS_DIR = HERE / "results"
PROTOCOL_PREFIX = "@@BENCH "

#: BERT small (Turc et al. 2019), as ``BertBackbone.from_size("small")``.
MODEL = dict(
    vocabulary_size=30522,
    num_layers=4,
    num_heads=8,
    hidden_dim=512,
    intermediate_dim=2048,
    max_sequence_length=512,
)

CONTENDERS = {
    "tfptlm-fp32": dict(impl="tfptlm", precision="float32", jit_compile=False),
    "tfptlm-fp32-xla": dict(impl="tfptlm", precision="float32", jit_compile=True),
    "kerashub-fp32": dict(impl="kerashub", precision="float32", jit_compile=False),
    "kerashub-fp32-xla": dict(impl="kerashub", precision="float32", jit_compile=True),
    "tfptlm-bf16": dict(impl="tfptlm", precision="mixed_bfloat16", jit_compile=False),
    "tfptlm-bf16-xla": dict(impl="tfptlm", precision="mixed_bfloat16", jit_compile=True),
    "kerashub-bf16": dict(impl="kerashub", precision="mixed_bfloat16", jit_compile=False),
    "kerashub-bf16-xla": dict(
        impl="kerashub", precision="mixed_bfloat16", jit_compile=True
    ),
}

#: (label, numerator, denominator) ratios reported when both contenders ran.
RATIOS = [
    ("tfptlm / keras-hub, float32, no XLA", "tfptlm-fp32", "kerashub-fp32"),
    ("tfptlm / keras-hub, float32, XLA", "tfptlm-fp32-xla", "kerashub-fp32-xla"),
    ("tfptlm / keras-hub, mixed bf16, no XLA", "tfptlm-bf16", "kerashub-bf16"),
    ("tfptlm / keras-hub, mixed bf16, XLA", "tfptlm-bf16-xla", "kerashub-bf16-xla"),
    ("tfptlm XLA / no XLA, float32", "tfptlm-fp32-xla", "tfptlm-fp32"),
    ("tfptlm XLA / no XLA, mixed bf16", "tfptlm-bf16-xla", "tfptlm-bf16"),
    ("keras-hub XLA / no XLA, float32", "kerashub-fp32-xla", "kerashub-fp32"),
    ("keras-hub XLA / no XLA, mixed bf16", "kerashub-bf16-xla", "kerashub-bf16"),
    ("tfptlm bf16 / fp32, no XLA", "tfptlm-bf16", "tfptlm-fp32"),
    ("keras-hub bf16 / fp32, no XLA", "kerashub-bf16", "kerashub-fp32"),
]


# ----------------------------------------------------------------------------
# Worker side
# ----------------------------------------------------------------------------


def _emit(kind: str, payload: dict) -> None:
    sys.stdout.write(PROTOCOL_PREFIX + kind + " " + json.dumps(payload) + "\n")
    sys.stdout.flush()


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":
        rss /= 1024
    return round(rss / 1024, 1)


def make_batch(batch_size: int, sequence_length: int, num_predictions: int, seed: int = 1234):
    """A fixed synthetic pretraining batch (numpy), identical for every contender.

    Token ids are uniform over the vocabulary minus the first 5 (special) ids,
    with [CLS]=2 first and [SEP]=3 closing each of the two segments; every
    sequence is full length (no padding). ``num_predictions`` distinct positions
    per sequence (never the first token) are "masked": their original ids are
    the MLM labels, the inputs there become [MASK]=4, and all weights are 1.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    vocab = MODEL["vocabulary_size"]
    token_ids = rng.integers(5, vocab, size=(batch_size, sequence_length), dtype=np.int32)
    half = sequence_length // 2
    token_ids[:, 0] = 2
    token_ids[:, half - 1] = 3
    token_ids[:, -1] = 3
    segment_ids = np.zeros((batch_size, sequence_length), np.int32)
    segment_ids[:, half:] = 1
    padding_mask = np.ones((batch_size, sequence_length), np.int32)
    mask_positions = np.stack(
        [
            np.sort(rng.choice(np.arange(1, sequence_length), num_predictions, replace=False))
            for _ in range(batch_size)
        ]
    ).astype(np.int32)
    mlm_labels = np.take_along_axis(token_ids, mask_positions, axis=1).astype(np.int32)
    np.put_along_axis(token_ids, mask_positions, 4, axis=1)
    mlm_weights = np.ones((batch_size, num_predictions), np.float32)
    nsp_labels = rng.integers(0, 2, size=(batch_size,), dtype=np.int32)
    x = {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "padding_mask": padding_mask,
        "mask_positions": mask_positions,
    }
    y = {"mlm": mlm_labels, "nsp": nsp_labels}
    sample_weight = {"mlm": mlm_weights, "nsp": np.ones((batch_size,), np.float32)}
    return x, y, sample_weight


def _losses_and_metrics():
    """The losses and metrics of ``BertPretrainer.compile``'s defaults."""
    import keras

    return dict(
        loss={
            "mlm": keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, reduction="mean_with_sample_weight"
            ),
            "nsp": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        },
        weighted_metrics={"mlm": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]},
        metrics={"nsp": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]},
    )


def _optimizer():
    from tfptlm.training.optimizer import create_optimizer

    return create_optimizer(
        learning_rate=1e-4,
        total_steps=100_000,
        warmup_steps=1_000,
        weight_decay=0.01,
        clip_norm=1.0,
    )


def build_tfptlm(jit_compile: bool):
    from tfptlm.models.bert import BertBackbone
    from tfptlm.tasks.bert_pretrainer import BertPretrainer

    backbone = BertBackbone.from_size("small", vocabulary_size=MODEL["vocabulary_size"])
    for key in ("num_layers", "num_heads", "hidden_dim", "intermediate_dim"):
        assert getattr(backbone, key) == MODEL[key], (key, getattr(backbone, key))
    model = BertPretrainer(backbone)
    # BertPretrainer.compile sets the MLM + NSP losses and metrics itself.
    model.compile(optimizer=_optimizer(), jit_compile=jit_compile)
    return model


def build_kerashub(jit_compile: bool):
    import keras
    import keras_hub

    backbone = keras_hub.models.BertBackbone(**MODEL)  # dropout 0.1 by default
    inputs = {
        name: keras.Input(shape=(None,), dtype="int32", name=name)
        for name in ("token_ids", "segment_ids", "padding_mask", "mask_positions")
    }
    features = backbone(
        {name: inputs[name] for name in ("token_ids", "segment_ids", "padding_mask")}
    )
    # As in keras_hub.models.BertMaskedLM: GELU transform, tied output weights.
    # (The head's `activation` would act on the logits; the losses take logits.)
    mlm_head = keras_hub.layers.MaskedLMHead(
        vocabulary_size=MODEL["vocabulary_size"],
        token_embedding=backbone.token_embedding,
        intermediate_activation="gelu",
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        dtype=backbone.dtype_policy,
        name="mlm_head",
    )
    nsp_head = keras.layers.Dense(
        2,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        dtype="float32",
        name="nsp_head",
    )
    outputs = {
        "mlm": mlm_head(features["sequence_output"], mask_positions=inputs["mask_positions"]),
        "nsp": nsp_head(features["pooled_output"]),
    }
    model = keras.Model(inputs=inputs, outputs=outputs, name="kerashub_bert_pretrainer")
    model.compile(optimizer=_optimizer(), jit_compile=jit_compile, **_losses_and_metrics())
    return model


def run_worker(args) -> None:
    spec = CONTENDERS[args.worker]
    import numpy as np
    import tensorflow as tf
    import keras

    from tfptlm.training.runtime import set_precision

    set_precision(spec["precision"])
    keras.utils.set_random_seed(0)

    start = time.perf_counter()
    if spec["impl"] == "tfptlm":
        model = build_tfptlm(spec["jit_compile"])
    else:
        model = build_kerashub(spec["jit_compile"])
    build_seconds = time.perf_counter() - start

    x, y, sample_weight = make_batch(args.batch_size, args.sequence_length, args.num_predictions)
    dataset = tf.data.Dataset.from_tensors((x, y, sample_weight)).repeat()

    def run_steps(steps: int) -> tuple[float, float, dict]:
        begin, begin_cpu = time.perf_counter(), time.process_time()
        history = model.fit(
            dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False
        )
        seconds = time.perf_counter() - begin
        cpu_seconds = time.process_time() - begin_cpu
        logs = {k: float(v[-1]) for k, v in history.history.items()}
        return seconds, cpu_seconds, logs

    warmup_seconds, _, warmup_logs = run_steps(args.warmup)
    _emit(
        "READY",
        dict(
            name=args.worker,
            build_seconds=round(build_seconds, 2),
            warmup_steps=args.warmup,
            warmup_seconds=round(warmup_seconds, 2),
            warmup_logs=warmup_logs,
            parameters=int(model.count_params()),
            jit_compile=bool(model.jit_compile),
            dtype_policy=keras.mixed_precision.global_policy().name,
            peak_rss_mb=_peak_rss_mb(),
        ),
    )

    tokens_per_step = args.batch_size * args.sequence_length
    for line in sys.stdin:
        command = line.split()
        if not command:
            continue
        if command[0] == "RUN":
            steps = int(command[1])
            load_before = os.getloadavg()[0]
            seconds, cpu_seconds, logs = run_steps(steps)
            _emit(
                "BLOCK",
                dict(
                    steps=steps,
                    seconds=round(seconds, 4),
                    cpu_seconds=round(cpu_seconds, 4),
                    tokens_per_second=round(tokens_per_step * steps / seconds, 2),
                    tokens_per_cpu_second=round(tokens_per_step * steps / cpu_seconds, 2),
                    step_ms=round(1000 * seconds / steps, 2),
                    loss=logs.get("loss"),
                    finite=bool(np.isfinite(logs.get("loss", np.nan))),
                    loadavg_1min=round(load_before, 2),
                ),
            )
        elif command[0] == "EXIT":
            break
    _emit("DONE", dict(peak_rss_mb=_peak_rss_mb()))


# ----------------------------------------------------------------------------
# Parent side
# ----------------------------------------------------------------------------


class Worker:
    """A persistent contender process driven over a line protocol on stdin/stdout."""

    def __init__(self, name: str, args, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "w")
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env.setdefault("PYTHONUNBUFFERED", "1")
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            name,
            "--batch-size",
            str(args.batch_size),
            "--sequence-length",
            str(args.sequence_length),
            "--num-predictions",
            str(args.num_predictions),
            "--warmup",
            str(args.warmup),
        ]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            env=env,
        )

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
        raise RuntimeError(f"{self.name} exited with code {code}; log tail:\n{tail}")

    def send(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def close(self) -> dict:
        try:
            self.send("EXIT")
            done = self.receive("DONE")
        finally:
            try:
                self.process.stdin.close()
            except OSError:
                pass
            self.process.wait(timeout=120)
            self._log.close()
        return done

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


def _log(message: str) -> None:
    stamp = datetime.datetime.now().strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


def run_group(names: list[str], args, log_dir: Path, results: dict) -> None:
    workers: list[Worker] = []
    try:
        for name in names:
            _log(f"starting {name}")
            worker = Worker(name, args, log_dir)
            try:
                ready = worker.receive("READY")
            except Exception as error:  # noqa: BLE001 - report and go on
                _log(f"{name} failed: {error}")
                results[name] = dict(CONTENDERS[name], error=str(error)[-2000:])
                worker.kill()
                continue
            _log(
                f"{name} ready: build {ready['build_seconds']}s, "
                f"{ready['warmup_steps']} warm-up steps {ready['warmup_seconds']}s, "
                f"loss {ready['warmup_logs'].get('loss')}"
            )
            results[name] = dict(CONTENDERS[name], **ready, blocks=[], rounds=[])
            workers.append(worker)
        for round_index in range(args.rounds):
            shift = round_index % max(len(workers), 1)
            order = workers[shift:] + workers[:shift]
            for worker in order:
                worker.send(f"RUN {args.steps}")
                block = worker.receive("BLOCK")
                block["round"] = round_index
                results[worker.name]["blocks"].append(block)
                _log(
                    f"round {round_index + 1}/{args.rounds} {worker.name}: "
                    f"{block['tokens_per_second']:.0f} tokens/s "
                    f"({block['step_ms']:.0f} ms/step, load {block['loadavg_1min']})"
                )
        for worker in workers:
            done = worker.close()
            results[worker.name]["peak_rss_mb"] = done["peak_rss_mb"]
    finally:
        for worker in workers:
            worker.kill()


def summarize(results: dict) -> None:
    for entry in results.values():
        blocks = entry.get("blocks") or []
        if not blocks:
            continue
        rates = [b["tokens_per_second"] for b in blocks]
        entry["median_tokens_per_second"] = round(statistics.median(rates), 1)
        entry["min_tokens_per_second"] = round(min(rates), 1)
        entry["max_tokens_per_second"] = round(max(rates), 1)
        entry["median_step_ms"] = round(statistics.median(b["step_ms"] for b in blocks), 1)
        entry["median_tokens_per_cpu_second"] = round(
            statistics.median(b["tokens_per_cpu_second"] for b in blocks), 1
        )
        entry["median_loadavg_1min"] = round(
            statistics.median(b["loadavg_1min"] for b in blocks), 2
        )
        entry["all_losses_finite"] = all(b["finite"] for b in blocks)


def compute_ratios(results: dict) -> list[dict]:
    ratios = []
    for label, top, bottom in RATIOS:
        a, b = results.get(top, {}), results.get(bottom, {})
        if "median_tokens_per_second" not in a or "median_tokens_per_second" not in b:
            continue
        # Also the median of per-round ratios (pairs of blocks from the same round).
        by_round_b = {blk["round"]: blk["tokens_per_second"] for blk in b["blocks"]}
        paired = [
            blk["tokens_per_second"] / by_round_b[blk["round"]]
            for blk in a["blocks"]
            if blk["round"] in by_round_b
        ]
        same_group = a["precision"] == b["precision"]
        ratios.append(
            dict(
                label=label,
                numerator=top,
                denominator=bottom,
                ratio_of_medians=round(
                    a["median_tokens_per_second"] / b["median_tokens_per_second"], 3
                ),
                cpu_time_ratio_of_medians=round(
                    a["median_tokens_per_cpu_second"] / b["median_tokens_per_cpu_second"], 3
                ),
                median_paired_ratio=(
                    round(statistics.median(paired), 3) if paired and same_group else None
                ),
            )
        )
    return ratios


def machine_info() -> dict:
    cpu_model, affinity, memory_gb = cpu_and_memory()
    return dict(
        platform=platform.platform(),
        python=platform.python_version(),
        cpu_model=cpu_model,
        cpu_count=os.cpu_count(),
        usable_cpus=affinity,
        memory_gb=memory_gb,
    )


def package_versions() -> dict:
    from importlib import metadata

    versions = {}
    for package in ("tensorflow", "keras", "keras-hub", "tfptlm", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _fmt(value, digits=0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def write_markdown(report: dict, path: Path) -> None:
    cfg = report["config"]
    lines = [
        "# BERT pretraining throughput: tfptlm vs keras-hub",
        "",
        f"- Command: `{report['command']}`",
        f"- Date (UTC): {report['date']}",
        f"- Machine: {report['machine']['cpu_model']}, {report['machine']['cpu_count']} CPUs "
        f"({report['machine']['usable_cpus']} usable), {report['machine']['memory_gb']} GB; "
        f"{report['machine']['platform']}, Python {report['machine']['python']}",
        "- Versions: "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
        f"- Workload: BERT small (4 layers, hidden 512, 8 heads, intermediate 2048, "
        f"vocabulary 30,522), batch {cfg['batch_size']} x sequence {cfg['sequence_length']}, "
        f"{cfg['num_predictions']} masked positions per sequence, MLM + NSP, AdamW, "
        f"dropout 0.1, synthetic fixed batch",
        f"- Method: {cfg['warmup']} warm-up steps (not timed), then {cfg['rounds']} "
        f"interleaved rounds of one {cfg['steps']}-step `model.fit` block per contender; "
        "figure = median over blocks",
        f"- Total wall time: {report['wall_seconds'] / 60:.1f} min"
        + ("" if report["complete"] else " (partial results: the run did not finish)"),
        "",
        "| contender | precision | XLA | median tokens/s | min – max | ms/step | "
        "tokens per CPU-s | load | build s | warm-up s | peak RSS MB |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, entry in report["results"].items():
        if "error" in entry:
            lines.append(
                f"| {name} | {entry['precision']} | {'yes' if entry['jit_compile'] else 'no'} "
                f"| failed | | | | | | | |"
            )
            continue
        lines.append(
            f"| {name} | {entry['precision']} | {'yes' if entry['jit_compile'] else 'no'} | "
            f"{_fmt(entry.get('median_tokens_per_second'))} | "
            f"{_fmt(entry.get('min_tokens_per_second'))} – "
            f"{_fmt(entry.get('max_tokens_per_second'))} | "
            f"{_fmt(entry.get('median_step_ms'))} | "
            f"{_fmt(entry.get('median_tokens_per_cpu_second'))} | "
            f"{_fmt(entry.get('median_loadavg_1min'), 1)} | "
            f"{_fmt(entry.get('build_seconds'), 1)} | "
            f"{_fmt(entry.get('warmup_seconds'), 1)} | {_fmt(entry.get('peak_rss_mb'))} |"
        )
    lines += [
        "",
        "| ratio (tokens/s) | ratio of medians | median of same-round ratios | "
        "ratio of tokens per CPU-s |",
        "| --- | ---: | ---: | ---: |",
    ]
    for ratio in report["ratios"]:
        lines.append(
            f"| {ratio['label']} | {ratio['ratio_of_medians']:.3f} | "
            f"{_fmt(ratio['median_paired_ratio'], 3)} | "
            f"{ratio['cpu_time_ratio_of_medians']:.3f} |"
        )
    lines += [
        "",
        "`load`: median 1-minute load average of the machine when the contender's "
        "blocks started (this benchmark itself adds about 1 to 2).",
    ]
    if report.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {note}" for note in report["notes"]]
    path.write_text("\n".join(lines) + "\n")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=None, help="steps per timed block (default 2)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 4)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed warm-up steps, the first one traces/compiles (default 2)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 32")
    parser.add_argument("--sequence-length", type=int, default=None, help="default 128")
    parser.add_argument("--num-predictions", type=int, default=None, help="default 20")
    parser.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the mixed_bfloat16 contenders (default on)",
    )
    parser.add_argument(
        "--bf16-xla",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="include the mixed_bfloat16 XLA contenders when --bf16 (default on)",
    )
    parser.add_argument(
        "--contenders",
        default=None,
        help=f"comma-separated subset of: {', '.join(CONTENDERS)}, or 'all' "
        "(overrides --bf16)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: batch 4 x 32, 4 predictions, 1 warm-up step, 1 round of 1 step, "
        "only tfptlm-fp32 and kerashub-fp32 unless --contenders is given",
    )
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_RESULTS_DIR)
    parser.add_argument(
        "--output-stem",
        default=None,
        help="result file name without extension (default pretrain_throughput, "
        "pretrain_throughput_quick with --quick)",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    defaults = dict(steps=2, rounds=4, warmup=2, batch_size=32, sequence_length=128, num_predictions=20)
    if args.quick:
        defaults = dict(steps=1, rounds=1, warmup=1, batch_size=4, sequence_length=32, num_predictions=4)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.output_stem is None:
        args.output_stem = "pretrain_throughput_quick" if args.quick else "pretrain_throughput"
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return

    if args.contenders == "all":
        names = list(CONTENDERS)
    elif args.quick and not args.contenders:
        names = ["tfptlm-fp32", "kerashub-fp32"]
    elif args.contenders:
        names = [n.strip() for n in args.contenders.split(",") if n.strip()]
        unknown = [n for n in names if n not in CONTENDERS]
        if unknown:
            raise SystemExit(f"unknown contenders: {unknown}; choose from {list(CONTENDERS)}")
    else:
        names = [n for n, spec in CONTENDERS.items() if spec["precision"] == "float32"]
        if args.bf16:
            names += [
                n
                for n, spec in CONTENDERS.items()
                if spec["precision"] != "float32" and (args.bf16_xla or not spec["jit_compile"])
            ]
    groups = {}
    for name in names:
        groups.setdefault(CONTENDERS[name]["precision"], []).append(name)

    args.output_dir.mkdir(parents=True, exist_ok=True)
    log_dir = args.output_dir / f"{args.output_stem}_logs"
    log_dir.mkdir(exist_ok=True)

    start = time.perf_counter()
    results: dict = {}
    for index, (precision, group) in enumerate(groups.items()):
        _log(f"group {precision}: {', '.join(group)}")
        run_group(group, args, log_dir, results)
        # Written after every group, so an interrupted run keeps what it measured.
        complete = index == len(groups) - 1
        md_path = write_report(args, results, time.perf_counter() - start, complete)
    print(md_path.read_text())


def contention_notes(results: dict) -> list[str]:
    """A warning when other processes loaded the machine during the timed blocks."""
    loads = [b["loadavg_1min"] for e in results.values() for b in e.get("blocks") or []]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if not loads or max(loads) <= cpus + 1:
        return []
    return [
        f"The machine was shared during the run (1-minute load average {min(loads):.1f} "
        f"to {max(loads):.1f} on {cpus} CPUs): the wall-clock figures (tokens/s) are "
        "unreliable; compare tokens per CPU-second and its ratios."
    ]


def write_report(args, results: dict, wall_seconds: float, complete: bool) -> Path:
    """Writes ``<stem>.json`` and ``<stem>.md``; returns the Markdown path."""
    summarize(results)
    try:
        command_path = Path(__file__).resolve().relative_to(Path.cwd())
    except ValueError:
        command_path = Path(__file__).resolve()
    report = dict(
        command=" ".join(["python", str(command_path)] + sys.argv[1:]),
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        complete=complete,
        machine=machine_info(),
        versions=package_versions(),
        config=dict(
            model=MODEL,
            batch_size=args.batch_size,
            sequence_length=args.sequence_length,
            num_predictions=args.num_predictions,
            tokens_per_step=args.batch_size * args.sequence_length,
            warmup=args.warmup,
            steps=args.steps,
            rounds=args.rounds,
            method="persistent worker per contender; fit(steps_per_epoch=steps) blocks "
            "interleaved round-robin within each precision group",
        ),
        wall_seconds=round(wall_seconds, 1),
        results=results,
        ratios=compute_ratios(results),
        notes=[
            "keras-hub's BertBackbone uses the tanh approximation of GELU in its "
            "feed-forward layers; tfptlm's uses the exact (erf) GELU.",
            "keras-hub's tied MLM projection (ReversibleEmbedding, reverse_dtype float32) "
            "computes the logits in float32 under mixed precision; tfptlm's in bfloat16.",
            "Ratios between precision groups (bf16 / fp32) compare runs that were not "
            "interleaved, so they are less robust to load drift than the others.",
            "Tokens per CPU-second (process CPU time of the worker, all threads) is less "
            "sensitive than wall time to other processes on the machine; with no other "
            "load it is about tokens/s divided by the number of cores used.",
        ],
    )
    report["notes"] += contention_notes(results)
    json_path = args.output_dir / f"{args.output_stem}.json"
    md_path = args.output_dir / f"{args.output_stem}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    write_markdown(report, md_path)
    state = "" if complete else " (partial)"
    _log(f"wrote {json_path} and {md_path}{state} ({wall_seconds / 60:.1f} min)")
    return md_path


if __name__ == "__main__":
    main()
