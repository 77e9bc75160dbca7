"""tfptlm.layers: attention, embeddings, Transformer blocks and heads.

Example:
    >>> from tfptlm.layers import TransformerEmbeddings, TransformerEncoderBlock
    >>> embeddings = TransformerEmbeddings(vocabulary_size=100, hidden_dim=32)
    >>> block = TransformerEncoderBlock(num_heads=2, intermediate_dim=64)
    >>> hidden = block(embeddings(np.array([[1, 2, 3]])))
"""

from tfptlm.layers.activations import gelu_approximate
from tfptlm.layers.attention import (
    MultiHeadAttention,
    causal_mask,
    merge_masks,
    scaled_dot_product_attention,
)
from tfptlm.layers.decoder_block import TransformerDecoderBlock
from tfptlm.layers.embeddings import TransformerEmbeddings
from tfptlm.layers.encoder_block import TransformerEncoderBlock
from tfptlm.layers.heads import LanguageModelHead, MaskedLMHead
from tfptlm.layers.initializers import DEFAULT_INITIALIZER, clone_initializer
from tfptlm.layers.normalization import RMSNormalization
from tfptlm.layers.relative_attention import (
    RelativeAttention,
    RelativeAttentionBlock,
    RelativePositionEncoding,
)
from tfptlm.layers.relative_position import RelativePositionBias, relative_position_bucket

__all__ = [
    "DEFAULT_INITIALIZER",
    "LanguageModelHead",
    "MaskedLMHead",
    "MultiHeadAttention",
    "RMSNormalization",
    "RelativeAttention",
    "RelativeAttentionBlock",
    "RelativePositionBias",
    "RelativePositionEncoding",
    "TransformerDecoderBlock",
    "TransformerEmbeddings",
    "TransformerEncoderBlock",
    "causal_mask",
    "clone_initializer",
    "gelu_approximate",
    "merge_masks",
    "relative_position_bucket",
    "scaled_dot_product_attention",
]
