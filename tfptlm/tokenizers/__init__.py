"""tfptlm.tokenizers: train and use subword tokenizers.

Three kinds share one interface (`tokenize`, `detokenize`, special ids,
`save`/`load`): WordPiece (BERT), SentencePiece (T5, ALBERT) and byte-level
BPE (GPT-2, RoBERTa, BART).

Example:

>>> from tfptlm.tokenizers import load_tokenizer, train_tokenizer
>>> tokenizer = train_tokenizer("sentencepiece", "corpus.txt", 8000)  # doctest: +SKIP
>>> tokenizer.save("my_tokenizer")                                    # doctest: +SKIP
>>> load_tokenizer("my_tokenizer")(["Hello world!"])                  # doctest: +SKIP
"""

from tfptlm.tokenizers.byte_bpe import BytePairTokenizer, train_byte_bpe
from tfptlm.tokenizers.loading import load_tokenizer, train_tokenizer
from tfptlm.tokenizers.sentencepiece import SentencePieceTokenizer, train_sentencepiece
from tfptlm.tokenizers.wordpiece import WordPieceTokenizer
from tfptlm.tokenizers.wordpiece_trainer import train_wordpiece_vocabulary

__all__ = [
    "BytePairTokenizer",
    "SentencePieceTokenizer",
    "WordPieceTokenizer",
    "load_tokenizer",
    "train_byte_bpe",
    "train_sentencepiece",
    "train_tokenizer",
    "train_wordpiece_vocabulary",
]
