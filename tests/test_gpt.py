"""GPT backbone: KV-cache decoding equals the full forward pass, causality, tying, saving."""

import numpy as np
import pytest
import tensorflow as tf

import tfptlm  # noqa: F401  (sets KERAS_BACKEND before keras is imported)
import keras

from tfptlm.models.gpt import GPT_SIZES, GPTBackbone

VOCAB, HIDDEN, LAYERS, HEADS, FFN, MAX_LEN = 50, 32, 2, 2, 64, 16
ATOL = 1e-5


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def randomize(model, scale=0.3):
    """Larger-than-init random weights, so logits (and greedy choices) differ clearly."""
    for i, weight in enumerate(model.weights):
        weight.assign(rand(*weight.shape, seed=100 + i) * scale + (1.0 if "gamma" in weight.path else 0.0))


def tiny_gpt(**overrides):
    settings = dict(num_layers=LAYERS, num_heads=HEADS, hidden_dim=HIDDEN,
                    intermediate_dim=FFN, max_sequence_length=MAX_LEN, dropout=0.0)
    settings.update(overrides)
    return GPTBackbone(vocabulary_size=VOCAB, **settings)


@pytest.fixture(scope="module")
def gpt():
    model = tiny_gpt()
    randomize(model)
    return model


def token_ids(batch=2, length=10, seed=0):
    return np.random.default_rng(seed).integers(1, VOCAB, (batch, length)).astype("int32")


def full_logits(model, ids):
    hidden = model({"token_ids": ids, "padding_mask": np.ones_like(ids)})["sequence_output"]
    return np.asarray(model.logits(hidden))


def cached_logits(model, ids, prefill, max_length=MAX_LEN):
    """Prefill of the first `prefill` tokens, then one token per step."""
    cache = model.init_cache(ids.shape[0], max_length)
    logits, _, cache = model.call_with_cache(ids[:, :prefill], cache, 0)
    outputs = [np.asarray(logits)]
    for index in range(prefill, ids.shape[1]):
        logits, _, cache = model.call_with_cache(ids[:, index : index + 1], cache, index)
        outputs.append(np.asarray(logits))
    return np.concatenate(outputs, axis=1), cache


def test_named_sizes_and_unknown_size():
    assert GPT_SIZES["tiny"] == dict(num_layers=2, hidden_dim=128, num_heads=2, intermediate_dim=512)
    assert GPT_SIZES["base"] == dict(num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072)
    model = GPTBackbone.from_size("tiny", vocabulary_size=VOCAB, num_layers=1, max_sequence_length=8)
    assert (model.num_layers, model.hidden_dim, model.max_sequence_length) == (1, 128, 8)
    with pytest.raises(ValueError, match="unknown GPT size 'huge'"):
        GPTBackbone.from_size("huge", vocabulary_size=VOCAB)


