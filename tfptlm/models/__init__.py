"""tfptlm.models: backbones (BERT, ALBERT, RoBERTa, XLNet, GPT, T5, BART) and the keras-hub adapter.

Example:
    >>> from tfptlm.models import GPTBackbone
    >>> backbone = GPTBackbone.from_size("tiny", vocabulary_size=8000)
"""

from tfptlm.models.albert import AlbertBackbone
from tfptlm.models.bart import BartBackbone
from tfptlm.models.bert import BertBackbone
from tfptlm.models.gpt import GPTBackbone
from tfptlm.models.roberta import RobertaBackbone
from tfptlm.models.seq2seq import Seq2SeqBackbone
from tfptlm.models.t5 import T5Backbone
from tfptlm.models.xlnet import XLNetBackbone

__all__ = [
    "AlbertBackbone",
    "BartBackbone",
    "BertBackbone",
    "GPTBackbone",
    "RobertaBackbone",
    "Seq2SeqBackbone",
    "T5Backbone",
    "XLNetBackbone",
]
