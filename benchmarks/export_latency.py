"""Export formats of a fine-tuned SST-2 classifier: CPU latency, size on disk and dev accuracy.

The model is all-MiniLM-L6-v2 fine-tuned on SST-2 (``benchmarks/finetune_sst2.py``,
sequence length 64). The script exports it with ``tfptlm.export`` as a
SavedModel (``export_saved_model``) and as TFLite float32, dynamic-range int8
and float16 (``export_tflite``), each with its parity check, then measures
every variant from raw strings (each one tokenizes inside its graph):

- ``keras``: the Keras model, ``load_finetuned(dir).predict_probabilities(texts)``
  (a ``tf.data`` pipeline with the in-graph preprocessor, then ``predict_on_batch``);
- ``keras_direct`` (diagnostic): the same Keras model without the per-call ``tf.data``
  pipeline: its preprocessor wrapped once in a ``tf.function`` (string batch in),
  then ``predict_on_batch`` and a softmax, batch by batch. ``predict_probabilities``
  builds a new ``tf.data`` pipeline per call, which traces the preprocessor
  again every time (seconds per call on 2 cores); this row shows the model's own cost;
- ``saved_model``: ``tf.saved_model.load(dir).signatures["serving_default"](text=...)``;
- ``tflite_fp32`` / ``tflite_int8`` / ``tflite_fp16``:
  ``TFLiteClassifier(path).predict_probabilities(texts)`` (tensorflow-text's TFLite kernels).

Figures: accuracy on all 872 SST-2 dev sentences (batches of 32) and agreement
with the Keras model; batch-1 latency (median and p90 over ``--single``
sentences) and batch-32 latency (median over ``--batches`` batches), wall and
process CPU time per call; size on disk. Latency calls are interleaved: for
each input every variant runs once, in an order that rotates per input, so
other load on the machine affects all variants alike. Int8 must stay within
``--int8-tolerance`` accuracy points of float32.

Usage (from the repository root)::

    # the model: a copy of the fine-tuned SST-2 run
    cp -r /tmp/tfptlm_benchmarks/finetune_sst2/lr0.0001 /tmp/export_bench/model
    python benchmarks/export_latency.py
    # quick check of the script (few sentences, writes export_latency_quick.*)
    python benchmarks/export_latency.py --quick

Writes ``benchmarks/results/<stem>.{json,md}`` (default stem export_latency);
the exports go to ``--work-dir`` (emptied first).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from results_io import DEFAULT_DATA_DIR, RESULTS_DIR, Stopwatch, fmt, write_report

VARIANTS = ("keras", "keras_direct", "saved_model", "tflite_fp32", "tflite_int8", "tflite_fp16")
TFLITE_QUANTIZE = {"tflite_fp32": "none", "tflite_int8": "dynamic_int8", "tflite_fp16": "float16"}
DESCRIPTIONS = {
    "keras": "Keras model, `predict_probabilities` (tf.data + in-graph preprocessor)",
    "keras_direct": "Keras model, preprocessor traced once + `predict_on_batch` (diagnostic)",
    "saved_model": "SavedModel `serving_default(text=...)`",
    "tflite_fp32": "TFLite float32",
    "tflite_int8": "TFLite dynamic-range int8 weights",
    "tflite_fp16": "TFLite float16 weights",
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/export_bench/model"),
                        help="a tfptlm finetune output directory (text classification)")
    parser.add_argument("--sst2-dev", type=Path, default=DEFAULT_DATA_DIR / "sst2" / "dev.tsv",
                        help="text TAB label, with a header, labels 0/1")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/export_bench/exports"),
                        help="where the exports are written (emptied first)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--single", type=int, default=100, help="sentences timed at batch 1")
    parser.add_argument("--batches", type=int, default=20, help="batches timed at batch size --batch-size")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls per variant and batch size")
    parser.add_argument("--seed", type=int, default=0, help="draws the timed sentences and batches")
    parser.add_argument("--int8-tolerance", type=float, default=1.0, help="accuracy points")
    parser.add_argument("--quick", action="store_true",
                        help="20 single sentences, 4 batches, 2 warm-up calls, stem export_latency_quick")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--output-stem", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.single, args.batches, args.warmup = 20, 4, 2
    args.output_stem = args.output_stem or ("export_latency_quick" if args.quick else "export_latency")
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    return args


def read_sst2(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, body = rows[0], rows[1:]
    if header[:2] != ["text", "label"]:
        raise ValueError(f"{path}: expected a text/label header, got {header}")
    return [r[0] for r in body], np.array([int(r[1]) for r in body])


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def make_predictors(args, model, exports: dict) -> dict:
    """``name -> function(list of str) -> probabilities [n, 2]`` for each variant."""
    import tensorflow as tf
    from tfptlm.export.tflite import TFLiteClassifier

    predictors = {}
    for name in args.variants:
        if name == "keras":
            predictors[name] = lambda texts: model.predict_probabilities(texts, batch_size=args.batch_size)
        elif name == "keras_direct":
            predictors[name] = keras_direct(model, args.batch_size)
        elif name == "saved_model":
            serve = tf.saved_model.load(str(exports[name])).signatures["serving_default"]
            predictors[name] = (
                lambda texts, serve=serve: serve(text=tf.constant(texts))["probabilities"].numpy()
            )
        else:
            classifier = TFLiteClassifier(exports[name])
            predictors[name] = (
                lambda texts, c=classifier: c.predict_probabilities(texts, batch_size=args.batch_size)
            )
    return predictors


def keras_direct(model, batch_size: int):
    """The Keras model on raw strings with its preprocessor traced once (no per-call tf.data)."""
    import keras
    import tensorflow as tf

    preprocess = tf.function(lambda texts: model.preprocessor(texts),
                             input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)

    def predict(texts):
        rows = []
        for begin in range(0, len(texts), batch_size):
            logits = model.predict_on_batch(preprocess(tf.constant(texts[begin : begin + batch_size])))
            rows.append(keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1)))
        return np.concatenate(rows)

    return predict


def timed(function, texts) -> tuple[float, float]:
    """(wall ms, process CPU ms) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    function(texts)
    return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3


