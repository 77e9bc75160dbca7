"""Samplers: how the decoding loop turns next-token logits into tokens.

Token samplers (`GreedySampler`, `RandomSampler`, `TopKSampler`,
`TopPSampler`) map logits `[B, V]` to token ids `[B]`, one step at a time.
`BeamSampler` only carries the beam-search settings; the search itself lives
in `tfptlm.generation.beam_search`, which `generate` calls for it.

Randomness is explicit so that a compiled decoding loop never retraces and
runs on every Keras backend: `Sampler.draw_seed()` returns a fresh seed tensor
(call it eagerly, once per `generate` call), and `Sampler.sample(logits,
seed)` is a pure function of its inputs. A sampler built with `seed=1234`
gives the same sequence of generations every time it is re-created.

Example:

```python
sampler = get_sampler("top_p", p=0.9, temperature=0.7, seed=42)
seed = sampler.draw_seed()
tokens = sampler.sample(logits, seed)   # int32 [B]
```
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = [
    "BeamSampler",
    "GreedySampler",
    "RandomSampler",
    "Sampler",
    "TopKSampler",
    "TopPSampler",
    "get_sampler",
]


def _check_temperature(temperature: float) -> float:
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or temperature <= 0:
        raise ValueError(f"`temperature` must be a number > 0; got temperature={temperature!r}.")
    return float(temperature)


def _check_k(k: int, name: str = "k") -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"`{name}` must be an integer >= 1; got {name}={k!r}.")
    return k


class Sampler:
    """Base class of token samplers: logits `[B, V]` -> token ids int32 `[B]`.

    Subclasses implement `select(logits)`, which receives float32 logits that
    are already divided by the temperature and may draw random numbers with
    `seed=self.seed_generator`.

    Args:
        temperature: divides the logits before selection; > 0.
        seed: int seed of the sampler's seed stream, or None for a random one.

    Example:

    ```python
    class BanTokenSampler(GreedySampler):
        def select(self, logits):
            logits = ops.where(ops.arange(logits.shape[-1]) == 3, -1e9, logits)
            return ops.argmax(logits, axis=-1)
    ```
    """

    def __init__(self, temperature: float = 1.0, seed: int | None = None) -> None:
        self.temperature = _check_temperature(temperature)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def draw_seed(self) -> Any:
        """Returns a fresh seed tensor of shape `[2]` and advances the stream (call eagerly)."""
        return self.seed_generator.next()

    def seed_from(self, seed: int | Any) -> Any:
        """Turns an int or a `[2]` integer tensor into a seed tensor for `sample`."""
        if isinstance(seed, int):
            seed = [seed, 0]
        return ops.cast(ops.convert_to_tensor(seed), self.seed_generator.state.dtype)

    def sample(self, logits: Any, seed: Any) -> Any:
        """Picks one token per row of `logits` `[B, V]`; `seed` is a `[2]` seed tensor.

        Example:

        ```python
        sampler = TopKSampler(k=5, seed=0)
        tokens = sampler.sample(logits, sampler.draw_seed())
        ```
        """
        logits = ops.cast(logits, "float32") / self.temperature
        mapping = [(self.seed_generator.state, self.seed_from(seed))]
        # The scope makes the seed generator read `seed` instead of its
        # variable and discards its update, so sampling is a pure function.
        with keras.StatelessScope(state_mapping=mapping):
            tokens = self.select(logits)
        return ops.cast(tokens, "int32")

    def select(self, logits: Any) -> Any:
        """Returns token ids `[B]` for float32 logits `[B, V]` (already tempered)."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "seed": self.seed}

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({options})"