@pytest.mark.parametrize("prefill", [1, 4])
def test_cached_decoding_equals_full_forward_pass(gpt, prefill):
    ids = token_ids()
    expected = full_logits(gpt, ids)
    assert expected.shape == (2, 10, VOCAB) and expected.dtype == np.float32
    actual, cache = cached_logits(gpt, ids, prefill)
    np.testing.assert_allclose(actual, expected, atol=ATOL)
    assert tuple(cache.shape) == (2, LAYERS, 2, MAX_LEN, HEADS, HIDDEN // HEADS)
    # Every one of the 10 written positions holds keys/values; the rest stay zero.
    cache = np.asarray(cache)
    np.testing.assert_array_equal(cache[:, :, :, 10:], 0.0)
    assert np.abs(cache[:, :, :, :10]).max(axis=(0, 1, 2, 4, 5)).min() > 0


def test_greedy_decoding_with_cache_equals_recomputing(gpt):
    prompt, steps = token_ids(length=3, seed=1), 8
    recomputed = prompt
    for _ in range(steps):
        next_token = full_logits(gpt, recomputed)[:, -1].argmax(-1).astype("int32")
        recomputed = np.concatenate([recomputed, next_token[:, None]], axis=1)

    cache = gpt.init_cache(2, MAX_LEN)
    logits, _, cache = gpt.call_with_cache(prompt, cache, 0)
    generated = prompt
    for index in range(prompt.shape[1], prompt.shape[1] + steps):
        next_token = np.asarray(logits)[:, -1].argmax(-1).astype("int32")[:, None]
        generated = np.concatenate([generated, next_token], axis=1)
        logits, _, cache = gpt.call_with_cache(next_token, cache, index)
    np.testing.assert_array_equal(generated, recomputed)
    assert len(np.unique(generated[:, 3:])) > 1  # a non-trivial continuation


def test_compiled_decoding_step_matches_eager(gpt):
    ids = token_ids(length=5, seed=2)
    cache = gpt.init_cache(2, MAX_LEN)
    _, _, cache = gpt.call_with_cache(ids[:, :4], cache, 0)
    step = tf.function(gpt.call_with_cache, jit_compile=True)
    compiled_logits, _, compiled_cache = step(ids[:, 4:], cache, tf.constant(4))
    logits, _, new_cache = gpt.call_with_cache(ids[:, 4:], cache, 4)
    np.testing.assert_allclose(np.asarray(compiled_logits), np.asarray(logits), atol=ATOL)
    np.testing.assert_allclose(np.asarray(compiled_cache), np.asarray(new_cache), atol=ATOL)


def test_later_tokens_do_not_change_earlier_outputs(gpt):
    ids = token_ids(length=8)
    changed = ids.copy()
    changed[:, 5:] = (changed[:, 5:] + 7) % VOCAB
    before, after = full_logits(gpt, ids), full_logits(gpt, changed)
    np.testing.assert_allclose(before[:, :5], after[:, :5], atol=ATOL)
    assert not np.allclose(before[:, 5:], after[:, 5:], atol=1e-3)


def test_padded_positions_do_not_change_real_ones(gpt):
    ids = token_ids(length=8)
    mask = np.array([[1] * 8, [1] * 5 + [0] * 3], "int32")
    changed = np.where(mask == 1, ids, 3).astype("int32")
    outputs = [
        np.asarray(gpt({"token_ids": x, "padding_mask": mask})["sequence_output"]) for x in (ids, changed)
    ]
    np.testing.assert_allclose(outputs[0][mask == 1], outputs[1][mask == 1], atol=ATOL)


def test_logits_are_tied_to_the_token_embedding_and_weight_count(gpt):
    ids = token_ids()
    hidden = np.asarray(gpt({"token_ids": ids, "padding_mask": np.ones_like(ids)})["sequence_output"])
    embedding = gpt.token_embedding.embeddings.numpy()
    np.testing.assert_allclose(np.asarray(gpt.logits(hidden)), hidden @ embedding.T, atol=ATOL)
    assert not any("output_kernel" in w.path for w in gpt.weights)
    h, f = HIDDEN, FFN
    per_block = 4 * (h * h + h) + (h * f + f) + (f * h + h) + 2 * 2 * h  # attention, FFN, 2 LNs
    expected = VOCAB * h + MAX_LEN * h + LAYERS * per_block + 2 * h
    assert gpt.count_params() == expected


def test_inputs_longer_than_max_sequence_length_are_rejected(gpt):
    ids = token_ids(length=MAX_LEN + 1)
    with pytest.raises(ValueError, match="max_sequence_length"):
        gpt({"token_ids": ids, "padding_mask": np.ones_like(ids)})
    with pytest.raises(ValueError, match="max_sequence_length"):
        gpt.init_cache(1, MAX_LEN + 1)


def test_keras_save_and_load_round_trip(gpt, tmp_path):
    path = tmp_path / "gpt.keras"
    gpt.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, GPTBackbone)
    assert restored.get_config() == gpt.get_config()
    assert restored.lm_head.token_embedding is restored.token_embedding
    ids = token_ids()
    np.testing.assert_allclose(full_logits(restored, ids), full_logits(gpt, ids), atol=1e-6)
    np.testing.assert_allclose(
        cached_logits(restored, ids, 4)[0], cached_logits(gpt, ids, 4)[0], atol=1e-6
    )
