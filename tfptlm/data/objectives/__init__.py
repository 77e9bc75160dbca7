"""Pretraining objectives as in-graph, per-epoch-random transforms."""

from tfptlm.data.objectives.mlm import MaskedLMMasker
from tfptlm.data.objectives.nsp import NextSentencePairer, build_pair_inputs, truncate_pair

__all__ = ["MaskedLMMasker", "NextSentencePairer", "build_pair_inputs", "truncate_pair"]
