"""Model-agnostic autoregressive decoding with fixed shapes (one XLA compile).

The loop talks to a model only through a step function::

    step_fn(token_ids, cache, index) -> (logits, cache)

* `token_ids`: int32 `[B, 1]`, the token at position `index` (0-based).
* `cache`: any nested structure (tuple, list, dict) of tensors whose leading
  axis is the batch `B`, e.g. `[B, layers, 2, max_length, heads, head_dim]`
  key/values, encoder outputs and padding masks of a seq2seq model, or `()`.
  `step_fn` must return it with the same structure, shapes and dtypes.
* `index`: scalar int32 tensor.
* `step_fn` must write the state of `token_ids` into the cache at `index`,
  attend only to cache positions `<= index`, and return float logits
  `[B, V]` (or `[B, 1, V]`) for the NEXT position, `index + 1`.

Contract between prefill and the loop:

* The loop calls `step_fn` for `index = start_index, ..., max_length - 2`
  (nothing is fed at the last position). The position `index + 1` gets the
  prompt token while `index + 1 < prompt_lengths[b]`, else the sampled token.
* The `cache` given to `generate` must already hold positions
  `[0, start_index)`. Without a prefill, pass an empty (e.g. zero) cache and
  `start_index=0`: the loop feeds the prompt one token at a time, which is
  always correct. With a prefill, run the model on `prompt_ids[:, :s]` to fill
  the cache and pass `start_index=s` for any `s <= min(prompt_lengths) - 1`;
  a prefill over the whole padded prompt is fine too, because the loop
  overwrites every position it feeds before anything attends to it.
  `start_index` is clamped to `[0, min(prompt_lengths) - 1]`, since the token
  at `start_index` must be a prompt token of every row.
* Every row needs at least one prompt token (BOS, or the decoder start token
  of a seq2seq model, whose encoder outputs then ride along in the cache).
* Beam search repeats every cache leaf `num_beams` times along axis 0 (row
  `b * num_beams + j`) and reorders the rows to follow the beams, so
  `step_fn` sees a batch of `B * num_beams`.

Stop tokens only count after a row's prompt; a row ends at its first one, the
positions after it are `pad_id`, and the loop exits early once every row has
ended. `generate` returns a dict: `token_ids` int32 `[B, max_length]` (prompt
kept verbatim, then the generated tokens) and `lengths` int32 `[B]` (prompt +
generated tokens, stop token included); beam search adds `scores` (and the
`beam_*` entries with `return_all_beams=True`).

Example:

```python
def step_fn(token_ids, cache, index):
    # A real model writes its key/values at `index` and attends to <= index.
    logits, cache = decoder.call_with_cache(token_ids, cache, index)
    return logits[:, -1, :], cache

prompt_ids = np.array([[1, 17, 5, 0, 0, 0, 0, 0],
                       [1, 9, 0, 0, 0, 0, 0, 0]], "int32")   # [B, max_length]
prompt_lengths = np.array([3, 2], "int32")
cache = decoder.empty_cache(batch_size=2, max_length=8)
# Optional prefill of the common prompt prefix, here position 0:
_, cache = decoder.call_with_cache(prompt_ids[:, :1], cache, 0)

generate_fn = compile_generate_fn(step_fn, "top_p", stop_token_ids=(2,), p=0.9, seed=0)
out = generate_fn(prompt_ids, prompt_lengths, cache, start_index=1)
out["token_ids"], out["lengths"]
```
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
from keras import ops

from tfptlm.generation._utils import is_stop_token, mask_after, read_column, write_column
from tfptlm.generation.beam_search import beam_search
from tfptlm.generation.samplers import BeamSampler, Sampler, get_sampler

StepFn = Callable[[Any, Any, Any], tuple[Any, Any]]

# Seeds of successive steps are spread this far apart in the seed's second
# word, whose first values count the calls of `Sampler.draw_seed`.
_STEP_SEED_STRIDE = 1_000_003


def generate(
    step_fn: StepFn,
    prompt_ids: Any,
    prompt_lengths: Any,
    cache: Any = (),
    sampler: str | Sampler | BeamSampler = "greedy",
    *,
    start_index: int | Any = 0,
    max_length: int | None = None,
    stop_token_ids: int | Sequence[int] = (),
    pad_id: int = 0,
    seed: int | Any | None = None,
    return_all_beams: bool = False,
) -> dict[str, Any]:
    """Generates continuations of right-padded prompts (contract in the module docstring).

    Args:
        step_fn: `(token_ids [B, 1], cache, index) -> (logits [B, V], cache)`.
        prompt_ids: int `[B, L]` prompts, right-padded; `L` is the output length.
        prompt_lengths: int `[B]` prompt lengths, each >= 1.
        cache: model state holding positions `< start_index` (leading axis B).
        sampler: a sampler or its name (see `get_sampler`).
        start_index: first position fed to `step_fn` (int or scalar tensor).
        max_length: pads `prompt_ids` with `pad_id` to this length if given.
        stop_token_ids: token ids that end a row.
        pad_id: written after a row's stop token.
        seed: int or `[2]` seed tensor for random samplers; None draws
            `sampler.draw_seed()` (pass it explicitly inside `jax.jit`).
        return_all_beams: beam search also returns every beam and its score.

    Returns:
        `{"token_ids": [B, max_length], "lengths": [B]}` (+ scores for beams).

    Example:

    ```python
    table = np.random.randn(16, 16).astype("float32")
    step_fn = lambda ids, cache, index: (ops.take(table, ids[:, 0], axis=0), cache)
    out = generate(step_fn, [[3, 0, 0, 0]], [1], sampler="greedy")
    ```
    """
    sampler = get_sampler(sampler)
    prompt_ids = ops.cast(ops.convert_to_tensor(prompt_ids), "int32")
    prompt_lengths = ops.cast(ops.convert_to_tensor(prompt_lengths), "int32")
    if len(prompt_ids.shape) != 2 or prompt_ids.shape[1] is None:
        raise ValueError(f"`prompt_ids` must be [batch, length] with a static length; got shape {prompt_ids.shape}.")
    if len(prompt_lengths.shape) != 1:
        raise ValueError(f"`prompt_lengths` must be [batch]; got shape {prompt_lengths.shape}.")
    if max_length is not None:
        if max_length < prompt_ids.shape[1]:
            raise ValueError(f"`max_length`={max_length} is shorter than the prompts ({prompt_ids.shape[1]}).")
        prompt_ids = ops.pad(prompt_ids, [[0, 0], [0, max_length - prompt_ids.shape[1]]], constant_values=pad_id)
    if isinstance(stop_token_ids, int):
        stop_token_ids = (stop_token_ids,)
    stop_token_ids = tuple(int(token) for token in stop_token_ids)
    cache = () if cache is None else cache
    start_index = ops.clip(ops.cast(start_index, "int32"), 0, ops.maximum(ops.min(prompt_lengths) - 1, 0))

    if isinstance(sampler, BeamSampler):
        return beam_search(
            step_fn,
            prompt_ids,
            prompt_lengths,
            cache,
            start_index,
            num_beams=sampler.num_beams,
            length_penalty=sampler.length_penalty,
            stop_token_ids=stop_token_ids,
            pad_id=pad_id,
            return_all_beams=return_all_beams,
        )
    seed = sampler.draw_seed() if seed is None else sampler.seed_from(seed)
    return _sample_loop(step_fn, prompt_ids, prompt_lengths, cache, start_index, sampler, seed, stop_token_ids, pad_id)


def _sample_loop(
    step_fn: StepFn,
    prompt_ids: Any,
    prompt_lengths: Any,
    cache: Any,
    start_index: Any,
    sampler: Sampler,
    seed: Any,
    stop_token_ids: tuple[int, ...],
    pad_id: int,
) -> dict[str, Any]:
    """The token-by-token loop of `generate` for token samplers."""
    max_length = prompt_ids.shape[1]
    step_stride = ops.cast(ops.convert_to_tensor([0, _STEP_SEED_STRIDE]), seed.dtype)

    def cond(index, ids, cache, lengths, ended):
        running = index < max_length - 1
        if stop_token_ids:
            running = ops.logical_and(running, ops.logical_not(ops.all(ended)))
        return running

    def body(index, ids, cache, lengths, ended):
        position = index + 1
        logits, cache = step_fn(ops.expand_dims(read_column(ids, index), -1), cache, index)
        logits = ops.reshape(logits, (-1, logits.shape[-1]))
        sampled = sampler.sample(logits, seed + step_stride * ops.cast(index, seed.dtype))
        in_prompt = position < prompt_lengths
        tokens = ops.where(in_prompt, read_column(ids, position), sampled)
        tokens = ops.where(ended, pad_id, tokens)
        generated = ops.logical_not(ops.logical_or(in_prompt, ended))
        stops = ops.logical_and(generated, is_stop_token(tokens, stop_token_ids))
        lengths = ops.where(stops, position + 1, lengths)
        return position, write_column(ids, position, tokens), cache, lengths, ops.logical_or(ended, stops)

    loop_vars = (
        start_index,
        prompt_ids,
        cache,
        ops.zeros_like(prompt_lengths) + max_length,
        ops.zeros_like(prompt_lengths, dtype="bool"),
    )
    _, ids, _, lengths, _ = ops.while_loop(cond, body, loop_vars)
    return {"token_ids": mask_after(ids, lengths, pad_id), "lengths": lengths}


def compile_generate_fn(
    step_fn: StepFn,
    sampler: str | Sampler | BeamSampler = "greedy",
    *,
    stop_token_ids: int | Sequence[int] = (),
    pad_id: int = 0,
    return_all_beams: bool = False,
    jit_compile: bool = True,
    **sampler_options: Any,
) -> Callable[..., dict[str, Any]]:
    """Returns `generate_fn(prompt_ids, prompt_lengths, cache=(), start_index=0, seed=None)`,
    `generate` compiled once per input shape (`tf.function(jit_compile=...)` on
    TensorFlow, `jax.jit` on JAX).

    All call arguments are passed to the compiled function as tensors, so new
    prompt contents, lengths, start indices and seeds of the same shapes reuse
    the compiled program. A seed of None draws `sampler.draw_seed()` eagerly,
    so every call samples afresh. On JAX the model's weights are captured when
    the function is traced; build a new `generate_fn` after changing them.

    Example:

    ```python
    generate_fn = compile_generate_fn(step_fn, "beam", num_beams=4, stop_token_ids=2)
    out = generate_fn(prompt_ids, prompt_lengths, cache)
    ```
    """
    sampler = get_sampler(sampler, **sampler_options)

    def run(prompt_ids: Any, prompt_lengths: Any, cache: Any, start_index: Any, seed: Any) -> dict[str, Any]:
        return generate(
            step_fn,
            prompt_ids,
            prompt_lengths,
            cache,
            sampler,
            start_index=start_index,
            stop_token_ids=stop_token_ids,
            pad_id=pad_id,
            seed=seed,
            return_all_beams=return_all_beams,
        )

    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(run, jit_compile=jit_compile)
    elif backend == "jax":
        import jax

        compiled = jax.jit(run) if jit_compile else run
    else:
        raise ValueError(f"compile_generate_fn supports the tensorflow and jax backends; got {backend!r}.")

    def generate_fn(
        prompt_ids: Any, prompt_lengths: Any, cache: Any = (), start_index: int | Any = 0, seed: int | Any | None = None
    ) -> dict[str, Any]:
        if isinstance(sampler, Sampler):
            seed = sampler.seed_from(sampler.draw_seed() if seed is None else seed)
        else:
            seed = ops.zeros((2,), "int32")
        return compiled(
            ops.convert_to_tensor(prompt_ids, "int32"),
            ops.convert_to_tensor(prompt_lengths, "int32"),
            keras.tree.map_structure(ops.convert_to_tensor, () if cache is None else cache),
            ops.convert_to_tensor(start_index, "int32"),
            seed,
        )

    return generate_fn
