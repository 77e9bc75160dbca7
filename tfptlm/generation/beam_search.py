"""Beam search over a step function (see `tfptlm.generation.decoding` for the contract).

Each input row becomes `num_beams` rows (`b * num_beams + j`) of the batch that
`step_fn` sees, and every cache leaf is repeated and reordered along its
leading axis to follow the surviving beams. A hypothesis is finished when it
emits a stop token among the `num_beams` best candidates of a step (the
Hugging Face rule); its score is `sum(log p) / n ** length_penalty`, `n` being
the number of generated tokens, stop token included. An input is done when it
holds `num_beams` finished hypotheses and none of its live beams, scored at
the current length, beats the worst of them (Hugging Face's default
`early_stopping=False` heuristic, exact for `length_penalty <= 0`). Inputs not
done at `max_length` rank their live beams with the finished ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
from keras import ops

from tfptlm.generation._utils import is_stop_token, mask_after, read_column, write_column

# Score of an empty hypothesis slot and of the dead beams of the first step.
EMPTY_SCORE = -1e9


def beam_search(
    step_fn: Callable[[Any, Any, Any], tuple[Any, Any]],
    prompt_ids: Any,
    prompt_lengths: Any,
    cache: Any,
    start_index: Any,
    *,
    num_beams: int,
    length_penalty: float,
    stop_token_ids: Sequence[int],
    pad_id: int,
    return_all_beams: bool,
) -> dict[str, Any]:
    """Runs beam search; arguments as validated by `generate` (int32 `[B, L]` prompts,
    `[B]` lengths, scalar `start_index` <= min(prompt_lengths) - 1).

    Returns `token_ids` `[B, L]`, `lengths` `[B]`, `scores` `[B]` of the best
    hypothesis per input, plus `beam_token_ids` `[B, num_beams, L]`,
    `beam_lengths` and `beam_scores` `[B, num_beams]` (best first) when
    `return_all_beams`.
    """
    max_length = prompt_ids.shape[1]
    batch_size = ops.shape(prompt_ids)[0]
    offsets = ops.expand_dims(ops.arange(batch_size, dtype="int32") * num_beams, -1)
    beam_range = ops.arange(num_beams, dtype="int32")

    def reorder(tree: Any, beams: Any) -> Any:
        """Picks rows `b * num_beams + beams[b, j]` (any number of j) of every leaf."""
        rows = ops.reshape(beams + offsets, (-1,))
        return keras.tree.map_structure(lambda x: ops.take(x, rows, axis=0), tree)

    def length_norm(position: Any) -> Any:
        """`n ** length_penalty` per input for hypotheses ending at `position`, shape `[B, 1]`."""
        generated = ops.maximum(position - prompt_lengths + 1, 1)
        return ops.expand_dims(ops.power(ops.cast(generated, "float32"), length_penalty), -1)

    def keep_best(scores: Any, ids: Any, lengths: Any) -> tuple[Any, Any, Any]:
        """Keeps the `num_beams` best of `[B, N]` hypotheses, best first."""
        scores, best = ops.top_k(scores, num_beams, sorted=True)
        ids = ops.take_along_axis(ids, ops.expand_dims(best, -1), axis=1)
        return scores, ids, ops.take_along_axis(lengths, best, axis=1)

    def cond(index, ids, cache, alive_scores, fin_ids, fin_scores, fin_lengths, done):
        return ops.logical_and(index < max_length - 1, ops.logical_not(ops.all(done)))

    def body(index, ids, cache, alive_scores, fin_ids, fin_scores, fin_lengths, done):
        position = index + 1
        logits, cache = step_fn(ops.expand_dims(read_column(ids, index), -1), cache, index)
        vocab_size = logits.shape[-1]
        log_probs = ops.log_softmax(ops.reshape(ops.cast(logits, "float32"), (-1, num_beams, vocab_size)))
        scores = ops.reshape(ops.expand_dims(alive_scores, -1) + log_probs, (-1, num_beams * vocab_size))
        # Enough candidates that num_beams of them are not stop tokens.
        num_candidates = min((1 + len(stop_token_ids)) * num_beams, num_beams * vocab_size)
        cand_scores, cand_ids = ops.top_k(scores, num_candidates, sorted=True)
        cand_beams = ops.cast(cand_ids // vocab_size, "int32")
        cand_tokens = ops.cast(cand_ids % vocab_size, "int32")
        cand_stop = is_stop_token(cand_tokens, stop_token_ids)
        forced = ops.expand_dims(position < prompt_lengths, -1)
        norm = length_norm(position)

        # Live beams: the best non-stop candidates, or the prompt token while it lasts.
        next_scores, picks = ops.top_k(ops.where(cand_stop, 2 * EMPTY_SCORE, cand_scores), num_beams, sorted=True)
        prompt_tokens = ops.reshape(read_column(ids, position), (-1, num_beams))
        next_scores = ops.where(forced, alive_scores, next_scores)
        next_beams = ops.where(forced, beam_range, ops.take_along_axis(cand_beams, picks, axis=1))
        next_tokens = ops.where(forced, prompt_tokens, ops.take_along_axis(cand_tokens, picks, axis=1))

        # Finished hypotheses: stop candidates ranked among the num_beams best.
        new_finished = ops.logical_and(cand_stop, ops.arange(num_candidates) < num_beams)
        new_finished = ops.logical_and(new_finished, ops.logical_not(ops.logical_or(forced, ops.expand_dims(done, -1))))
        cand_seqs = ops.reshape(reorder(ids, cand_beams), (-1, num_candidates, max_length))
        fin_scores, fin_ids, fin_lengths = keep_best(
            ops.concatenate([fin_scores, ops.where(new_finished, cand_scores / norm, EMPTY_SCORE)], axis=1),
            ops.concatenate([fin_ids, write_column(cand_seqs, position, cand_tokens)], axis=1),
            ops.concatenate([fin_lengths, ops.zeros_like(cand_tokens) + position + 1], axis=1),
        )

        ids = write_column(reorder(ids, next_beams), position, ops.reshape(next_tokens, (-1,)))
        cache = reorder(cache, next_beams)
        best_alive = ops.max(next_scores, axis=1) / norm[:, 0]
        done = ops.logical_or(done, ops.logical_and(ops.logical_not(forced[:, 0]), fin_scores[:, -1] >= best_alive))
        return position, ids, cache, next_scores, fin_ids, fin_scores, fin_lengths, done

    ids = ops.repeat(prompt_ids, num_beams, axis=0)
    cache = keras.tree.map_structure(lambda x: ops.repeat(x, num_beams, axis=0), cache)
    zeros = ops.zeros_like(ops.reshape(ids, (-1, num_beams, max_length))[:, :, 0])
    alive_scores = ops.cast(zeros, "float32") + ops.where(beam_range == 0, 0.0, EMPTY_SCORE)
    loop_vars = (
        ops.cast(start_index, "int32"),
        ids,
        cache,
        alive_scores,
        ops.zeros_like(ops.reshape(ids, (-1, num_beams, max_length))),
        ops.cast(zeros, "float32") + EMPTY_SCORE,
        zeros,
        ops.zeros_like(prompt_lengths, dtype="bool"),
    )
    _, ids, _, alive_scores, fin_ids, fin_scores, fin_lengths, done = ops.while_loop(cond, body, loop_vars)

    # Inputs still running at max_length rank their live beams with the finished ones.
    alive_scores = ops.where(ops.expand_dims(done, -1), EMPTY_SCORE, alive_scores / length_norm(max_length - 1))
    fin_scores, fin_ids, fin_lengths = keep_best(
        ops.concatenate([fin_scores, alive_scores], axis=1),
        ops.concatenate([fin_ids, ops.reshape(ids, (-1, num_beams, max_length))], axis=1),
        ops.concatenate([fin_lengths, zeros + max_length], axis=1),
    )
    fin_ids = mask_after(fin_ids, fin_lengths, pad_id)
    outputs = {"token_ids": fin_ids[:, 0], "lengths": fin_lengths[:, 0], "scores": fin_scores[:, 0]}
    if return_all_beams:
        outputs.update(beam_token_ids=fin_ids, beam_lengths=fin_lengths, beam_scores=fin_scores)
    return outputs
