"""Decoding loop and samplers on a toy trigram "model" whose cache holds the fed tokens."""

import itertools

import numpy as np
import pytest
from keras import ops

from tfptlm.generation import (
    BeamSampler,
    GreedySampler,
    RandomSampler,
    TopKSampler,
    TopPSampler,
    compile_generate_fn,
    generate,
    get_sampler,
)


def make_model(table, bias, max_length, calls=None):
    """Returns (step_fn, empty cache) of a trigram model: logits = table[prev2, prev1] + bias[row].

    The cache is {"history": [B, L] tokens fed so far (V = unfilled), "bias": [B, V]}, so
    generations are only right if the loop threads, repeats and reorders the cache rows.
    """
    vocab = table.shape[1]
    flat = ops.convert_to_tensor(table.reshape(-1, vocab))

    def step_fn(token_ids, cache, index):
        if calls is not None:
            calls.append(index)
        tokens = token_ids[:, 0]
        history = ops.where(ops.arange(max_length) == index, tokens[:, None], cache["history"])
        prev = ops.where(index > 0, ops.take(history, ops.maximum(index - 1, 0), axis=1), vocab)
        logits = ops.take(flat, prev * vocab + tokens, axis=0) + cache["bias"]
        return logits, {"history": history, "bias": cache["bias"]}

    cache = {
        "history": np.full((len(bias), max_length), vocab, "int32"),
        "bias": np.asarray(bias, "float32"),
    }
    return step_fn, cache


def random_model(seed, vocab, batch, max_length, scale=2.0):
    rng = np.random.default_rng(seed)
    table = rng.normal(scale=scale, size=(vocab + 1, vocab, vocab)).astype("float32")
    bias = rng.normal(size=(batch, vocab)).astype("float32")
    return table, bias


def np_log_probs(table, bias_row, seq):
    prev = seq[-2] if len(seq) >= 2 else table.shape[1]
    logits = table[prev, seq[-1]] + bias_row
    return logits - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()


def np_greedy(table, bias_row, prompt, max_length, stops=()):
    seq = list(prompt)
    while len(seq) < max_length:
        seq.append(int(np.argmax(np_log_probs(table, bias_row, seq))))
        if seq[-1] in stops:
            break
    return seq


def brute_force(table, bias_row, prompt, max_length, stops=(), alpha=0.0):
    """All (score, sequence) continuations under the documented beam score, best first."""
    ranked = []
    room = max_length - len(prompt)
    for n in range(1, room + 1):
        for gen in itertools.product(range(table.shape[1]), repeat=n):
            if any(t in stops for t in gen[:-1]) or (n < room and gen[-1] not in stops):
                continue
            seq, total = list(prompt), 0.0
            for token in gen:
                total += np_log_probs(table, bias_row, seq)[token]
                seq.append(token)
            ranked.append((total / n**alpha, seq))
    return sorted(ranked, key=lambda item: -item[0])


def pad(rows, max_length, value=0):
    return np.array([list(r) + [value] * (max_length - len(r)) for r in rows], "int32")


def as_lists(out):
    ids, lengths = np.asarray(out["token_ids"]), np.asarray(out["lengths"])
    return [list(row[:n]) for row, n in zip(ids, lengths)]


PROMPTS = [[3], [1, 4, 2], [0, 5]]


def test_greedy_matches_numpy_argmax_chain_with_variable_prompts():
    vocab, max_length = 8, 7
    table, bias = random_model(0, vocab, len(PROMPTS), max_length)
    step_fn, cache = make_model(table, bias, max_length)
    out = generate(step_fn, pad(PROMPTS, max_length), [len(p) for p in PROMPTS], cache, "greedy")
    assert as_lists(out) == [np_greedy(table, b, p, max_length) for b, p in zip(bias, PROMPTS)]
    assert np.asarray(out["lengths"]).tolist() == [max_length] * 3


