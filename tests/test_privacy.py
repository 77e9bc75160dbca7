"""DP-SGD (training.privacy): per-example clipping, noise, accounting, and a private fine-tuning run."""

import csv
import json

import dp_accounting
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfptlm.cli import main
from tfptlm.config import ConfigError, FinetuneConfig, PretrainConfig, load_config
from tfptlm.models.bert import BertBackbone
from tfptlm.tasks.text_classifier import TextClassifier
from tfptlm.training.privacy import (
    PrivateTrainer, clip_per_example, compute_epsilon, count_examples, noise_multiplier_for,
    noisy_mean, per_example_gradients,
)

from test_finetune_cli import NEGATIVE, POSITIVE, TINY

VOCAB = 12


def tiny_classifier(seed=0):
    keras.utils.set_random_seed(seed)
    backbone = BertBackbone(VOCAB, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
                            max_sequence_length=8, dropout=0.1)
    return TextClassifier(backbone, ["neg", "pos"], dropout=0.1)


def batch():
    ids = np.array([[1, 4, 7, 2], [1, 5, 8, 2], [1, 9, 4, 2], [1, 5, 5, 2], [1, 6, 3, 2]], "int32")
    inputs = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids)}
    return inputs, np.array([1, 0, 1, 0, 1], "int32")


