"""tfptlm.data: corpus readers, pretraining objectives and tf.data pipelines."""

from tfptlm.data.objectives import MaskedLMMasker, NextSentencePairer
from tfptlm.data.pretraining_dataset import make_bert_pretraining_dataset
from tfptlm.data.text_corpus import (
    CorpusError,
    expand_file_patterns,
    read_documents,
    split_sentences,
    validate_for_nsp,
)
from tfptlm.data.tokenized_corpus import TokenizedCorpus, count_examples

__all__ = [
    "CorpusError",
    "MaskedLMMasker",
    "NextSentencePairer",
    "TokenizedCorpus",
    "count_examples",
    "expand_file_patterns",
    "make_bert_pretraining_dataset",
    "read_documents",
    "split_sentences",
    "validate_for_nsp",
]