def test_stop_tokens_end_rows_pad_after_and_exit_early():
    vocab, max_length, pad_id = 8, 9, 7
    table, bias = random_model(1, vocab, len(PROMPTS), max_length)
    stops = (2, 5)  # row 1's and row 2's prompts contain stop tokens: those do not count
    step_fn, cache = make_model(table, bias, max_length)
    out = generate(step_fn, pad(PROMPTS, max_length), [1, 3, 2], cache, stop_token_ids=stops, pad_id=pad_id)
    expected = [np_greedy(table, b, p, max_length, stops) for b, p in zip(bias, PROMPTS)]
    assert as_lists(out) == expected
    for row, seq in zip(np.asarray(out["token_ids"]), expected):
        assert (row[len(seq) :] == pad_id).all()

    # A stop token everyone emits at once: the loop stops feeding after it.
    table = np.zeros_like(table)
    table[..., 6] = 10.0
    calls = []
    step_fn, cache = make_model(table, bias[:2] * 0, max_length, calls)
    out = generate(step_fn, pad([[1], [2]], max_length), [1, 1], cache, stop_token_ids=6)
    assert as_lists(out) == [[1, 6], [2, 6]]
    assert len(calls) == 1


@pytest.mark.parametrize("sampler", [RandomSampler(seed=0), TopKSampler(k=3, seed=0), TopPSampler(p=0.5, seed=0)])
def test_prompts_are_kept_verbatim(sampler):
    vocab, max_length = 8, 6
    table, bias = random_model(2, vocab, len(PROMPTS), max_length)
    step_fn, cache = make_model(table, bias, max_length)
    out = generate(step_fn, pad(PROMPTS, max_length, value=6), [len(p) for p in PROMPTS], cache, sampler)
    for seq, prompt in zip(as_lists(out), PROMPTS):
        assert seq[: len(prompt)] == prompt and len(seq) == max_length


def test_prefill_contract_start_index_and_clamping():
    vocab, max_length = 8, 7
    table, bias = random_model(3, vocab, len(PROMPTS), max_length)
    step_fn, cache = make_model(table, bias, max_length)
    prompts, lengths = pad(PROMPTS, max_length), [len(p) for p in PROMPTS]
    expected = as_lists(generate(step_fn, prompts, lengths, cache))
    # Prefill position 0 (= min(lengths) - 1), then start the loop at 1.
    _, filled = step_fn(prompts[:, :1], cache, 0)
    assert as_lists(generate(step_fn, prompts, lengths, filled, start_index=1)) == expected
    # Prefill over the whole padded prompt; an oversized start_index is clamped.
    for i in range(max_length):
        _, cache = step_fn(prompts[:, i : i + 1], cache, i)
    assert as_lists(generate(step_fn, prompts, lengths, cache, start_index=max_length)) == expected


def test_top_k_only_emits_the_k_best():
    rng = np.random.default_rng(4)
    logits = np.tile(rng.normal(size=(1, 12)).astype("float32"), (3000, 1))
    tokens = np.asarray(TopKSampler(k=3, temperature=2.0, seed=1).sample(logits, seed=5))
    assert set(tokens.tolist()) == set(np.argsort(-logits[0])[:3].tolist())


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_top_p_only_emits_from_the_smallest_nucleus(temperature):
    probs = np.array([0.05, 0.25, 0.05, 0.4, 0.1, 0.15])  # sorted: .4 .25 .15 -> mass .8 >= .7
    logits = np.tile(np.log(probs).astype("float32") * temperature, (3000, 1))
    tokens = np.asarray(TopPSampler(p=0.7, temperature=temperature, seed=2).sample(logits, seed=3))
    assert set(tokens.tolist()) == {3, 1, 5}
    capped = np.asarray(TopPSampler(p=0.7, k=2, temperature=temperature).sample(logits, seed=3))
    assert set(capped.tolist()) == {3, 1}


def test_top_k_in_generate_stays_within_top_k_of_each_context():
    vocab, max_length, batch = 10, 6, 64
    table, bias = random_model(5, vocab, batch, max_length)
    step_fn, cache = make_model(table, bias, max_length)
    sampler = get_sampler("top_k", k=2, seed=9)
    out = generate(step_fn, np.zeros((batch, max_length), "int32"), np.ones(batch, "int32"), cache, sampler)
    for b, seq in enumerate(as_lists(out)):
        for i in range(1, max_length):
            assert seq[i] in np.argsort(-np_log_probs(table, bias[b], seq[:i]))[:2]