def one_by_one(model, inputs, labels):
    """The reference: each example's gradient with its own GradientTape (dropout off, as in DP-SGD)."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    gradients = []
    for i in range(len(labels)):
        with tf.GradientTape() as tape:
            logits = model({k: v[i:i + 1] for k, v in inputs.items()}, training=False)
            loss = loss_fn(labels[i:i + 1], logits)
        gradients.append([tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, model.trainable_variables)])
    return gradients


def global_norm(arrays):
    return float(np.sqrt(sum(np.sum(np.square(a)) for a in arrays)))


def test_vectorized_per_example_gradients_equal_the_one_by_one_reference():
    model = tiny_classifier()
    model.compile(optimizer="sgd")
    inputs, labels = batch()
    losses, y_pred, gradients = per_example_gradients(model, model.trainable_variables, inputs, labels)
    reference = one_by_one(model, inputs, labels)
    assert losses.shape == (5,) and y_pred.shape == (5, 2)
    for i, expected in enumerate(reference):
        for got, want in zip(gradients, expected):
            np.testing.assert_allclose(got[i].numpy(), want, rtol=1e-4, atol=1e-7)


def test_clipping_bounds_every_example_and_leaves_small_gradients_unchanged():
    model = tiny_classifier()
    model.compile(optimizer="sgd")
    inputs, labels = batch()
    reference = one_by_one(model, inputs, labels)
    norms = [global_norm(g) for g in reference]
    bound = float(np.median(norms))  # some examples above the bound, some below
    _, _, gradients = per_example_gradients(model, model.trainable_variables, inputs, labels)
    clipped, measured = clip_per_example(gradients, bound)
    np.testing.assert_allclose(measured.numpy(), norms, rtol=1e-4)
    for i, expected in enumerate(reference):
        mine = [g[i].numpy() for g in clipped]
        assert global_norm(mine) <= bound * (1 + 1e-5)
        factor = 1.0 if norms[i] <= bound else bound / norms[i]  # same direction, scaled
        for got, want in zip(mine, expected):
            np.testing.assert_allclose(got, want * factor, rtol=1e-4, atol=1e-7)
    assert sum(n > bound for n in norms) >= 2 and sum(n <= bound for n in norms) >= 2


def test_noise_std_is_multiplier_times_bound_and_the_mean_divides_by_the_batch():
    zeros = [tf.zeros([1, 200_000]), tf.zeros([1, 50, 100])]
    noise = noisy_mean(zeros, stddev=1.3 * 0.7, key=11, step=0)
    for draw in noise:
        assert abs(float(tf.math.reduce_std(draw)) - 0.91) < 0.01
        assert abs(float(tf.reduce_mean(draw))) < 0.01
    again = noisy_mean(zeros, stddev=0.91, key=11, step=0)
    np.testing.assert_array_equal(noise[0].numpy(), again[0].numpy())  # same key and step
    later = noisy_mean(zeros, stddev=0.91, key=11, step=1)[0].numpy()
    assert abs(np.corrcoef(noise[0].numpy(), later)[0, 1]) < 0.02  # fresh noise every step
    assert abs(float(np.corrcoef(noise[0].numpy().ravel()[:5000], noise[1].numpy().ravel())[0, 1])) < 0.05
    # Without noise: the plain mean of the clipped gradients over a batch of 4.
    values = tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    np.testing.assert_allclose(noisy_mean([values], 0.0, 0, 0)[0].numpy(), [4.0, 5.0])


def test_a_private_step_applies_the_noisy_mean_of_the_clipped_gradients():
    model = tiny_classifier()
    trainer = PrivateTrainer(model, l2_norm_clip=0.05, noise_multiplier=0.5, noise_key=3)
    trainer.compile(optimizer=keras.optimizers.SGD(1.0))
    inputs, labels = batch()
    before = [v.numpy() for v in model.trainable_variables]
    _, _, expected, norms = trainer.private_gradients(inputs, labels)  # step 0, the same noise
    logs = trainer.train_on_batch(inputs, labels, return_dict=True)
    for old, new, gradient in zip(before, model.trainable_variables, expected):
        np.testing.assert_allclose(new.numpy(), old - gradient.numpy(), rtol=1e-4, atol=1e-6)
    assert logs["clipped_share"] == pytest.approx(float(np.mean(norms.numpy() > 0.05)))
    assert set(logs) >= {"loss", "accuracy", "clipped_share"}


def test_without_the_backbone_only_the_head_moves():
    model = tiny_classifier()
    trainer = PrivateTrainer(model, l2_norm_clip=1.0, noise_multiplier=1.0, noise_key=5, train_backbone=False)
    trainer.compile(optimizer=keras.optimizers.SGD(0.1))
    backbone = [v.numpy() for v in model.backbone.trainable_variables]
    head = [v.numpy() for v in model.output_dense.trainable_variables]
    trainer.train_on_batch(*batch())
    for old, new in zip(backbone, model.backbone.trainable_variables):
        np.testing.assert_array_equal(old, new.numpy())
    assert all(np.abs(old - new.numpy()).max() > 0 for old, new in zip(head, model.output_dense.trainable_variables))
    assert len(trainer.trained_variables) == 2  # the logits kernel and bias


def test_epsilon_agrees_with_dp_accounting_and_the_tf_privacy_mnist_figure():
    q, sigma, steps, delta = 256 / 60000, 1.1, 60 * 60000 // 256, 1e-5
    accountant = dp_accounting.rdp.RdpAccountant()
    accountant.compose(dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps))
    assert compute_epsilon(sigma, q, steps, delta) == pytest.approx(accountant.get_epsilon(delta), rel=1e-9)
    # TF Privacy's MNIST tutorial (batch 256, sigma 1.1, 60 epochs, delta 1e-5) reports eps 3.01,
    # computed with the classic RDP -> (eps, delta) conversion; dp-accounting's conversion is tighter.
    orders, rdp = np.array(accountant._orders), np.array(accountant._rdp)
    assert float(np.min(rdp + np.log(1 / delta) / (orders - 1))) == pytest.approx(3.01, abs=0.01)
    assert 2.4 < compute_epsilon(sigma, q, steps, delta) < 3.01
    pld = compute_epsilon(sigma, q, steps, delta, accountant="pld")
    assert pld < compute_epsilon(sigma, q, steps, delta)  # PLD is tighter than RDP
    assert compute_epsilon(sigma, q, 0, delta) == 0.0


def test_the_solved_noise_multiplier_spends_the_target_epsilon():
    sigma = noise_multiplier_for(3.0, 0.01, 1000, 1e-5)
    assert compute_epsilon(sigma, 0.01, 1000, 1e-5) == pytest.approx(3.0, abs=1e-3)
    assert noise_multiplier_for(1.0, 0.01, 1000, 1e-5) > sigma > noise_multiplier_for(8.0, 0.01, 1000, 1e-5)


def test_count_examples_sums_the_batches():
    assert count_examples(tf.data.Dataset.range(10).batch(4)) == 10


@pytest.mark.parametrize("override, message", [
    ("training.privacy={enabled: true}", "exactly one of noise_multiplier and target_epsilon"),
    ("training.privacy={enabled: true, noise_multiplier: 1, target_epsilon: 3}", "exactly one"),
    ("training.privacy={enabled: true, noise_multiplier: 1, l2_norm_clip: -1}", "l2_norm_clip must be positive"),
    ("training.privacy={enabled: true, noise_multiplier: -0.5}", "noise_multiplier must be positive"),
    ("training.privacy={enabled: true, noise_multiplier: 1, delta: 0}", "delta must be in (0, 1)"),
    ("training.privacy={enabled: true, noise_multiplier: 1, accountant: moments}", "accountant must be one of"),
    ("task=question_answering", "training.privacy supports task"),
    ("training.mixed_precision=mixed_float16", "mixed_float16"),
    ("training.distribution=mirrored", "one device"),
    ("training.privacy={enabled: true, noise_multiplier: 1, train_backbone: 3}", "train_backbone"),
    ("training.adversarial.method=fgm", "cannot be combined"),
])
def test_bad_privacy_settings_name_the_key(override, message):
    base = ["training.privacy={enabled: true, noise_multiplier: 1.0}"]
    overrides = [override] if override.startswith("training.privacy") else [*base, override]
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(overrides=overrides, config_class=FinetuneConfig)


def test_pretraining_privacy_is_for_the_causal_lm():
    with pytest.raises(ConfigError, match="supports objective clm, not mlm_nsp"):
        load_config(overrides=["training.privacy={enabled: true, noise_multiplier: 1}"])
    config = load_config(overrides=["objective=clm", "model.family=gpt",
                                    "training.privacy={enabled: true, target_epsilon: 8}"],
                         config_class=PretrainConfig)
    assert config.training.privacy.target_epsilon == 8.0 and config.training.privacy.delta == 1e-5


def test_private_finetuning_run_writes_epsilon_and_learns(tmp_path, capsys):
    # One word decides the label: learnable in a few epochs by a tiny model from scratch. The noise
    # is tiny (sigma 0.001, a huge epsilon): a tiny BERT from scratch sits on a flat plateau
    # where stronger noise drowns its gradients. This checks the plumbing; the next test and the
    # benchmark (pretrained MiniLM) the learning under real noise.
    rows = [(POSITIVE[i % 5] if i % 2 else NEGATIVE[i % 5], ["neg", "pos"][i % 2]) for i in range(160)]
    train = tmp_path / "train.tsv"
    train.write_text("text\tlabel\n" + "".join(f"{t}\t{l}\n" for t, l in rows))
    out = tmp_path / "dp"
    assert main(["finetune", *TINY, "--train-file", str(train), "--output-dir", str(out),
                 "--set", "training.epochs=8", "--set", "training.learning_rate=0.005",
                 "--set", "training.privacy={enabled: true, l2_norm_clip: 1.0, noise_multiplier: 0.001}"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["privacy_delta"] == 1e-5 and metrics["privacy"]["noise_multiplier"] == 0.001
    expected = compute_epsilon(0.001, 16 / 144, metrics["steps"], 1e-5)
    assert metrics["privacy_epsilon"] == pytest.approx(expected) and metrics["privacy_epsilon"] > 0
    assert "epsilon" in capsys.readouterr().out
    with open(out / "history.csv") as f:
        history = list(csv.DictReader(f))
    assert float(history[-1]["loss"]) < float(history[0]["loss"]) - 0.1  # the loss goes down
    model = keras.saving.load_model(out / "model.keras")
    assert type(model).__name__ == "TextClassifier"  # the plain task model, not the trainer


def test_a_model_learns_under_real_noise():
    """Logistic regression on separable points: sigma 1.0, clip 1.0, the loss falls well below log 2."""
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    points = rng.normal(size=(1024, 2)).astype("float32")
    labels = (points[:, 0] + points[:, 1] > 0).astype("int32")
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    trainer = PrivateTrainer(model, l2_norm_clip=1.0, noise_multiplier=1.0)
    trainer.compile(optimizer=keras.optimizers.SGD(0.5), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = trainer.fit(points, labels, batch_size=128, epochs=4, verbose=0).history["loss"]
    assert history[-1] < 0.4 < np.log(2)


@pytest.mark.slow  # about 10 s alone, 15-20 s on busy cores: run with -m slow
def test_private_causal_lm_pretraining_writes_epsilon_for_packed_blocks(tmp_path):
    from test_generative_pretraining import TINY as GPT_TINY
    from test_pretrain_cli import write_corpus

    train = tmp_path / "train.txt"
    write_corpus(train)
    out = tmp_path / "gpt"
    assert main(["pretrain", "--train-files", str(train), "--steps", "2", "--output-dir", str(out),
                 "--set", "objective=clm", "--set", "model.family=gpt", *GPT_TINY,
                 "--set", "training.privacy={enabled: true, noise_multiplier: 1.0}"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    privacy = metrics["privacy"]
    assert metrics["steps"] == 2 and privacy["examples"] > 4  # N = the packed 32-token blocks
    assert metrics["privacy_epsilon"] == pytest.approx(
        compute_epsilon(1.0, 4 / privacy["examples"], 2, 1e-5))
