"""The last encoder block computing only chosen positions gives the same values."""

import numpy as np
import pytest

from tfptlm.layers import TransformerEncoderBlock
from tfptlm.layers.gather import gather_positions
from tfptlm.models import AlbertBackbone, BertBackbone, RobertaBackbone
from tfptlm.tasks import BertPretrainer

RNG = np.random.default_rng(0)
POSITIONS = np.array([[1, 4, 0], [5, 2, 2]], "int32")


def inputs(length=6, vocabulary=50):
    padding_mask = np.ones((2, length), "int32")
    padding_mask[1, 4:] = 0
    return {
        "token_ids": RNG.integers(1, vocabulary, (2, length)).astype("int32"),
        "segment_ids": np.concatenate([np.zeros((2, 3)), np.ones((2, length - 3))], 1).astype("int32"),
        "padding_mask": padding_mask,
    }


def test_gather_positions_matches_numpy():
    x = np.arange(2 * 6 * 3).reshape(2, 6, 3).astype("float32")
    expected = np.stack([x[b, POSITIONS[b]] for b in range(2)])
    np.testing.assert_array_equal(np.asarray(gather_positions(x, POSITIONS)), expected)
    mask = RNG.integers(0, 2, (2, 6, 6))
    np.testing.assert_array_equal(
        np.asarray(gather_positions(mask, POSITIONS)), np.stack([mask[b, POSITIONS[b]] for b in range(2)])
    )


@pytest.mark.parametrize("norm_first", [False, True])
def test_block_query_positions_equal_gathered_full_output(norm_first):
    block = TransformerEncoderBlock(num_heads=2, intermediate_dim=32, norm_first=norm_first)
    x = RNG.normal(size=(2, 6, 16)).astype("float32")
    padding_mask = inputs()["padding_mask"]
    attention_mask = RNG.integers(0, 2, (2, 6, 6)) | np.eye(6, dtype=int)
    full = block(x, padding_mask=padding_mask, attention_mask=attention_mask)
    sparse = block(x, padding_mask=padding_mask, attention_mask=attention_mask, query_positions=POSITIONS)
    assert tuple(sparse.shape) == (2, 3, 16)
    np.testing.assert_allclose(sparse, gather_positions(full, POSITIONS), atol=1e-5)


def test_block_query_positions_refuse_attention_bias():
    block = TransformerEncoderBlock(num_heads=2, intermediate_dim=32)
    x = np.zeros((1, 4, 8), "float32")
    with pytest.raises(ValueError, match="attention_bias"):
        block(x, attention_bias=np.zeros((1, 2, 4, 4), "float32"), query_positions=np.array([[0]]))


BACKBONES = {
    "bert": lambda: BertBackbone(50, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32),
    "bert_pre_ln": lambda: BertBackbone(
        50, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32, norm_first=True
    ),
    "roberta": lambda: RobertaBackbone(50, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32),
    "albert": lambda: AlbertBackbone(
        50, num_layers=3, num_heads=2, hidden_dim=16, intermediate_dim=32, embedding_dim=8
    ),
}


@pytest.mark.parametrize("family", sorted(BACKBONES))
def test_backbone_outputs_at_positions_equal_gathered_outputs(family):
    backbone = BACKBONES[family]()
    batch = inputs()
    full = backbone(batch, training=False)
    sparse = backbone.outputs_at_positions(batch, POSITIONS)
    np.testing.assert_allclose(
        sparse["sequence_output"], gather_positions(full["sequence_output"], POSITIONS), atol=1e-5
    )
    np.testing.assert_allclose(sparse["pooled_output"], full["pooled_output"], atol=1e-5)


def test_pretrainer_logits_equal_full_backbone_path():
    backbone = BACKBONES["bert"]()
    pretrainer = BertPretrainer(backbone)
    batch = inputs()
    outputs = pretrainer({**batch, "mask_positions": POSITIONS}, training=False)
    features = backbone(batch, training=False)
    expected = pretrainer.mlm_head(features["sequence_output"], POSITIONS)
    np.testing.assert_allclose(outputs["mlm"], expected, atol=1e-5)
    np.testing.assert_allclose(
        outputs["nsp"], pretrainer.sentence_head(features["pooled_output"]), atol=1e-5
    )