def test_seeds_make_sampling_reproducible():
    vocab, max_length, batch = 10, 8, 16
    table, bias = random_model(6, vocab, batch, max_length)
    step_fn, cache = make_model(table, bias, max_length)
    prompts, lengths = np.zeros((batch, max_length), "int32"), np.ones(batch, "int32")

    def run(sampler, **kwargs):
        return np.asarray(generate(step_fn, prompts, lengths, cache, sampler, **kwargs)["token_ids"])

    np.testing.assert_array_equal(run("random", seed=1), run("random", seed=1))
    assert (run("random", seed=1) != run("random", seed=2)).any()
    first, second = RandomSampler(seed=3), RandomSampler(seed=3)
    np.testing.assert_array_equal(run(first), run(second))
    assert (run(first) != run(first)).any()  # the stream advances between calls


def test_near_zero_temperature_equals_greedy():
    vocab, max_length = 10, 7
    rng = np.random.default_rng(7)
    table = np.stack([rng.permutation(vocab) for _ in range((vocab + 1) * vocab)]).reshape(vocab + 1, vocab, vocab)
    table = table.astype("float32") * 0.5  # logit gaps >= 0.5
    bias = np.zeros((len(PROMPTS), vocab), "float32")
    step_fn, cache = make_model(table, bias, max_length)
    args = (step_fn, pad(PROMPTS, max_length), [len(p) for p in PROMPTS], cache)
    greedy = as_lists(generate(*args, GreedySampler()))
    for sampler in (RandomSampler(0.01, seed=0), TopKSampler(5, 0.01, seed=0), TopPSampler(0.95, 0.01, seed=0)):
        assert as_lists(generate(*args, sampler)) == greedy


@pytest.mark.parametrize("seed,length_penalty", [(8, 1.0), (9, 2.0), (10, 0.0)])
def test_beam_width_one_equals_greedy(seed, length_penalty):
    vocab, max_length, stops = 6, 8, (0, 4)
    table, bias = random_model(seed, vocab, len(PROMPTS), max_length, scale=1.0)
    step_fn, cache = make_model(table, bias, max_length)
    args = (step_fn, pad(PROMPTS, max_length), [len(p) for p in PROMPTS], cache)
    greedy = generate(*args, "greedy", stop_token_ids=stops, pad_id=5)
    beam = generate(*args, BeamSampler(1, length_penalty), stop_token_ids=stops, pad_id=5)
    np.testing.assert_array_equal(beam["token_ids"], greedy["token_ids"])
    np.testing.assert_array_equal(beam["lengths"], greedy["lengths"])


def test_beam_search_beats_greedy_on_a_hand_made_table():
    probs = np.full((4, 4), 0.25)
    probs[0] = [0.05, 0.5, 0.4, 0.05]  # greedy takes 1 (0.5), then at most 0.3
    probs[1] = [0.3, 0.3, 0.3, 0.1]
    probs[2] = [0.02, 0.02, 0.02, 0.94]  # 0 -> 2 -> 3 has probability 0.376
    table = np.broadcast_to(np.log(probs), (5, 4, 4)).astype("float32")
    bias = np.zeros((1, 4), "float32")
    step_fn, cache = make_model(table, bias, 3)
    args = (step_fn, [[0, 0, 0]], [1], cache)
    assert as_lists(generate(*args, "greedy")) == [[0, 1, 0]]
    out = generate(*args, BeamSampler(2, length_penalty=0.0))
    assert as_lists(out) == [brute_force(table, bias[0], [0], 3)[0][1]] == [[0, 2, 3]]
    np.testing.assert_allclose(out["scores"], [np.log(0.4 * 0.94)], rtol=1e-5)


@pytest.mark.parametrize("seed", [11, 12])
def test_wide_beam_search_equals_brute_force_and_reorders_the_cache(seed):
    # With num_beams >= V ** (steps - 1) and no stop token every prefix survives, so the
    # search is exact; the trigram needs the reordered cache to score anything right.
    vocab, max_length = 4, 4
    prompts = [[2], [1, 3]]
    table, bias = random_model(seed, vocab, len(prompts), max_length)
    step_fn, cache = make_model(table, bias, max_length)
    out = generate(step_fn, pad(prompts, max_length), [1, 2], cache, BeamSampler(16, 0.0), return_all_beams=True)
    ranked = [brute_force(table, b, p, max_length)[:16] for b, p in zip(bias, prompts)]
    assert as_lists(out) == [r[0][1] for r in ranked]
    # Every beam is one of the 16 best sequences, correctly scored: a stale cache row would not be.
    np.testing.assert_allclose(out["beam_scores"], [[score for score, _ in r] for r in ranked], rtol=1e-4)
    beams = np.asarray(out["beam_token_ids"])
    assert [[list(seq) for seq in row] for row in beams] == [[seq for _, seq in r] for r in ranked]


