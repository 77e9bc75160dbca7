"""Pretraining objectives as in-graph, per-epoch-random transforms."""

from tfptlm.data.objectives.clm import make_clm_dataset, pack_into_blocks, tokenize_documents
from tfptlm.data.objectives.full_sentences import (
    FullSentencePacker,
    pack_full_sentences,
    validate_for_full_sentences,
)
from tfptlm.data.objectives.mlm import MaskedLMMasker
from tfptlm.data.objectives.nsp import NextSentencePairer, build_pair_inputs, truncate_pair
from tfptlm.data.objectives.sop import SentenceOrderPairer, validate_for_sop
from tfptlm.data.objectives.span_corruption import (
    encoder_decoder_example,
    make_span_corruption_dataset,
    noise_span_mask,
    span_corruption,
    span_corruption_lengths,
)
from tfptlm.data.objectives.whole_word import (
    WholeWordMasker,
    flag_continuations,
    remove_continuation_flags,
)
from tfptlm.data.objectives.text_infilling import (
    make_text_infilling_dataset,
    permute_sentences,
    text_infilling,
)

__all__ = [
    "FullSentencePacker",
    "MaskedLMMasker",
    "NextSentencePairer",
    "SentenceOrderPairer",
    "build_pair_inputs",
    "encoder_decoder_example",
    "make_clm_dataset",
    "make_span_corruption_dataset",
    "make_text_infilling_dataset",
    "noise_span_mask",
    "pack_full_sentences",
    "pack_into_blocks",
    "permute_sentences",
    "span_corruption",
    "span_corruption_lengths",
    "text_infilling",
    "WholeWordMasker",
    "flag_continuations",
    "remove_continuation_flags",
    "tokenize_documents",
    "truncate_pair",
    "validate_for_full_sentences",
    "validate_for_sop",
]
