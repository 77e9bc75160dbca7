"""The Markdown body of ``benchmarks/peers.py``'s report (the common header comes from ``results_io``).

Example::

    body = markdown_body(report, CONTENDERS, LIBRARIES)  # list of Markdown lines
"""

from __future__ import annotations

from results_io import fmt

PRECISION_LABELS = {"float32": "float32", "mixed_bfloat16": "mixed bf16"}
MEASURE_LABELS = {"wall": "tokens/s", "cpu": "tokens per CPU-s"}


def _verdict(met: bool | None) -> str:
    return "–" if met is None else ("**met**" if met else "**NOT met**")


def _mb(value) -> str:
    return fmt(value, 0)


def target_lines(report: dict) -> list[str]:
    """The headline: tfptlm vs the best peer per precision, and vs keras-hub memory, with the targets."""
    ratios = report["ratios"]
    lines = [
        "## Targets",
        "",
        "Speed: tfptlm's fastest configuration (with or without XLA) over the fastest peer "
        "configuration of the same precision, once by wall-clock tokens/s and once by tokens per "
        "CPU-second (each measure picks its own fastest). Ratio = median over rounds of the "
        "same-round ratio (blocks run back to back, so load that drifts between rounds cancels); "
        "the ratio of the overall medians is given too. Read the CPU-second rows when the "
        "machine is shared (see the load above).",
        "",
        "| figure | precision | measure | tfptlm | best peer | ratio (same round) | ratio of medians "
        "| target | verdict |",
        "| --- | --- | --- | --- | --- | ---: | ---: | --- | --- |",
    ]
    for row in ratios["speed"]:
        training = row["phase"] == "train"
        lines.append(
            f"| {'training' if training else 'inference'} | {PRECISION_LABELS[row['precision']]} | "
            f"{MEASURE_LABELS[row['measure']]} | {row['tfptlm']} | {row['peer']} | "
            f"**{fmt(row['same_round_ratio'])}** | {fmt(row['ratio_of_medians'])} | "
            f"{'>= ' + fmt(row['target'], 2) if training else '–'} | {_verdict(row.get('met'))} |")
    lines += [
        "",
        "| figure | tfptlm | keras-hub | tfptlm / keras-hub peak RSS | tfptlm / keras-hub model "
        "share | target | verdict |",
        "| --- | --- | --- | ---: | ---: | --- | --- |",
    ]
    for row in ratios["memory"]:
        lines.append(
            f"| peak training memory | {row['tfptlm']} | {row['peer']} | **{fmt(row['peak_rss_ratio'])}** | "
            f"{fmt(row['model_share_ratio'])} | <= 1 | {_verdict(row['met'])} |")
    return lines + [""]


