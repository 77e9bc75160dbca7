"""tfptlm.data: corpus, labelled-file and text-pair readers, objectives, tf.data pipelines."""

from tfptlm.data.classification_inputs import TextClassificationPreprocessor
from tfptlm.data.conll import TaggedSentence, convert_tags, read_conll, tags_to_spans
from tfptlm.data.data_errors import DataFileError, ReadResult
from tfptlm.data.labeled_files import LabeledText, infer_label_names, read_labeled_file
from tfptlm.data.objectives import (
    FullSentencePacker,
    MaskedLMMasker,
    NextSentencePairer,
    SentenceOrderPairer,
    WholeWordMasker,
    make_clm_dataset,
    make_span_corruption_dataset,
    make_text_infilling_dataset,
    validate_for_full_sentences,
    validate_for_sop,
)
from tfptlm.data.question_answering_inputs import QuestionAnsweringPreprocessor
from tfptlm.data.squad import QAExample, read_squad
from tfptlm.data.text_pairs import (
    CodeTask,
    TextPair,
    read_dialogues,
    read_mbpp,
    read_pair_columns,
    read_parallel_files,
)
from tfptlm.data.token_classification_inputs import TokenClassificationPreprocessor
from tfptlm.data.objectives.plm import make_plm_dataset
from tfptlm.data.pretraining_dataset import (
    build_masker,
    make_bert_pretraining_dataset,
    make_masked_lm_dataset,
)
from tfptlm.data.text_corpus import (
    CorpusError,
    expand_file_patterns,
    read_documents,
    split_sentences,
    validate_for_nsp,
)
from tfptlm.data.tokenized_corpus import TokenizedCorpus, count_examples

__all__ = [
    "CodeTask",
    "CorpusError",
    "DataFileError",
    "LabeledText",
    "QAExample",
    "QuestionAnsweringPreprocessor",
    "ReadResult",
    "TaggedSentence",
    "TextClassificationPreprocessor",
    "TextPair",
    "TokenClassificationPreprocessor",
    "WholeWordMasker",
    "build_masker",
    "convert_tags",
    "infer_label_names",
    "read_conll",
    "read_dialogues",
    "read_labeled_file",
    "read_mbpp",
    "read_pair_columns",
    "read_parallel_files",
    "read_squad",
    "tags_to_spans",
    "FullSentencePacker",
    "MaskedLMMasker",
    "NextSentencePairer",
    "SentenceOrderPairer",
    "TokenizedCorpus",
    "count_examples",
    "expand_file_patterns",
    "make_bert_pretraining_dataset",
    "make_clm_dataset",
    "make_masked_lm_dataset",
    "make_plm_dataset",
    "make_span_corruption_dataset",
    "make_text_infilling_dataset",
    "read_documents",
    "split_sentences",
    "validate_for_full_sentences",
    "validate_for_nsp",
    "validate_for_sop",
]