def test_length_penalty_changes_preference_as_documented():
    probs = np.full((4, 4), 0.25)
    probs[0] = [0.02, 0.03, 0.45, 0.5]  # stop (3) at once: log .5 = -0.69 in one token
    probs[2] = [0.02, 0.02, 0.95, 0.01]  # 2 2 2: log(.45 * .95 * .95) = -0.90 in three
    table = np.broadcast_to(np.log(probs), (5, 4, 4)).astype("float32")
    bias = np.zeros((1, 4), "float32")
    step_fn, cache = make_model(table, bias, 4)
    expected = {0.0: [0, 3], 1.0: [0, 2, 2, 2]}
    for alpha, seq in expected.items():
        out = generate(step_fn, [[0, 0, 0, 0]], [1], cache, BeamSampler(2, alpha), stop_token_ids=3, pad_id=1)
        assert as_lists(out) == [brute_force(table, bias[0], [0], 4, (3,), alpha)[0][1]] == [seq]
    assert np.asarray(out["token_ids"]).tolist() == [[0, 2, 2, 2]]


@pytest.mark.parametrize(
    "name,options",
    [
        ("nucleus", {}),
        ("top_p", {"p": 0.0}),
        ("top_p", {"p": 1.5}),
        ("top_k", {"k": 0}),
        ("top_k", {"k": 2.5}),
        ("random", {"temperature": 0}),
        ("top_k", {"temperature": -1.0}),
        ("beam", {"num_beams": 0}),
        ("greedy", {"temperature": 0.5}),
        (GreedySampler(), {"k": 3}),
        (3, {}),
    ],
)
def test_bad_sampler_settings_raise_value_error(name, options):
    with pytest.raises(ValueError):
        get_sampler(name, **options)


def test_get_sampler_builds_and_passes_through():
    assert isinstance(get_sampler("Top-P", p=1.0, k=4), TopPSampler)
    sampler = BeamSampler(3)
    assert get_sampler(sampler) is sampler and get_sampler("beam").num_beams == 4


def test_bad_generate_inputs_raise_value_error():
    step_fn, cache = make_model(np.zeros((3, 2, 2), "float32"), np.zeros((1, 2)), 4)
    with pytest.raises(ValueError, match="prompt_ids"):
        generate(step_fn, [1, 0, 0, 0], [1], cache)
    with pytest.raises(ValueError, match="max_length"):
        generate(step_fn, [[1, 0, 0, 0]], [1], cache, max_length=3)


@pytest.mark.parametrize("sampler", [TopPSampler(p=0.8, seed=0), BeamSampler(2)])
def test_compiled_generate_does_not_retrace_for_new_prompts(sampler):
    vocab, max_length = 8, 6
    table, bias = random_model(13, vocab, 2, max_length)
    calls = []
    step_fn, cache = make_model(table, bias, max_length, calls)
    prompts = pad([[5, 6, 7], [0, 1]], max_length)
    _, filled = step_fn(prompts[:, :1], cache, 0)  # prefill position 0
    generate_fn = compile_generate_fn(step_fn, sampler, stop_token_ids=(3,))
    first = generate_fn(pad([[1], [2, 4]], max_length), [1, 2], cache)
    traces = len(calls)
    second = generate_fn(prompts, [3, 2], filled, start_index=1, seed=4)
    assert traces > 1 and len(calls) == traces
    assert as_lists(second)[0][:3] == [5, 6, 7] and np.asarray(first["token_ids"]).shape == (2, max_length)
    if isinstance(sampler, BeamSampler):
        assert as_lists(second) == as_lists(generate(step_fn, prompts, [3, 2], cache, sampler, stop_token_ids=3))
