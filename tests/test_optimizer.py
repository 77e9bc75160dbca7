"""The learning-rate schedule and AdamW's weight-decay exclusions."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfptlm.training.optimizer import WarmupLinearDecay, create_optimizer


def test_schedule_rises_then_falls_linearly():
    schedule = WarmupLinearDecay(peak=1.0, total_steps=110, warmup_steps=10)
    rates = [float(schedule(step)) for step in (0, 5, 10, 60, 110, 200)]
    np.testing.assert_allclose(rates, [0.0, 0.5, 1.0, 0.5, 0.0, 0.0], atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    total=st.integers(1, 10_000),
    warmup_share=st.floats(0.0, 1.0),
    step_share=st.floats(0.0, 1.5),
)
def test_schedule_matches_the_piecewise_formula(total, warmup_share, step_share):
    warmup = int(total * warmup_share)
    step = int(total * step_share)
    expected = step / max(warmup, 1) if step < warmup else (total - step) / max(total - warmup, 1)
    expected = min(max(expected, 0.0), 1.0)
    rate = float(WarmupLinearDecay(peak=1.0, total_steps=total, warmup_steps=warmup)(step))
    assert rate == pytest.approx(expected, abs=1e-5)


def test_schedule_without_warmup_starts_at_peak_and_round_trips():
    schedule = WarmupLinearDecay(peak=2e-3, total_steps=100, warmup_steps=0)
    assert float(schedule(0)) == pytest.approx(2e-3)
    clone = WarmupLinearDecay.from_config(schedule.get_config())
    assert float(clone(50)) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupLinearDecay(1.0, total_steps=10, warmup_steps=11)


def test_weight_decay_skips_biases_and_layer_norms():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4), keras.layers.LayerNormalization()])
    optimizer = create_optimizer(1e-2, total_steps=10, warmup_steps=0, weight_decay=0.5, clip_norm=None)
    optimizer.build(model.trainable_variables)
    before = [v.numpy().copy() for v in model.trainable_variables]
    # Zero gradients: only weight decay can move a variable.
    optimizer.apply_gradients([(np.zeros(v.shape, "float32"), v) for v in model.trainable_variables])
    moved = {v.name: not np.allclose(v.numpy(), b) for v, b in zip(model.trainable_variables, before)}
    assert moved == {"kernel": True, "bias": False, "gamma": False, "beta": False}


def test_global_norm_clipping_is_on_by_default():
    optimizer = create_optimizer(1e-3, total_steps=10, warmup_steps=1)
    assert optimizer.global_clipnorm == 1.0
