"""tfptlm.models: backbones (BERT, GPT, T5, BART) and the keras-hub adapter.

Example:
    >>> from tfptlm.models import GPTBackbone
    >>> backbone = GPTBackbone.from_size("tiny", vocabulary_size=8000)
"""

from tfptlm.models.bart import BartBackbone
from tfptlm.models.bert import BertBackbone
from tfptlm.models.gpt import GPTBackbone
from tfptlm.models.seq2seq import Seq2SeqBackbone
from tfptlm.models.t5 import T5Backbone

__all__ = ["BartBackbone", "BertBackbone", "GPTBackbone", "Seq2SeqBackbone", "T5Backbone"]