def speed_table(report: dict, contenders: dict, libraries: dict, phase: str) -> list[str]:
    """Training or inference figures per contender."""
    results = report["results"]
    unit = "step" if phase == "train" else "call"
    header = (f"| contender | library | precision | XLA | median tokens/s | min – max | tokens per CPU-s | "
              f"ms/{unit} | GFLOP/s | MFU | MFU per CPU-s | load |")
    lines = [header, ("| --- | --- | --- | --- | " + "---: | " * 8).rstrip()]
    if phase == "train":
        lines[0] += " build s | warm-up s | last loss |"
        lines[1] += " ---: | ---: | ---: |"
    for name, spec in contenders.items():
        entry = results.get(name)
        if entry is None:
            continue
        cells = [name, libraries[spec["impl"]], PRECISION_LABELS[spec["precision"]],
                 "yes" if spec["jit_compile"] else "no"]
        if "error" in entry:
            lines.append("| " + " | ".join(cells + ["failed (see the JSON and the log)"]) + " |")
            continue
        figures = entry.get(phase)
        if not figures:
            continue
        cells += [
            fmt(figures["tokens_per_second"], 0),
            f"{fmt(figures['min_tokens_per_second'], 0)} – {fmt(figures['max_tokens_per_second'], 0)}",
            fmt(figures["tokens_per_cpu_second"], 0), fmt(figures["ms_per_unit"], 0),
            fmt(figures["gflops"], 1),
            fmt(100 * figures["mfu"], 1) + " %" if "mfu" in figures else "–",
            fmt(100 * figures["mfu_cpu"], 1) + " %" if "mfu_cpu" in figures else "–",
            fmt(figures["loadavg_1min"], 1),
        ]
        if phase == "train":
            cells += [fmt(entry["build_seconds"], 1), fmt(entry["warmup_seconds"], 1),
                      fmt(entry["train_blocks"][-1]["loss"], 3)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def memory_table(report: dict, contenders: dict) -> list[str]:
    lines = [
        "| contender | parameters | RSS before the model, MB | peak RSS after training, MB | "
        "model's share, MB | peak RSS at the end (after inference), MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in contenders:
        entry = report["results"].get(name, {})
        memory = entry.get("memory")
        if memory:
            lines.append(
                f"| {name} | {fmt(entry['parameters'])} | {_mb(memory['rss_before_build_mb'])} | "
                f"{_mb(memory['peak_rss_training_mb'])} | {_mb(memory['model_share_mb'])} | "
                f"{_mb(memory['peak_rss_end_mb'])} |")
    return lines + [""]


def peak_table(report: dict) -> list[str]:
    lines = [
        "| precision | n | library | median GFLOP/s | median GFLOP per CPU-s |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for precision, peak in report["matmul_peaks"].items():
        for library, figures in peak["libraries"].items():
            best = figures["gflops"] == peak["gflops"]
            best_cpu = figures["gflops_per_cpu_second"] == peak["gflops_per_cpu_second"]
            wall = fmt(figures["gflops"], 1)
            cpu = fmt(figures["gflops_per_cpu_second"], 1)
            lines.append(
                f"| {PRECISION_LABELS[precision]} | {peak['size']:,} | {library} | "
                f"{'**' + wall + '**' if best else wall} | {'**' + cpu + '**' if best_cpu else cpu} |")
    return lines + ["", "Bold: the peak used for MFU (the best library, wall time and per CPU-second "
                    "separately).", ""]


def method_lines(report: dict) -> list[str]:
    settings, model, flops = report["settings"], report["model"], report["flops_per_forward"]
    step = report["flops_per_training_step"]
    tokens = settings["batch_size"] * settings["sequence_length"]
    versions = ", ".join(f"{k} {v}" for k, v in report["peer_versions"].items() if v)
    counted = [(n, e["counted_training_flops"]) for n, e in report["results"].items()
               if "counted_training_flops" in e]
    lines = [
        f"- Peer versions: {versions or 'torch / transformers not installed'}",
        f"- Workload: BERT small ({model['num_layers']} layers, hidden {model['hidden_dim']}, "
        f"{model['num_heads']} heads, intermediate {model['intermediate_dim']}, vocabulary "
        f"{model['vocabulary_size']:,}, dropout 0.1), batch {settings['batch_size']} x "
        f"{settings['sequence_length']} tokens, {settings['num_predictions']} masked positions per "
        "sequence (MLM logits only there), MLM + NSP, AdamW, one synthetic batch identical for all "
        "contenders; each contender in its own process.",
        f"- Method: {settings['warmup']} untimed warm-up training steps per contender; then "
        f"{settings['rounds']} interleaved rounds (order rotated each round) of one "
        f"{settings['steps']}-step training block per contender and one block of "
        f"{settings['matmul_reps']} {settings['matmul_size']:,}^2 matrix products (the peak); then "
        f"{settings['rounds']} rounds of one {settings['infer_calls']}-call inference block each "
        f"({settings['infer_warmup']} untimed warm-up call first). Figures: medians over blocks. "
        "float32 and bfloat16 groups ran one after the other.",
        "- FLOPs (matrix products; B batch, T length, P predictions, L layers, H hidden, "
        "I intermediate, V vocabulary): forward = B x [L x T x (2(4H^2 + 2HI) + 4TH) + "
        "2P(H^2 + HV) + 2H^2 + 4H]; training = 3 x forward. Per forward pass here: encoder "
        f"projections {flops['encoder_projections'] / 1e9:.2f} G, attention products "
        f"{flops['attention_products'] / 1e9:.2f} G, MLM head {flops['mlm_head'] / 1e9:.2f} G, "
        f"pooler + NSP {flops['pooler_and_nsp'] / 1e9:.4f} G; {step / 1e9:.1f} GFLOP per training "
        f"step ({step / tokens / 1e6:.1f} MFLOP per training token).",
    ]
    for name, value in counted:
        agreement = "the formula's figure exactly" if value == step else f"formula: {step / 1e9:.1f} G"
        lines.append(f"- FLOP check: `torch.utils.flop_counter` counted {value / 1e9:.1f} GFLOP in one "
                     f"training step of {name} ({agreement}).")
    lines += [
        "- MFU = achieved FLOP/s / peak matrix-product FLOP/s of the same precision (mixed bf16 "
        "contenders against the bfloat16 peak); 'per CPU-s' divides FLOP per CPU-second by the "
        "peak's FLOP per CPU-second. On a shared machine read the latter: the peak's blocks are "
        "short (under a second each), so their wall time suffers from other load differently "
        "from the contenders' blocks, and wall-clock MFU can even exceed 100 %.",
        "- Memory: RSS of the worker after importing its framework, before building the model; peak "
        "RSS (`ru_maxrss`) after the training blocks (building, warm-up with compilation, training); "
        "model's share = the difference.",
        "- `load`: median 1-minute load average when the contender's blocks started.",
        "",
    ]
    return lines


NOTES = [
    "keras-hub's BertBackbone uses the tanh approximation of GELU in its feed-forward layers; "
    "tfptlm's and transformers' use the exact (erf) GELU.",
    "MFU credits every contender with the same nominal FLOPs (the formula), whatever work an "
    "implementation skips: tfptlm's `BertPretrainer` lets the last encoder block compute only "
    "the masked positions and [CLS] (same outputs) when its backbone supports it.",
    "transformers runs BERT attention with PyTorch's `scaled_dot_product_attention` (sdpa); "
    "the PyTorch contender is eager (no `torch.compile`).",
    "Tokens per CPU-second count the worker's CPU time on all threads; busy-waiting thread pools "
    "(OpenMP in PyTorch, Eigen in TensorFlow) count too.",
]


def _projection_dtype(entry: dict) -> str:
    if entry["impl"] == "torch":
        return "bfloat16 (autocast)" if entry.get("autocast") else "float32"
    if entry.get("mlm_projection_dtype"):
        return entry["mlm_projection_dtype"]
    return "bfloat16" if entry.get("mlm_head_dtype_policy") == "mixed_bfloat16" else "float32"


def run_notes(report: dict) -> list[str]:
    """Facts of this run: the precision of each bf16 vocabulary projection, the tfptlm code."""
    results = report["results"]
    notes = []
    bf16 = [(n, e) for n, e in results.items()
            if e.get("precision") == "mixed_bfloat16" and e.get("impl") != "matmul" and "error" not in e]
    if bf16:
        notes.append("Vocabulary projection (MLM output product) under mixed bf16 in this run: "
                     + ", ".join(f"{n} {_projection_dtype(e)}" for n, e in bf16) + ".")
    hashes = {n: e["tfptlm_source_sha256"] for n, e in results.items() if e.get("tfptlm_source_sha256")}
    if len(set(hashes.values())) == 1:
        notes.append(f"tfptlm source (sha256 of its .py files when each TF worker started): "
                     f"{next(iter(hashes.values()))}, the same for every worker.")
    elif hashes:
        notes.append("tfptlm's source changed during the run (sha256 of its .py files when each "
                     "TF worker started): " + ", ".join(f"{n} {h}" for n, h in hashes.items()) + ".")
    return notes


def markdown_body(report: dict, contenders: dict, libraries: dict) -> list[str]:
    """All of the report after the common header."""
    ran = {n: s for n, s in contenders.items() if n in report["results"]}
    lines = method_lines(report) + target_lines(report)
    lines += ["## Training", ""] + speed_table(report, ran, libraries, "train")
    lines += ["## Inference", ""] + speed_table(report, ran, libraries, "infer")
    lines += ["## Memory", ""] + memory_table(report, ran)
    lines += ["## Matrix-product peak", ""] + peak_table(report)
    lines += ["## Notes", ""] + [f"- {note}" for note in NOTES + run_notes(report) + report["notes"]]
    return lines
