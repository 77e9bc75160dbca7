"""tfptlm.tasks: the Keras models users fit, each on a backbone.

Example:

>>> from tfptlm.tasks import TextClassifier
>>> classifier = TextClassifier(backbone, label_names=["negative", "positive"])  # doctest: +SKIP
"""

from tfptlm.tasks.bert_pretrainer import BertPretrainer
from tfptlm.tasks.causal_lm import CausalLM
from tfptlm.tasks.question_answerer import QuestionAnswerer
from tfptlm.tasks.seq2seq_lm import Seq2SeqLM
from tfptlm.tasks.task import Task
from tfptlm.tasks.text_classifier import TextClassifier
from tfptlm.tasks.token_classifier import TokenClassifier
from tfptlm.tasks.xlnet_pretrainer import XLNetPretrainer

__all__ = [
    "BertPretrainer",
    "CausalLM",
    "QuestionAnswerer",
    "Seq2SeqLM",
    "Task",
    "TextClassifier",
    "TokenClassifier",
    "XLNetPretrainer",
]