def interleaved(predictors: dict, inputs: list[list[str]], log) -> dict:
    """Runs every variant on every input, rotating the order per input; ms per call."""
    names = list(predictors)
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    loads = []
    for i, texts in enumerate(inputs):
        if i % max(1, len(inputs) // 4) == 0:
            loads.append(round(os.getloadavg()[0], 2))
            log(f"  input {i + 1}/{len(inputs)}, 1-min load {loads[-1]:.2f}")
        for name in names[i % len(names):] + names[: i % len(names)]:
            w, c = timed(predictors[name], texts)
            wall[name].append(w)
            cpu[name].append(c)
    return {"wall_ms": wall, "cpu_ms": cpu, "loadavg_1min": loads}


def summarize(times: dict) -> dict:
    out = {}
    for name, walls in times["wall_ms"].items():
        cpus = times["cpu_ms"][name]
        out[name] = {
            "calls": len(walls),
            "median_ms": statistics.median(walls),
            "p90_ms": percentile(walls, 90),
            "min_ms": min(walls),
            "max_ms": max(walls),
            "median_cpu_ms": statistics.median(cpus),
        }
    return out


def main(argv=None) -> None:
    args = parse_args(argv)
    stopwatch = Stopwatch()
    log = stopwatch.log
    if not (args.model_dir / "task.json").is_file():
        sys.exit(f"{args.model_dir} is not a fine-tuned model directory; copy one there (see --help)")

    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the ops the SavedModel needs)
    from tfptlm.export.saved_model import export_saved_model
    from tfptlm.export.tflite import METADATA_FILE, export_tflite
    from tfptlm.finetuning.run import load_finetuned

    texts, labels = read_sst2(args.sst2_dev)
    log(f"{len(texts)} dev sentences from {args.sst2_dev}; 1-min load {os.getloadavg()[0]:.2f}")
    settings = dict(
        model_dir=str(args.model_dir),
        sst2_dev=str(args.sst2_dev),
        work_dir=str(args.work_dir),
        variants=args.variants,
        single_sentences=args.single,
        batches=args.batches,
        batch_size=args.batch_size,
        warmup_calls=args.warmup,
        seed=args.seed,
        int8_tolerance_points=args.int8_tolerance,
        tf_intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
        tf_inter_op_threads=tf.config.threading.get_inter_op_parallelism_threads(),
        tflite_threads="TFLiteClassifier default (interpreter num_threads not set)",
    )
    results: dict = {"exports": {}, "accuracy": {}, "latency": {}}

    def report(complete: bool) -> Path:
        return write_report(
            args.output_stem,
            "SST-2 classifier export formats: CPU latency, size and accuracy",
            {"settings": settings, **results},
            markdown(args, settings, results), stopwatch, args.output_dir, complete,
        )

    # -- exports -------------------------------------------------------------
    if args.work_dir.exists():
        shutil.rmtree(args.work_dir)
    exports = {}
    model = load_finetuned(args.model_dir)
    label_ids = np.array([int(name) for name in model.label_names])  # output column -> label
    results["model"] = {
        "label_names": list(model.label_names),
        "sequence_length": model.data_config.sequence_length,
        "parameters": int(model.count_params()),
        "model_keras_bytes": (args.model_dir / "model.keras").stat().st_size,
    }
    for name in args.variants:
        if name.startswith("keras"):
            continue
        start = time.perf_counter()
        if name == "saved_model":
            path = export_saved_model(args.model_dir, args.work_dir / "saved_model", version=1, check=True)
            info = {"path": str(path), "bytes": dir_bytes(path),
                    "variables_bytes": dir_bytes(path / "variables")}
        else:
            path = export_tflite(args.model_dir, args.work_dir / name, version=1,
                                 quantize=TFLITE_QUANTIZE[name], check=True)
            info = {"path": str(path), "bytes": path.stat().st_size,
                    "parity": json.loads((path.parent / METADATA_FILE).read_text()).get("parity")}
        info["export_seconds"] = round(time.perf_counter() - start, 1)
        exports[name] = path
        results["exports"][name] = info
        log(f"exported {name}: {info['bytes'] / 1e6:.1f} MB in {info['export_seconds']:.0f} s")
    report(complete=False)

    predictors = make_predictors(args, model, exports)

    # -- accuracy (all dev sentences, batches of --batch-size) ---------------
    probabilities = {}
    for name, predict in predictors.items():
        start, cpu = time.perf_counter(), time.process_time()
        probabilities[name] = predict(texts)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        predicted = label_ids[probabilities[name].argmax(-1)]
        results["accuracy"][name] = {
            "accuracy": float(np.mean(predicted == labels)),
            "correct": int(np.sum(predicted == labels)),
            "examples": len(labels),
            "seconds": round(seconds, 2),
            "cpu_seconds": round(cpu_seconds, 2),
            "loadavg_1min": round(os.getloadavg()[0], 2),
        }
        log(f"accuracy {name}: {results['accuracy'][name]['accuracy']:.4f} ({seconds:.1f} s)")
    reference = "keras" if "keras" in probabilities else next(iter(probabilities))
    for name, probs in probabilities.items():
        results["accuracy"][name]["label_agreement_with_" + reference] = float(
            np.mean(probs.argmax(-1) == probabilities[reference].argmax(-1)))
        results["accuracy"][name]["max_abs_probability_difference_from_" + reference] = float(
            np.max(np.abs(probs - probabilities[reference])))
    float_name = "tflite_fp32" if "tflite_fp32" in probabilities else reference
    if "tflite_int8" in probabilities:
        difference = 100 * (results["accuracy"]["tflite_int8"]["accuracy"]
                            - results["accuracy"][float_name]["accuracy"])
        results["int8_vs_float"] = {
            "float_variant": float_name,
            "difference_points": difference,
            "within_tolerance": abs(difference) <= args.int8_tolerance,
        }
    report(complete=False)

    # -- latency -------------------------------------------------------------
    rng = random.Random(args.seed)
    order = list(range(len(texts)))
    rng.shuffle(order)
    warm_single = [[texts[i]] for i in order[: args.warmup]]
    single = [[texts[i]] for i in order[args.warmup : args.warmup + args.single]]
    n_batch = args.batch_size
    # Each batch: n_batch different sentences drawn at random (batches may share sentences:
    # 872 sentences do not fill warm-up + timed batches of 32 without repeats).
    batches = [[texts[i] for i in rng.sample(range(len(texts)), n_batch)]
               for _ in range(args.warmup + args.batches)]
    warm_batches, batches = batches[: args.warmup], batches[args.warmup :]
    settings["single_sentence_mean_words"] = float(np.mean([len(t[0].split()) for t in single]))

    log("warm-up")
    for inputs in warm_single + warm_batches:
        for predict in predictors.values():
            predict(inputs)
    log(f"batch 1: {len(single)} sentences x {len(predictors)} variants, interleaved")
    times = interleaved(predictors, single, log)
    results["latency"]["batch_1"] = {"summary": summarize(times), **times}
    report(complete=False)
    log(f"batch {n_batch}: {len(batches)} batches x {len(predictors)} variants, interleaved")
    times = interleaved(predictors, batches, log)
    results["latency"][f"batch_{n_batch}"] = {"summary": summarize(times), **times}
    md = report(complete=True)
    print(md.read_text())


