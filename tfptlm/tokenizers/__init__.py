"""tfptlm.tokenizers: train and use subword tokenizers.

Example:

>>> from tfptlm.tokenizers import WordPieceTokenizer, train_wordpiece_vocabulary
>>> vocab = train_wordpiece_vocabulary("corpus.txt", vocab_size=8000)  # doctest: +SKIP
>>> tokenizer = WordPieceTokenizer(vocab)                              # doctest: +SKIP
>>> tokenizer(["Hello world!"])                                        # doctest: +SKIP
"""

from tfptlm.tokenizers.wordpiece import WordPieceTokenizer
from tfptlm.tokenizers.wordpiece_trainer import train_wordpiece_vocabulary

__all__ = ["WordPieceTokenizer", "train_wordpiece_vocabulary"]
