"""Greedy generation speed: tfptlm with and without its key/value cache, and keras-hub's GPT-2.

Three contenders generate ``--new-tokens`` (256) tokens greedily from the same
prompt, with random weights, at batch 1 and batch 8:

- ``tfptlm-cache``: ``tfptlm.models.gpt.GPTBackbone`` in a ``tfptlm.tasks.causal_lm.CausalLM``,
  ``TextGenerator(model, CausalLMPreprocessor(tokenizer, max_length))
  .generate(prompts, max_new_tokens=256, strategy="greedy", use_cache=True)``;
- ``tfptlm-nocache``: the same model and call with ``use_cache=False`` (the whole
  padded sequence is recomputed at every step);
- ``kerashub``: ``keras_hub.models.GPT2CausalLM(GPT2Backbone(...), preprocessor=None)``
  of the same size (layers, hidden, heads, intermediate, vocabulary, max length),
  compiled with ``sampler="greedy"``, ``generate({"token_ids", "padding_mask"},
  stop_token_ids=None)`` on the same prompt ids padded to prompt + 256.

Both sides run their decoding loop as one XLA program (``--no-xla`` turns XLA
off on both): tfptlm's ``TextGenerator(jit_compile=True)`` (its default) and
keras-hub's ``GPT2CausalLM.compile(jit_compile=True)`` (keras-hub's default
``"auto"`` resolves to no XLA on a CPU-only machine, so it is set explicitly).

The tokenizer is a stub (``pad_id`` 0, ``eos_id`` 1): every prompt is the
same ``--prompt-tokens`` ids, so with the leading ``</s>`` that tfptlm's
preprocessor adds the prompt is ``--prompt-tokens`` + 1 = 16 tokens (a
multiple of 16: tfptlm's ``TextGenerator`` does not pad it further) and the
keras-hub input gets exactly those 16 ids. ``detokenize`` returns the ids as
text, so the script counts the tokens each call really generated. The row of
the ``</s>`` id in the tied token embedding is set to zero on both models, so
its logit is exactly 0 while the largest of the ~8,000 others is positive: a
random model cannot stop early (and keras-hub runs with ``stop_token_ids=None``
anyway). The script checks that every call generated ``--new-tokens`` tokens
per row and that the cached and uncached greedy outputs are identical.

Method: one process builds all models, then runs untimed warm-up calls
(tracing and XLA compilation) per contender and batch size. Then
``--rounds`` rounds; in each, for each batch size, every contender in turn
(order rotated per round) runs one timed block: ``--calls`` generate calls
(``--nocache-calls`` for the slow uncached contender; it takes part only in
the first ``--nocache-rounds`` rounds). Every call's wall and process CPU
time is recorded; tokens/s = batch x new tokens / seconds (median over
calls). Ratios: cache / no cache, tfptlm-cache / keras-hub (medians, and the
median of the same-round ratios). A diagnostic section splits one tfptlm
cached call into its parts (tokenization, eager prefill, compiled loop,
detokenization) and times keras-hub's compiled generate function alone.

Usage (from the repository root)::

    python benchmarks/generate_speed.py            # about 18 min on 2 busy cores
    python benchmarks/generate_speed.py --quick    # smoke run, writes generate_speed_quick.*

Writes ``benchmarks/results/<stem>.{json,md}`` (default stem generate_speed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

from results_io import RESULTS_DIR, Stopwatch, fmt, write_report

CONTENDERS = ("tfptlm-cache", "tfptlm-nocache", "kerashub")
DESCRIPTIONS = {
    "tfptlm-cache": "tfptlm `TextGenerator.generate(..., use_cache=True)`",
    "tfptlm-nocache": "tfptlm `TextGenerator.generate(..., use_cache=False)`",
    "kerashub": "keras-hub `GPT2CausalLM.generate` (greedy sampler)",
}
PAD_ID, EOS_ID = 0, 1


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-layers", type=int, default=4)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--intermediate-dim", type=int, default=1024)
    parser.add_argument("--vocabulary-size", type=int, default=8000)
    parser.add_argument("--max-sequence-length", type=int, default=512)
    parser.add_argument("--prompt-tokens", type=int, default=15,
                        help="prompt ids per row, before the leading </s> (15 + 1 = 16)")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3, help="generate calls per timed block")
    parser.add_argument("--nocache-rounds", type=int, default=3,
                        help="rounds in which tfptlm-nocache takes part (it is slow)")
    parser.add_argument("--nocache-calls", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per contender and batch size")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--no-xla", action="store_true", help="no XLA on either side")
    parser.add_argument("--no-diagnostics", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="2 layers, 32 new tokens, 2 rounds, 1 call per block, stem generate_speed_quick")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--output-stem", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.num_layers, args.new_tokens, args.rounds, args.calls = 2, 32, 2, 1
        args.nocache_rounds = 2
    args.output_stem = args.output_stem or ("generate_speed_quick" if args.quick else "generate_speed")
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    args.contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = set(args.contenders) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders: {', '.join(sorted(unknown))}")
    return args


class StubTokenizer:
    """Every text is the same fixed ids; detokenize writes ids as space-separated numbers."""

    pad_id = PAD_ID
    eos_id = EOS_ID

    def __init__(self, prompt_ids):
        self.prompt_ids = [int(i) for i in prompt_ids]

    def tokenize(self, texts):
        import tensorflow as tf

        texts = tf.reshape(tf.convert_to_tensor(texts, tf.string), [-1])
        n = tf.shape(texts)[0]
        ids = tf.tile(tf.constant([self.prompt_ids], tf.int32), [n, 1])
        return tf.RaggedTensor.from_tensor(ids)

    def detokenize(self, ids):
        """RaggedTensor [B, (n)] -> tf.string [B] (the current TextGenerator), or one row -> str."""
        import tensorflow as tf

        if isinstance(ids, tf.RaggedTensor) or (tf.is_tensor(ids) and ids.shape.rank == 2):
            return tf.strings.reduce_join(tf.strings.as_string(ids), axis=-1, separator=" ")
        return " ".join(str(int(i)) for i in np.asarray(ids).reshape(-1))


def zero_eos_embedding(embedding_variable) -> None:
    """The </s> row of a tied embedding set to 0: its logit is always exactly 0."""
    value = np.array(embedding_variable.numpy())
    value[EOS_ID] = 0.0
    embedding_variable.assign(value)


def build(args):
    """Returns (contender name -> callable(batch) -> generated ids per row, info dict)."""
    import keras
    import keras_hub
    from tfptlm.data.generation_inputs import CausalLMPreprocessor
    from tfptlm.generation.text import TextGenerator
    from tfptlm.models.gpt import GPTBackbone
    from tfptlm.tasks.causal_lm import CausalLM

    keras.utils.set_random_seed(args.seed)
    size = dict(num_layers=args.num_layers, num_heads=args.num_heads, hidden_dim=args.hidden_dim,
                intermediate_dim=args.intermediate_dim)
    rng = np.random.default_rng(args.seed)
    prompt = rng.integers(2, args.vocabulary_size, size=args.prompt_tokens).tolist()
    tokenizer = StubTokenizer(prompt)

    backbone = GPTBackbone(vocabulary_size=args.vocabulary_size, max_sequence_length=args.max_sequence_length,
                           **size)
    model = CausalLM(backbone)
    zero_eos_embedding(backbone.token_embedding.embeddings)
    preprocessor = CausalLMPreprocessor(tokenizer, args.max_sequence_length)
    generator = TextGenerator(model, preprocessor, jit_compile=not args.no_xla)

    hub_backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=args.vocabulary_size, max_sequence_length=args.max_sequence_length, **size)
    hub_lm = keras_hub.models.GPT2CausalLM(backbone=hub_backbone, preprocessor=None)
    hub_lm.compile(sampler="greedy", jit_compile=not args.no_xla)
    zero_eos_embedding(hub_backbone.token_embedding.embeddings)

    full_prompt = [EOS_ID] + prompt  # what tfptlm's preprocessor feeds: </s> prompt
    total = len(full_prompt) + args.new_tokens

    def tfptlm_fn(use_cache):
        def run(batch):
            texts = generator.generate([f"prompt {i}" for i in range(batch)], max_new_tokens=args.new_tokens,
                                       strategy="greedy", batch_size=batch, use_cache=use_cache)
            return [[int(t) for t in text.split()] for text in texts]
        return run

    def hub_inputs(batch):
        ids = np.zeros((batch, total), "int32")
        ids[:, : len(full_prompt)] = full_prompt
        mask = np.zeros((batch, total), "bool")
        mask[:, : len(full_prompt)] = True
        return {"token_ids": ids, "padding_mask": mask}

    def hub_run(batch):
        out = hub_lm.generate(hub_inputs(batch), stop_token_ids=None)
        ids = np.asarray(out["token_ids"])
        return [row[len(full_prompt):][np.asarray(out["padding_mask"])[r, len(full_prompt):]].tolist()
                for r, row in enumerate(ids)]

    functions = {"tfptlm-cache": tfptlm_fn(True), "tfptlm-nocache": tfptlm_fn(False), "kerashub": hub_run}
    info = dict(
        tfptlm_parameters=int(backbone.count_params()),
        kerashub_parameters=int(hub_backbone.count_params()),
        prompt_ids=full_prompt,
        prompt_length=len(full_prompt),
        total_length=total,
        tfptlm_jit_compile=generator.jit_compile,
        kerashub_jit_compile=bool(hub_lm.jit_compile),
        kerashub_run_eagerly=bool(hub_lm.run_eagerly),
    )
    objects = dict(generator=generator, backbone=backbone, hub_lm=hub_lm, hub_inputs=hub_inputs,
                   tokenizer=tokenizer)
    return {name: functions[name] for name in args.contenders}, info, objects


def timed(function, batch):
    wall, cpu = time.perf_counter(), time.process_time()
    out = function(batch)
    return time.perf_counter() - wall, time.process_time() - cpu, out


def diagnostics(args, objects, batch: int, repeats: int = 3) -> dict:
    """Splits tfptlm's cached generate into its parts; keras-hub's compiled function alone.

    Uses TextGenerator's internals (``generate_fn``, ``_causal_inputs``,
    ``_new_tokens``) as of this script's writing; ``tokenize_and_prompt_ids``
    includes the prompt-length check that ``generate`` makes (a second tokenization).
    """
    import tensorflow as tf
    from keras import ops

    generator, backbone = objects["generator"], objects["backbone"]
    prompts = [f"prompt {i}" for i in range(batch)]
    prompt_tensor = tf.constant(prompts, tf.string)
    parts: dict[str, list[float]] = {k: [] for k in (
        "tokenize_and_prompt_ids", "init_cache_and_eager_prefill", "compiled_loop", "new_tokens_and_detokenize",
        "total", "kerashub_generate_function", "kerashub_generate")}
    generate_fn = generator.generate_fn("greedy", True)
    hub_lm = objects["hub_lm"]
    hub_fn = hub_lm.make_generate_function()
    hub_inputs = objects["hub_inputs"](batch)
    n = args.new_tokens
    for _ in range(repeats):
        t0 = time.perf_counter()
        generator._warn_if_cut(prompts, n)
        ragged = generator.prompt_token_ids(prompt_tensor, n)
        lengths = tf.cast(ragged.row_lengths(), tf.int32)
        padded = -(-int(tf.reduce_max(lengths)) // 16) * 16
        total = padded + n
        prompt_ids = ragged.to_tensor(default_value=PAD_ID, shape=[None, total])
        t1 = time.perf_counter()
        cache = backbone.init_cache(tf.shape(prompt_ids)[0], total)
        _, _, cache = backbone.call_with_cache(prompt_ids[:, :padded], cache, 0)
        _ = ops.convert_to_numpy(cache[0, 0, 0, 0, 0, 0])
        t2 = time.perf_counter()
        result = generate_fn(prompt_ids, lengths, cache, padded, None)
        _ = ops.convert_to_numpy(result["lengths"])
        t3 = time.perf_counter()
        text = generator.tokenizer.detokenize(generator._new_tokens(result, lengths, n))
        _ = text.numpy()
        t4 = time.perf_counter()
        for key, value in zip(("tokenize_and_prompt_ids", "init_cache_and_eager_prefill", "compiled_loop",
                               "new_tokens_and_detokenize", "total"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
            parts[key].append(value)
        t5 = time.perf_counter()
        out = hub_fn({k: ops.convert_to_tensor(v) for k, v in hub_inputs.items()}, stop_token_ids=None)
        _ = ops.convert_to_numpy(out["token_ids"])
        t6 = time.perf_counter()
        hub_lm.generate(dict(hub_inputs), stop_token_ids=None)
        t7 = time.perf_counter()
        parts["kerashub_generate_function"].append(t6 - t5)
        parts["kerashub_generate"].append(t7 - t6)
    return {key: statistics.median(values) * 1e3 for key, values in parts.items()}


def summarize(calls: list[dict], batch: int, new_tokens: int) -> dict:
    walls = [c["seconds"] for c in calls]
    cpus = [c["cpu_seconds"] for c in calls]
    med = statistics.median(walls)
    return {
        "calls": len(calls),
        "median_seconds": med,
        "min_seconds": min(walls),
        "max_seconds": max(walls),
        "median_cpu_seconds": statistics.median(cpus),
        "tokens_per_second": batch * new_tokens / med,
        "tokens_per_cpu_second": batch * new_tokens / statistics.median(cpus),
        "ms_per_step": med / new_tokens * 1e3,
    }


def ratios(results: dict, batch: int) -> dict:
    key = f"batch_{batch}"
    summary = results["summary"].get(key, {})
    out = {}

    def pair(a, b, name):
        if a in summary and b in summary:
            entry = {"of_medians": summary[b]["median_seconds"] / summary[a]["median_seconds"],
                     "cpu_of_medians": summary[b]["median_cpu_seconds"] / summary[a]["median_cpu_seconds"]}
            same_round = []
            for rnd in results["rounds"]:
                blocks = rnd.get(key, {})
                if a in blocks and b in blocks:
                    same_round.append(statistics.median(blocks[b]) / statistics.median(blocks[a]))
            if same_round:
                entry["median_same_round"] = statistics.median(same_round)
                entry["same_round"] = same_round
            out[name] = entry

    pair("tfptlm-cache", "tfptlm-nocache", "cache_over_nocache_speedup")
    pair("tfptlm-cache", "kerashub", "tfptlm_cache_over_kerashub_speedup")
    return out


def main(argv=None) -> None:
    args = parse_args(argv)
    stopwatch = Stopwatch()
    log = stopwatch.log

    import tensorflow as tf

    log(f"1-min load {os.getloadavg()[0]:.2f}; building models")
    functions, info, objects = build(args)
    settings = dict(
        model=dict(num_layers=args.num_layers, hidden_dim=args.hidden_dim, num_heads=args.num_heads,
                   intermediate_dim=args.intermediate_dim, vocabulary_size=args.vocabulary_size,
                   max_sequence_length=args.max_sequence_length),
        new_tokens=args.new_tokens, batch_sizes=args.batch_sizes, rounds=args.rounds, calls=args.calls,
        nocache_rounds=args.nocache_rounds, nocache_calls=args.nocache_calls, warmup_calls=args.warmup,
        contenders=args.contenders, xla=not args.no_xla, seed=args.seed,
        tf_intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
        tf_inter_op_threads=tf.config.threading.get_inter_op_parallelism_threads(),
        **info,
    )
    log(f"tfptlm {info['tfptlm_parameters']:,} parameters, keras-hub {info['kerashub_parameters']:,}; "
        f"XLA tfptlm {info['tfptlm_jit_compile']}, keras-hub {info['kerashub_jit_compile']}")
    results: dict = {"warmup": {}, "rounds": [], "calls": {}, "summary": {}, "checks": {}, "ratios": {}}

    def report(complete: bool) -> Path:
        for batch in args.batch_sizes:
            key = f"batch_{batch}"
            results["summary"][key] = {
                name: summarize(calls, batch, args.new_tokens)
                for name, calls in results["calls"].get(key, {}).items() if calls}
            results["ratios"][key] = ratios(results, batch)
        return write_report(args.output_stem, "Greedy generation speed: tfptlm (KV cache / no cache) vs keras-hub GPT-2",
                            {"settings": settings, **results}, markdown(args, settings, results), stopwatch,
                            args.output_dir, complete)

    outputs: dict = {}

    def check(name, batch, generated):
        lengths = sorted({len(row) for row in generated})
        ok = lengths == [args.new_tokens]
        entry = results["checks"].setdefault(f"{name}_batch_{batch}_all_rows_full_length", True)
        results["checks"][f"{name}_batch_{batch}_all_rows_full_length"] = entry and ok
        if not ok:
            log(f"WARNING {name} batch {batch}: generated lengths {lengths}, expected {args.new_tokens}")
        outputs.setdefault((name, batch), generated)

    # -- warm-up (tracing and XLA compilation) -------------------------------
    for batch in args.batch_sizes:
        for name, function in functions.items():
            times = []
            for _ in range(args.warmup):
                seconds, _, generated = timed(function, batch)
                times.append(round(seconds, 2))
                check(name, batch, generated)
            results["warmup"][f"{name}_batch_{batch}"] = times
            log(f"warm-up {name} batch {batch}: {times} s")
    for batch in args.batch_sizes:
        if ("tfptlm-cache", batch) in outputs and ("tfptlm-nocache", batch) in outputs:
            same = outputs[("tfptlm-cache", batch)] == outputs[("tfptlm-nocache", batch)]
            results["checks"][f"cache_equals_nocache_batch_{batch}"] = same
            log(f"batch {batch}: cached == uncached greedy output: {same}")
        for name in args.contenders:
            rows = outputs.get((name, batch))
            if rows:
                results["checks"][f"{name}_batch_{batch}_rows_identical"] = all(r == rows[0] for r in rows)
    report(complete=False)

    # -- interleaved timed rounds ---------------------------------------------
    names = list(functions)
    for rnd in range(args.rounds):
        round_blocks: dict = {}
        for batch in args.batch_sizes:
            key = f"batch_{batch}"
            order = names[rnd % len(names):] + names[: rnd % len(names)]
            for name in order:
                if name == "tfptlm-nocache" and rnd >= args.nocache_rounds:
                    continue
                n_calls = args.nocache_calls if name == "tfptlm-nocache" else args.calls
                load = os.getloadavg()[0]
                block = []
                for _ in range(n_calls):
                    seconds, cpu_seconds, generated = timed(functions[name], batch)
                    check(name, batch, generated)
                    block.append(seconds)
                    results["calls"].setdefault(key, {}).setdefault(name, []).append(
                        {"round": rnd, "seconds": seconds, "cpu_seconds": cpu_seconds,
                         "loadavg_1min": round(load, 2)})
                round_blocks.setdefault(key, {})[name] = block
                log(f"round {rnd + 1}/{args.rounds} batch {batch} {name}: "
                    f"{', '.join(f'{s:.2f}' for s in block)} s "
                    f"({batch * args.new_tokens / statistics.median(block):,.0f} tokens/s), load {load:.1f}")
        results["rounds"].append(round_blocks)
        report(complete=False)

    # -- diagnostics -----------------------------------------------------------
    if not args.no_diagnostics and {"tfptlm-cache", "kerashub"} <= set(functions):
        results["diagnostics_ms"] = {}
        for batch in args.batch_sizes:
            try:
                results["diagnostics_ms"][f"batch_{batch}"] = diagnostics(args, objects, batch)
            except Exception as error:  # the library's internals may have moved; keep the figures
                log(f"diagnostics failed: {error!r}")
                results["diagnostics_error"] = repr(error)
                break
            log(f"diagnostics batch {batch}: " + ", ".join(
                f"{k} {v:.0f} ms" for k, v in results["diagnostics_ms"][f"batch_{batch}"].items()))
    md = report(complete=True)
    print(md.read_text())


def markdown(args, settings: dict, results: dict) -> list[str]:
    m = settings["model"]
    body = [
        f"Model (random weights, float32): {m['num_layers']} layers, hidden {m['hidden_dim']}, "
        f"{m['num_heads']} heads, intermediate {m['intermediate_dim']}, vocabulary {m['vocabulary_size']:,}, "
        f"max length {m['max_sequence_length']}; tfptlm `GPTBackbone` {fmt(settings['tfptlm_parameters'])} "
        f"parameters, keras-hub `GPT2Backbone` {fmt(settings['kerashub_parameters'])}.",
        "",
        f"Greedy decoding of {args.new_tokens} new tokens after a {settings['prompt_length']}-token prompt "
        f"(`</s>` + {args.prompt_tokens} fixed ids; sequence length {settings['total_length']}), same prompt "
        f"in every row. XLA: tfptlm {settings['tfptlm_jit_compile']}, keras-hub "
        f"{settings['kerashub_jit_compile']}. End-to-end wall time of each `generate` call (tfptlm: "
        "strings in, strings out through the stub tokenizer; keras-hub: token ids in, ids out), after "
        f"{args.warmup} untimed warm-up call(s) per contender and batch size; {args.rounds} interleaved "
        f"rounds (order rotated per round) of {args.calls} call(s) per contender "
        f"(tfptlm-nocache: {args.nocache_calls} call(s) in the first {args.nocache_rounds} rounds). "
        "Medians over calls; tokens/s = batch x new tokens / seconds; CPU = process CPU time.",
        "",
        "| batch | contender | calls | median s | min–max s | tokens/s | ms/token step | CPU s | tokens per CPU-s |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for batch in args.batch_sizes:
        for name in args.contenders:
            s = results["summary"].get(f"batch_{batch}", {}).get(name)
            if not s:
                continue
            body.append(
                f"| {batch} | {DESCRIPTIONS[name]} | {s['calls']} | {s['median_seconds']:.3f} | "
                f"{s['min_seconds']:.3f}–{s['max_seconds']:.3f} | {s['tokens_per_second']:,.1f} | "
                f"{s['ms_per_step']:.2f} | {s['median_cpu_seconds']:.3f} | {s['tokens_per_cpu_second']:,.1f} |")
    body += ["", "| batch | ratio | of medians (wall) | median of same-round ratios | of median CPU s | target |",
             "| ---: | --- | ---: | ---: | ---: | --- |"]
    targets = {"cache_over_nocache_speedup": ("tfptlm cache / no cache", 5.0),
               "tfptlm_cache_over_kerashub_speedup": ("tfptlm (cache) / keras-hub", 1.5)}
    for batch in args.batch_sizes:
        for key, (label, target) in targets.items():
            r = results["ratios"].get(f"batch_{batch}", {}).get(key)
            if not r:
                continue
            met = "met" if r["of_medians"] >= target else "NOT met"
            body.append(f"| {batch} | {label} (speed-up) | {r['of_medians']:.2f} | "
                        f"{fmt(r.get('median_same_round'), 2)} | {r['cpu_of_medians']:.2f} | >= {target:g}: {met} |")
    if results["checks"]:
        body += ["", "Checks: " + "; ".join(f"{k} = {v}" for k, v in results["checks"].items()) + "."]
    if results["warmup"]:
        body += ["", "Warm-up (first call: tracing + compilation) seconds: "
                 + "; ".join(f"{k} {v}" for k, v in results["warmup"].items()) + "."]
    if results.get("diagnostics_ms"):
        body += ["", "Diagnostics (median of 3, ms): one tfptlm cached call split into its parts, and "
                 "keras-hub's compiled generate function alone vs its `generate`.", "",
                 "| batch | tokenize + prompt ids | init cache + eager prefill | compiled loop | new tokens + detokenize | "
                 "tfptlm total | keras-hub compiled fn | keras-hub generate |",
                 "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for key, d in results["diagnostics_ms"].items():
            body.append(f"| {key.split('_')[1]} | {d['tokenize_and_prompt_ids']:.1f} | "
                        f"{d['init_cache_and_eager_prefill']:.1f} | {d['compiled_loop']:.1f} | {d['new_tokens_and_detokenize']:.1f} | "
                        f"{d['total']:.1f} | {d['kerashub_generate_function']:.1f} | {d['kerashub_generate']:.1f} |")
    return body


if __name__ == "__main__":
    main()