def markdown(args, settings: dict, results: dict) -> list[str]:
    n_batch = args.batch_size
    model = results.get("model", {})
    body = [
        "Model: all-MiniLM-L6-v2 (6 layers, hidden 384) fine-tuned on SST-2 "
        f"(`{settings['model_dir']}`, sequence length {model.get('sequence_length', '?')}, "
        f"{fmt(model.get('parameters'))} parameters). Every variant takes raw strings and tokenizes "
        "inside its graph (TFLite: tensorflow-text's FastBertNormalize / FastWordpieceTokenizeWithOffsets "
        "kernels); batches are padded to their longest row (multiple of 8, at most 64).",
        "",
        f"Latency: batch 1 over {args.single} dev sentences drawn with random.Random({args.seed}), "
        f"batch {n_batch} over {args.batches} batches of dev sentences (each drawn with random.sample), after {args.warmup} untimed "
        "calls per variant and batch size; every input goes through every variant in turn (order rotated "
        "per input). Wall-clock ms per call (the whole `predict_probabilities` / signature call, "
        "including string conversion); CPU = process CPU time per call (all threads). Accuracy: all "
        f"{results['accuracy'].get('keras', next(iter(results['accuracy'].values()), {})).get('examples', 872)} "
        f"dev sentences in batches of {n_batch}.",
        "",
        f"| variant | size on disk (MB) | b1 median ms | b1 p90 ms | b1 CPU ms | b{n_batch} median ms | "
        f"b{n_batch} CPU ms | dev accuracy | agreement with Keras |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    b1 = results["latency"].get("batch_1", {}).get("summary", {})
    bn = results["latency"].get(f"batch_{n_batch}", {}).get("summary", {})
    for name in settings["variants"]:
        size = results["exports"].get(name, {}).get("bytes")
        if name.startswith("keras"):
            size = model.get("model_keras_bytes")
        acc = results["accuracy"].get(name, {})
        agreement = acc.get("label_agreement_with_keras")
        body.append(
            f"| {DESCRIPTIONS[name]} | {fmt(size / 1e6 if size else None, 1)}"
            f"{' (model.keras)' if name.startswith('keras') and size else ''} | "
            f"{fmt(b1.get(name, {}).get('median_ms'), 1)} | {fmt(b1.get(name, {}).get('p90_ms'), 1)} | "
            f"{fmt(b1.get(name, {}).get('median_cpu_ms'), 1)} | {fmt(bn.get(name, {}).get('median_ms'), 1)} | "
            f"{fmt(bn.get(name, {}).get('median_cpu_ms'), 1)} | {fmt(acc.get('accuracy'), 4)} | "
            f"{fmt(agreement, 4)} |"
        )
    if model:
        body += ["", f"Sizes: `model.keras` ({fmt(model['model_keras_bytes'])} bytes) also holds the AdamW "
                 f"moments of fine-tuning; the weights alone are {model['parameters'] * 4 / 1e6:.1f} MB in "
                 "float32. SavedModel = the whole version directory (variables, saved_model.pb, vocabulary)."]
    if "int8_vs_float" in results:
        c = results["int8_vs_float"]
        body += ["", f"Int8 vs {c['float_variant']}: {c['difference_points']:+.2f} accuracy points "
                 f"(tolerance ±{args.int8_tolerance:g}: {'met' if c['within_tolerance'] else 'NOT met'})."]
    if results["exports"]:
        body += ["", "| export | bytes | export s (incl. parity check) | probe-text parity |",
                 "| --- | ---: | ---: | --- |"]
        for name, info in results["exports"].items():
            parity = info.get("parity")
            parity_text = ("SavedModel check (atol 1e-5) passed" if name == "saved_model" else
                           f"max |Δp| {parity['max_abs_difference']:.1e}, {parity['label_differences']} "
                           "label flips" if parity else "–")
            body.append(f"| {name} | {fmt(info['bytes'])} | {info['export_seconds']:.0f} | {parity_text} |")
    if results["accuracy"]:
        body += ["", "| variant | accuracy | correct | max abs Δ probability vs Keras | "
                 f"872 sentences s (batch {n_batch}) | CPU s | 1-min load after |",
                 "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, acc in results["accuracy"].items():
            body.append(
                f"| {name} | {acc['accuracy']:.4f} | {acc['correct']} | "
                f"{fmt(acc.get('max_abs_probability_difference_from_keras'), 6)} | "
                f"{acc['seconds']:.1f} | {acc['cpu_seconds']:.1f} | {acc['loadavg_1min']:.2f} |")
    loads = [load for key in ("batch_1", f"batch_{n_batch}")
             for load in results["latency"].get(key, {}).get("loadavg_1min", [])]
    if loads:
        body += ["", f"1-minute load average during the latency loops: {min(loads):.2f}–{max(loads):.2f} "
                 "(2 CPU cores; see the per-call figures in the JSON)."]
    return body


if __name__ == "__main__":
    main()
