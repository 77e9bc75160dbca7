"""T5 and BART backbones: cached decoding equals the full pass, masking, tying, saving."""

import numpy as np
import pytest

import tfptlm  # noqa: F401  (sets KERAS_BACKEND before keras is imported)
import keras

from tfptlm.models.bart import BART_SIZES, BartBackbone
from tfptlm.models.t5 import T5_SIZES, T5Backbone

VOCAB, HIDDEN, LAYERS, HEADS, FFN, MAX_LEN = 50, 32, 2, 2, 64, 16
SOURCE, TARGET = 7, 9
ATOL = 1e-5

CONFIGS = {
    "t5": (T5Backbone, {}),
    "t5_1_1": (T5Backbone, dict(feed_forward="gated_gelu", tie_embeddings=False)),
    "bart": (BartBackbone, dict(max_sequence_length=MAX_LEN)),
}


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def make(name):
    cls, overrides = CONFIGS[name]
    model = cls(vocabulary_size=VOCAB, num_layers=LAYERS, num_heads=HEADS, hidden_dim=HIDDEN,
                intermediate_dim=FFN, dropout=0.0, **overrides)
    # Larger-than-init random weights (norm scales around 1) so outputs and
    # greedy choices differ clearly between positions.
    for i, weight in enumerate(model.weights):
        one = 1.0 if weight.path.endswith(("gamma", "scale")) else 0.0
        weight.assign(one + rand(*weight.shape, seed=100 + i) * 0.2)
    return model


@pytest.fixture(scope="module", params=list(CONFIGS))
def backbone(request):
    return make(request.param)


def batch(seed=0):
    rng = np.random.default_rng(seed)
    source_mask = np.array([[1] * SOURCE, [1] * 5 + [0] * 2], "int32")
    return {
        "encoder_token_ids": rng.integers(1, VOCAB, (2, SOURCE)).astype("int32") * source_mask,
        "encoder_padding_mask": source_mask,
        "decoder_token_ids": rng.integers(1, VOCAB, (2, TARGET)).astype("int32"),
        "decoder_padding_mask": np.ones((2, TARGET), "int32"),
    }


def full_logits(model, inputs):
    return np.asarray(model.logits(model(inputs)["decoder_sequence_output"]))


def with_decoder_ids(inputs, ids):
    return dict(inputs, decoder_token_ids=ids, decoder_padding_mask=np.ones_like(ids))


def test_named_sizes_and_unknown_size():
    assert T5_SIZES["small"] == dict(num_layers=6, hidden_dim=512, num_heads=8, intermediate_dim=2048)
    assert T5_SIZES["base"] == dict(num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072)
    assert BART_SIZES["base"] == dict(num_layers=6, hidden_dim=768, num_heads=12, intermediate_dim=3072)
    assert T5_SIZES["tiny"] == BART_SIZES["tiny"] == dict(
        num_layers=2, hidden_dim=128, num_heads=2, intermediate_dim=512
    )
    with pytest.raises(ValueError, match="unknown T5 size 'huge'"):
        T5Backbone.from_size("huge", vocabulary_size=VOCAB)
    with pytest.raises(ValueError, match="unknown BART size 'huge'"):
        BartBackbone.from_size("huge", vocabulary_size=VOCAB)
    with pytest.raises(ValueError, match="feed_forward"):
        T5Backbone(VOCAB, 1, 2, 32, 64, feed_forward="swish")


def test_outputs_and_encode(backbone):
    inputs = batch()
    outputs = backbone(inputs)
    assert outputs["encoder_sequence_output"].shape == (2, SOURCE, HIDDEN)
    assert outputs["decoder_sequence_output"].shape == (2, TARGET, HIDDEN)
    encoded = backbone.encode(inputs["encoder_token_ids"], inputs["encoder_padding_mask"])
    np.testing.assert_allclose(np.asarray(encoded), outputs["encoder_sequence_output"], atol=ATOL)