class GreedySampler(Sampler):
    """Always picks the most likely token (argmax; ties go to the lowest id).

    Example:

    ```python
    tokens = GreedySampler().sample(logits, seed=0)
    ```
    """

    def __init__(self) -> None:
        super().__init__(temperature=1.0, seed=0)

    def select(self, logits: Any) -> Any:
        return ops.argmax(logits, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {}


class RandomSampler(Sampler):
    """Samples from the full softmax distribution (pure ancestral sampling).

    Example:

    ```python
    sampler = RandomSampler(temperature=0.8, seed=7)
    ```
    """

    def select(self, logits: Any) -> Any:
        return keras.random.categorical(logits, 1, dtype="int32", seed=self.seed_generator)[:, 0]


class TopKSampler(Sampler):
    """Samples among the `k` most likely tokens (all tokens when k >= vocabulary).

    Example:

    ```python
    sampler = TopKSampler(k=40, temperature=0.7, seed=7)
    ```
    """

    def __init__(self, k: int = 50, temperature: float = 1.0, seed: int | None = None) -> None:
        super().__init__(temperature=temperature, seed=seed)
        self.k = _check_k(k)

    def select(self, logits: Any) -> Any:
        k = min(self.k, logits.shape[-1])
        top_logits, top_ids = ops.top_k(logits, k, sorted=True)
        choice = keras.random.categorical(top_logits, 1, dtype="int32", seed=self.seed_generator)
        return ops.take_along_axis(top_ids, choice, axis=-1)[:, 0]

    def get_config(self) -> dict[str, Any]:
        return {"k": self.k, **super().get_config()}


class TopPSampler(Sampler):
    """Nucleus sampling: samples within the smallest set of most likely tokens whose
    probability mass (after temperature) is >= `p`, optionally also capped at `k` tokens.

    Example:

    ```python
    sampler = TopPSampler(p=0.9, temperature=0.8, seed=7)
    ```
    """

    def __init__(
        self,
        p: float = 0.9,
        temperature: float = 1.0,
        k: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(temperature=temperature, seed=seed)
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 < p <= 1.0:
            raise ValueError(f"`p` must be in (0, 1]; got p={p!r}.")
        self.p = float(p)
        self.k = None if k is None else _check_k(k)

    def select(self, logits: Any) -> Any:
        k = logits.shape[-1] if self.k is None else min(self.k, logits.shape[-1])
        top_logits, top_ids = ops.top_k(logits, k, sorted=True)
        probs = ops.softmax(logits, axis=-1)
        top_probs = ops.take_along_axis(probs, top_ids, axis=-1)
        # A token is in the nucleus when the mass strictly before it is < p.
        mass_before = ops.cumsum(top_probs, axis=-1) - top_probs
        keep = ops.logical_or(mass_before < self.p, ops.arange(k) == 0)
        top_logits = ops.where(keep, top_logits, float("-inf"))
        choice = keras.random.categorical(top_logits, 1, dtype="int32", seed=self.seed_generator)
        return ops.take_along_axis(top_ids, choice, axis=-1)[:, 0]

    def get_config(self) -> dict[str, Any]:
        return {"p": self.p, "k": self.k, **super().get_config()}


class BeamSampler:
    """Beam search settings (the search runs in `generate`).

    Hypotheses are ranked by `sum(log p(generated tokens)) / n ** length_penalty`
    (the GNMT/Hugging Face convention), where `n` counts the generated tokens,
    the stop token included. `length_penalty=0` ranks by total log-probability
    (favours short outputs), `1.0` by mean log-probability per token, and values
    above 1 favour longer outputs further. `num_beams=1` is greedy decoding.

    Example:

    ```python
    sampler = BeamSampler(num_beams=4, length_penalty=0.6)
    ```
    """

    def __init__(self, num_beams: int = 4, length_penalty: float = 1.0) -> None:
        self.num_beams = _check_k(num_beams, "num_beams")
        if not isinstance(length_penalty, (int, float)) or isinstance(length_penalty, bool):
            raise ValueError(f"`length_penalty` must be a number; got length_penalty={length_penalty!r}.")
        self.length_penalty = float(length_penalty)

    def get_config(self) -> dict[str, Any]:
        return {"num_beams": self.num_beams, "length_penalty": self.length_penalty}

    def __repr__(self) -> str:
        return f"BeamSampler(num_beams={self.num_beams}, length_penalty={self.length_penalty})"


_SAMPLERS: dict[str, type] = {
    "greedy": GreedySampler,
    "random": RandomSampler,
    "top_k": TopKSampler,
    "top_p": TopPSampler,
    "beam": BeamSampler,
}


def get_sampler(name_or_instance: str | Sampler | BeamSampler, **options: Any) -> Sampler | BeamSampler:
    """Returns a sampler from a name (`greedy`, `random`, `top_k`, `top_p`, `beam`) and
    its options, or the given sampler instance unchanged.

    Example:

    ```python
    get_sampler("top_k", k=10, temperature=0.7, seed=1)
    get_sampler("beam", num_beams=4, length_penalty=1.0)
    ```
    """
    if isinstance(name_or_instance, (Sampler, BeamSampler)):
        if options:
            raise ValueError(
                f"Options {sorted(options)} can only be given with a sampler name, "
                f"not with the sampler instance {name_or_instance!r}."
            )
        return name_or_instance
    if not isinstance(name_or_instance, str):
        raise ValueError(
            f"`sampler` must be a name ({', '.join(_SAMPLERS)}) or a Sampler/BeamSampler; "
            f"got {name_or_instance!r}."
        )
    key = name_or_instance.strip().lower().replace("-", "_")
    if key not in _SAMPLERS:
        raise ValueError(f"Unknown sampler {name_or_instance!r}; expected one of: {', '.join(_SAMPLERS)}.")
    cls = _SAMPLERS[key]
    try:
        return cls(**options)
    except TypeError as error:
        raise ValueError(f"Invalid options {sorted(options)} for sampler {key!r} ({cls.__name__}): {error}") from None
