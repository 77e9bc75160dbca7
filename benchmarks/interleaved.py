"""Interleaved timing: every contender runs one block per round, in a rotating order.

Interleaving keeps ratios between contenders fair when other load on a shared
machine drifts; each block records wall and CPU seconds (all threads of this
process), so rates per CPU-second, which depend much less on that load, come
with the rates per second. Figures are medians over the blocks.

Example:

>>> blocks = run_interleaved({"a": lambda: {"tokens": 10}}, rounds=3)
>>> summary = summarize(blocks["a"], units=("tokens",))
>>> sorted(summary)[:3]
['blocks', 'max_tokens_per_second', 'median_cpu_seconds']
"""

import os
import statistics
import time
from collections.abc import Callable


def time_block(run: Callable[[], dict]) -> dict:
    """Runs ``run`` once; returns its counts plus ``seconds``, ``cpu_seconds`` and the load at the start."""
    load = os.getloadavg()[0]
    start, start_cpu = time.perf_counter(), time.process_time()
    counts = run()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    return {**counts, "seconds": seconds, "cpu_seconds": cpu_seconds, "loadavg_1min": round(load, 2)}


def run_interleaved(
    contenders: dict[str, Callable[[], dict]],
    rounds: int,
    log: Callable[[str], None] = lambda _: None,
    before: dict[str, Callable[[], None]] | None = None,
) -> dict[str, list[dict]]:
    """``rounds`` round-robin passes; round ``r`` starts with contender ``r mod n``.

    Each contender is a callable that runs one block and returns its counts
    (e.g. ``{"tokens": 1200, "texts": 64}``); ``before[name]``, if given, runs
    untimed right before each of its blocks (e.g. a warm-up). Returns the
    blocks per contender.
    """
    names = list(contenders)
    blocks: dict[str, list[dict]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            if before and name in before:
                before[name]()
            block = time_block(contenders[name])
            blocks[name].append({"round": round_index, **block})
            log(f"round {round_index + 1}/{rounds} {name}: {block['seconds']:.3f} s "
                f"({block['cpu_seconds']:.3f} CPU-s)")
    return blocks


def summarize(blocks: list[dict], units: tuple[str, ...]) -> dict:
    """Median (and min/max) rates per second and per CPU-second of each unit over ``blocks``."""
    summary = {
        "blocks": len(blocks),
        "median_seconds": round(statistics.median(b["seconds"] for b in blocks), 5),
        "median_cpu_seconds": round(statistics.median(b["cpu_seconds"] for b in blocks), 5),
    }
    for unit in units:
        per_second = [b[unit] / b["seconds"] for b in blocks]
        per_cpu = [b[unit] / b["cpu_seconds"] for b in blocks if b["cpu_seconds"] > 0]
        summary[f"median_{unit}_per_second"] = round(statistics.median(per_second), 1)
        summary[f"min_{unit}_per_second"] = round(min(per_second), 1)
        summary[f"max_{unit}_per_second"] = round(max(per_second), 1)
        summary[f"median_{unit}_per_cpu_second"] = round(statistics.median(per_cpu), 1) if per_cpu else None
    return summary


def same_round_ratio(blocks_a: list[dict], blocks_b: list[dict], unit: str) -> float | None:
    """Median over rounds of (rate of a) / (rate of b), each round's blocks paired."""
    rates_b = {b["round"]: b[unit] / b["seconds"] for b in blocks_b}
    ratios = [a[unit] / a["seconds"] / rates_b[a["round"]] for a in blocks_a if a["round"] in rates_b]
    return round(statistics.median(ratios), 3) if ratios else None