def cached_logits(model, ids, encoder_outputs, source_mask, prefill, cross=None):
    """Prefill of the first `prefill` decoder tokens, then one token per step."""
    cache = model.init_cache(2, MAX_LEN)
    logits, hidden, cache = model.call_decoder_with_cache(
        ids[:, :prefill], encoder_outputs, source_mask, cache, 0, cross_attention_cache=cross
    )
    assert hidden.shape == (2, prefill, HIDDEN)
    outputs = [np.asarray(logits)]
    for index in range(prefill, ids.shape[1]):
        logits, _, cache = model.call_decoder_with_cache(
            ids[:, index : index + 1], encoder_outputs, source_mask, cache, index,
            cross_attention_cache=cross,
        )
        outputs.append(np.asarray(logits))
    assert tuple(cache.shape) == (2, LAYERS, 2, MAX_LEN, HEADS, HIDDEN // HEADS)
    np.testing.assert_array_equal(np.asarray(cache)[:, :, :, ids.shape[1] :], 0.0)
    return np.concatenate(outputs, axis=1)


def test_cached_decoding_equals_full_forward_pass(backbone):
    inputs = batch()
    expected = full_logits(backbone, inputs)
    assert expected.shape == (2, TARGET, VOCAB) and expected.dtype == np.float32
    source_mask, ids = inputs["encoder_padding_mask"], inputs["decoder_token_ids"]
    encoder_outputs = backbone.encode(inputs["encoder_token_ids"], source_mask)
    # Cross-attention keys/values recomputed from the encoder outputs at every step.
    actual = cached_logits(backbone, ids, encoder_outputs, source_mask, prefill=3)
    np.testing.assert_allclose(actual, expected, atol=ATOL)
    # ... or projected once; the encoder outputs are then not needed.
    cross = backbone.compute_cross_attention_cache(encoder_outputs)
    assert tuple(cross.shape) == (2, LAYERS, 2, SOURCE, HEADS, HIDDEN // HEADS)
    actual = cached_logits(backbone, ids, None, source_mask, prefill=1, cross=cross)
    np.testing.assert_allclose(actual, expected, atol=ATOL)


def test_greedy_decoding_with_cache_equals_recomputing(backbone):
    inputs, steps = batch(seed=1), 6
    start = np.array([[1, 5], [1, 6]], "int32")  # a two-token decoder prompt
    recomputed = start
    for _ in range(steps):
        next_token = full_logits(backbone, with_decoder_ids(inputs, recomputed))[:, -1].argmax(-1)
        recomputed = np.concatenate([recomputed, next_token[:, None].astype("int32")], axis=1)

    source_mask = inputs["encoder_padding_mask"]
    encoder_outputs = backbone.encode(inputs["encoder_token_ids"], source_mask)
    cross = backbone.compute_cross_attention_cache(encoder_outputs)
    cache = backbone.init_cache(2, MAX_LEN)
    logits, _, cache = backbone.call_decoder_with_cache(
        start, None, source_mask, cache, 0, cross_attention_cache=cross
    )
    generated = start
    for index in range(start.shape[1], start.shape[1] + steps):
        next_token = np.asarray(logits)[:, -1].argmax(-1).astype("int32")[:, None]
        generated = np.concatenate([generated, next_token], axis=1)
        logits, _, cache = backbone.call_decoder_with_cache(
            next_token, None, source_mask, cache, index, cross_attention_cache=cross
        )
    np.testing.assert_array_equal(generated, recomputed)
    assert len(np.unique(generated[:, 2:])) > 1  # a non-trivial continuation


def test_later_decoder_tokens_do_not_change_earlier_outputs(backbone):
    inputs = batch()
    changed = inputs["decoder_token_ids"].copy()
    changed[:, 5:] = (changed[:, 5:] + 7) % VOCAB
    before = full_logits(backbone, inputs)
    after = full_logits(backbone, with_decoder_ids(inputs, changed))
    np.testing.assert_allclose(before[:, :5], after[:, :5], atol=ATOL)
    assert not np.allclose(before[:, 5:], after[:, 5:], atol=1e-3)


def test_padded_encoder_tokens_do_not_change_decoder_outputs(backbone):
    inputs = batch()
    mask = inputs["encoder_padding_mask"]
    changed = dict(inputs, encoder_token_ids=np.where(mask == 1, inputs["encoder_token_ids"], 9))
    before, after = backbone(inputs), backbone(changed)
    np.testing.assert_allclose(
        after["decoder_sequence_output"], before["decoder_sequence_output"], atol=ATOL
    )
    real = mask == 1
    np.testing.assert_allclose(
        np.asarray(after["encoder_sequence_output"])[real],
        np.asarray(before["encoder_sequence_output"])[real],
        atol=ATOL,
    )
    # A real encoder token does reach the decoder.
    changed_real = dict(inputs, encoder_token_ids=(inputs["encoder_token_ids"] + 1) % VOCAB)
    assert not np.allclose(
        backbone(changed_real)["decoder_sequence_output"], before["decoder_sequence_output"]
    )


def test_logits_formula_and_shared_embedding(backbone):
    hidden = rand(2, 3, HIDDEN, seed=5)
    embedding = backbone.token_embedding.embeddings.numpy()
    head = backbone.lm_head
    if isinstance(backbone, BartBackbone):
        expected = hidden @ embedding.T + head.output_bias.numpy()
        assert backbone.decoder_embeddings.token_embedding is backbone.token_embedding
    elif backbone.tie_embeddings:
        expected = (hidden * HIDDEN**-0.5) @ embedding.T
    else:
        expected = hidden @ head.output_kernel.numpy()
    np.testing.assert_allclose(np.asarray(backbone.logits(hidden)), expected, atol=ATOL)
    # One token table, shared by the encoder, the decoder and a tied output.
    tables = [w for w in backbone.weights if w.shape == (VOCAB, HIDDEN)]
    assert len(tables) == 1 and tables[0] is backbone.token_embedding.embeddings
    if isinstance(backbone, T5Backbone):
        assert not any(w.path.endswith("bias") for w in backbone.weights)  # no biases in T5
        assert [w.path for w in backbone.weights if "relative_bias" in w.path] == [
            "encoder_relative_bias/embeddings", "decoder_relative_bias/embeddings"
        ]


def test_keras_save_and_load_round_trip(backbone, tmp_path):
    if isinstance(backbone, T5Backbone) and backbone.tie_embeddings:
        pytest.skip("the tied head reloads as in BART and GPT; T5 is covered by t5_1_1")
    path = tmp_path / "backbone.keras"
    backbone.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is type(backbone)
    assert restored.get_config() == backbone.get_config()
    inputs = batch()
    np.testing.assert_allclose(full_logits(restored, inputs), full_logits(backbone, inputs), atol=1e-6)
    if restored.lm_head.token_embedding is not None:
        assert restored.lm_head.token_embedding is restored.token_embedding


def test_from_size_overrides_and_max_sequence_length():
    model = BartBackbone.from_size(
        "tiny", vocabulary_size=VOCAB, num_layers=1, hidden_dim=16, intermediate_dim=None,
        max_sequence_length=8,
    )
    assert (model.num_layers, model.hidden_dim, model.num_heads, model.intermediate_dim) == (
        1, 16, 2, 512
    )
    assert len(model.encoder_blocks) == len(model.decoder_blocks) == 1
    inputs = batch()  # decoder length 9 > 8
    with pytest.raises(ValueError, match="max_sequence_length"):
        model(inputs)
    with pytest.raises(ValueError, match="max_sequence_length"):
        model.init_cache(1, 9)
