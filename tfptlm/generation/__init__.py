"""Decoding loop with key/value cache and samplers: greedy, random, top-k, top-p, beam.

See `tfptlm.generation.decoding` for the `step_fn` / prefill / cache contract.
"""

from tfptlm.generation.decoding import StepFn, compile_generate_fn, generate
from tfptlm.generation.samplers import (
    BeamSampler,
    GreedySampler,
    RandomSampler,
    Sampler,
    TopKSampler,
    TopPSampler,
    get_sampler,
)

__all__ = [
    "BeamSampler",
    "GreedySampler",
    "RandomSampler",
    "Sampler",
    "StepFn",
    "TopKSampler",
    "TopPSampler",
    "compile_generate_fn",
    "generate",
    "get_sampler",
]
