"""Adversarial fine-tuning (FGM, PGD, FreeLB) on the word embeddings: known answers and errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfptlm.config import ConfigError, FinetuneConfig, load_config
from tfptlm.models.bert import BertBackbone
from tfptlm.tasks.text_classifier import TextClassifier
from tfptlm.training.adversarial import AdversarialTrainer, adversarial_trainer, project_to_ball

VOCAB = 12


def tiny_classifier(seed=0):
    keras.utils.set_random_seed(seed)
    backbone = BertBackbone(VOCAB, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
                            max_sequence_length=8, dropout=0.0)
    return TextClassifier(backbone, ["neg", "pos"], dropout=0.0)


def batch():
    """Token 4 or 5 decides the class; 1 = [CLS], 2 = [SEP]."""
    ids = np.array([[1, 4, 7, 2], [1, 5, 8, 2], [1, 9, 4, 2], [1, 5, 5, 2]], "int32")
    inputs = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids)}
    return inputs, np.array([1, 0, 1, 0], "int32")


def clean_gradients(model, inputs, labels, sources):
    with tf.GradientTape() as tape:
        logits = model(inputs, training=True)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    return [tf.convert_to_tensor(g) for g in tape.gradient(loss, sources)]


def table_of(model):
    return model.backbone.token_embedding.embeddings


def test_fgm_perturbation_is_epsilon_times_the_normalized_gradient_of_the_used_rows():
    model = tiny_classifier()
    trainer = AdversarialTrainer(model, method="fgm", epsilon=0.7)
    trainer.compile(optimizer="sgd")
    inputs, labels = batch()
    before = np.array(table_of(model))
    (gradient,) = clean_gradients(model, inputs, labels, [table_of(model)])
    expected = 0.7 * gradient.numpy() / np.linalg.norm(gradient.numpy())
    delta = trainer.perturbation(inputs, labels).numpy()
    np.testing.assert_allclose(delta, expected, rtol=1e-5, atol=1e-7)
    assert np.linalg.norm(delta) == pytest.approx(0.7, rel=1e-5)
    used = np.flatnonzero(np.abs(delta).sum(axis=1))
    assert set(used) <= set(np.unique(inputs["token_ids"])) and {4, 5, 7, 8, 9} <= set(used)
    np.testing.assert_array_equal(np.array(table_of(model)), before)  # put back exactly


def test_the_update_is_clean_plus_weight_times_adversarial_gradient():
    model = tiny_classifier()
    inputs, labels = batch()
    variables = model.trainable_variables
    table = table_of(model)
    *g_clean, g_table = clean_gradients(model, inputs, labels, [*variables, table])
    delta = 0.5 * g_table / tf.norm(g_table)
    before = [np.array(v) for v in variables]
    table.assign(table + delta)
    g_adversarial = clean_gradients(model, inputs, labels, variables)
    table.assign(before[[i for i, v in enumerate(variables) if v is table][0]])
    trainer = AdversarialTrainer(model, method="fgm", epsilon=0.5, weight=0.25)
    trainer.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0))
    trainer.train_on_batch(inputs, labels)
    for old, variable, clean, adversarial in zip(before, variables, g_clean, g_adversarial):
        expected = old - (clean.numpy() + 0.25 * adversarial.numpy())
        np.testing.assert_allclose(np.array(variable), expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", ["pgd", "freelb"])
def test_multi_step_perturbations_stay_inside_the_epsilon_ball(method):
    model = tiny_classifier()
    inputs, labels = batch()
    # Steps (alpha) larger than the ball: without the projection the norm would reach 4 * 0.6.
    trainer = AdversarialTrainer(model, method=method, epsilon=0.5, alpha=0.6, steps=4)
    trainer.compile(optimizer="sgd")
    delta = trainer.perturbation(inputs, labels).numpy()
    assert np.linalg.norm(delta) == pytest.approx(0.5, rel=1e-5)
    small = AdversarialTrainer(model, method=method, epsilon=10.0, alpha=0.1, steps=3)
    small.compile(optimizer="sgd")
    assert 0.1 < np.linalg.norm(small.perturbation(inputs, labels).numpy()) <= 0.3 + 1e-6


def test_project_to_ball():
    np.testing.assert_allclose(project_to_ball(tf.constant([[3.0, 4.0]]), 1.0), [[0.6, 0.8]])
    np.testing.assert_allclose(project_to_ball(tf.constant([[0.3, 0.4]]), 1.0), [[0.3, 0.4]])


@pytest.mark.parametrize("method", ["fgm", "pgd", "freelb"])
def test_fit_changes_the_weights_and_lowers_the_loss(method):
    model = tiny_classifier()
    inputs, labels = batch()
    before = [np.array(v) for v in model.trainable_variables]
    trainer = AdversarialTrainer(model, method=method, epsilon=0.1, alpha=0.05, steps=2)
    trainer.compile(optimizer=keras.optimizers.Adam(0.03))
    repeated = {name: np.tile(value, (10, 1)) for name, value in inputs.items()}
    history = trainer.fit(repeated, np.tile(labels, 10), epochs=2, batch_size=4, shuffle=False, verbose=0).history
    assert history["loss"][-1] < history["loss"][0] * 0.7
    assert history["adversarial_loss"][-1] < history["adversarial_loss"][0]
    assert set(history) == {"loss", "accuracy", "adversarial_loss"}
    assert all(not np.allclose(b, np.array(v)) for b, v in zip(before, model.trainable_variables))
    assert trainer.evaluate(inputs, labels, verbose=0, return_dict=True)["accuracy"] == 1.0


def test_method_none_fits_the_task_itself():
    model = tiny_classifier()
    assert adversarial_trainer(model, FinetuneConfig().training.adversarial) is model


def test_a_backbone_without_word_embeddings_is_refused():
    inputs = keras.Input((3,))
    plain = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="no token_embedding"):
        AdversarialTrainer(plain)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["training.adversarial.method=fast"], "training.adversarial.method must be one of none, fgm, pgd, freelb"),
        (["training.adversarial.method=fgm", "training.adversarial.epsilon=0"],
         "training.adversarial.epsilon must be positive"),
        (["training.adversarial.steps=0"], "training.adversarial.steps must be positive"),
        (["training.adversarial.weight=-1"], "training.adversarial.weight must be >= 0"),
        (["training.adversarial.method=pgd", "task=question_answering"],
         "pgd is for text_classification, not question_answering"),
        (["training.adversarial.rate=1"], "unknown key 'training.adversarial.rate'"),
        (["training.adversarial.method=fgm", "training.distribution=mirrored"],
         "does not support training.distribution mirrored"),
    ],
)
def test_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides, config_class=FinetuneConfig)
