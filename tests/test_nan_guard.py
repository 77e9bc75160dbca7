"""A NaN loss or NaN weights stop the run with the step, and never become the latest checkpoint;
an unwritable output directory stops it before any work."""

import os
import re

import numpy as np
import pytest
import tensorflow as tf
import keras

from test_finetune_cli import TINY as FINETUNE_TINY, reviews
from test_pretrain_cli import pretrain_args, write_corpus
from tfptlm.cli import main
from tfptlm.training.callbacks import CheckpointEveryEpoch
from tfptlm.training.nan_guard import NaNGuard, TrainingDivergedError
from tfptlm.training.output_dir import OutputDirError, check_output_dir


def poisoned(dataset: tf.data.Dataset, first_bad_batch: int) -> tf.data.Dataset:
    """Multiplies every float tensor (the sample weights) by NaN from ``first_bad_batch`` on."""

    def poison(index, element):
        bad = index >= first_bad_batch
        return tf.nest.map_structure(
            lambda t: tf.where(bad, t * np.nan, t) if t.dtype.is_floating else t, element
        )

    return dataset.enumerate().map(poison)


def tiny_regression(tmp_path):
    """A one-layer model, its data (NaN weights from batch 5 on) and a checkpoint manager."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    x = np.random.default_rng(0).normal(size=(40, 3)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, x.sum(1, keepdims=True), np.ones(40, "float32")))
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    manager = tf.train.CheckpointManager(checkpoint, tmp_path / "checkpoints", max_to_keep=3)
    return model, data.batch(4), manager


def restored_weights(model, path):
    copy = keras.models.clone_model(model)
    tf.train.Checkpoint(model=copy).restore(path).expect_partial()
    return copy.get_weights()


def test_nan_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(tmp_path):
    model, data, manager = tiny_regression(tmp_path)
    with pytest.raises(TrainingDivergedError, match=r"at step 6: the loss is nan.*ckpt-4, kept as the latest"):
        model.fit(poisoned(data, 5), epochs=5, steps_per_epoch=2, verbose=0, shuffle=False,
                  callbacks=[NaNGuard(tmp_path / "checkpoints"), CheckpointEveryEpoch(manager)])
    assert manager.latest_checkpoint.endswith("ckpt-4")
    assert tf.train.latest_checkpoint(tmp_path / "checkpoints") == manager.latest_checkpoint
    assert all(np.isfinite(w).all() for w in restored_weights(model, manager.latest_checkpoint))


def test_nan_weights_with_a_finite_loss_are_caught_before_the_epoch_checkpoint(tmp_path):
    model, data, manager = tiny_regression(tmp_path)

    class BreakWeightsAtStep4(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations.numpy()) == 4:  # last step of epoch 2
                self.model.layers[0].bias.assign([np.inf])

    with pytest.raises(TrainingDivergedError, match=r"at step 4: weight \S+/bias holds NaN.*ckpt-2"):
        model.fit(data.repeat(), epochs=3, steps_per_epoch=2, verbose=0, shuffle=False,
                  callbacks=[BreakWeightsAtStep4(), NaNGuard(tmp_path / "checkpoints"),
                             CheckpointEveryEpoch(manager)])
    assert manager.latest_checkpoint.endswith("ckpt-2")


def test_guard_without_checkpoints_says_nothing_was_saved(tmp_path):
    model, data, _ = tiny_regression(tmp_path)
    with pytest.raises(TrainingDivergedError, match=r"at step 1: the loss is nan; nothing was saved"):
        model.fit(poisoned(data, 0), epochs=1, verbose=0, shuffle=False, callbacks=[NaNGuard()])


def test_pretraining_with_a_nan_loss_exits_1_and_keeps_its_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    import tfptlm.pretraining as pretraining

    make_datasets = pretraining.make_datasets

    def nan_from_step_6(*args, **kwargs):
        train, evaluation = make_datasets(*args, **kwargs)
        return poisoned(train, 5), evaluation

    monkeypatch.setattr(pretraining, "make_datasets", nan_from_step_6)
    out = tmp_path / "run"
    assert main(pretrain_args(write_corpus(tmp_path / "train.txt"), out, 10)) == 1
    error = capsys.readouterr().err
    assert "training stopped at step 6: the loss is nan" in error
    assert f"the last good checkpoint is {out / 'checkpoints' / 'ckpt-4'}" in error
    latest = tf.train.latest_checkpoint(out / "checkpoints")
    assert latest.endswith("ckpt-4")
    reader = tf.train.load_checkpoint(latest)
    names = [name for name in reader.get_variable_to_shape_map() if name.startswith("model/")]
    assert names and all(np.isfinite(reader.get_tensor(name)).all() for name in names)
    assert not (out / "pretrainer.keras").exists() and not (out / "metrics.json").exists()


def test_finetuning_that_diverges_exits_1_and_saves_no_model(tmp_path, capsys):
    train = tmp_path / "train.tsv"
    train.write_text("text\tlabel\n" + "".join(f"{t}\t{l}\n" for t, l in reviews(64, seed=0)))
    out = tmp_path / "run"
    code = main(["finetune", *FINETUNE_TINY, "--train-file", str(train), "--output-dir", str(out),
                 "--set", "training.learning_rate=1e30", "--set", "training.warmup_ratio=0",
                 "--set", "training.epochs=4"])
    error = capsys.readouterr().err
    assert code == 1, error
    assert re.search(r"training stopped at step \d+: (the loss is (nan|inf)|weight \S+ holds NaN)", error), error
    assert not (out / "model.keras").exists() and not (out / "metrics.json").exists()
    latest = tf.train.latest_checkpoint(out / "checkpoints")
    if latest:  # it diverged after the first epoch: the checkpoint kept is a finite one
        reader = tf.train.load_checkpoint(latest)
        assert all(np.isfinite(reader.get_tensor(name)).all()
                   for name in reader.get_variable_to_shape_map() if name.startswith("model/"))


def test_an_unwritable_output_directory_is_named_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(OutputDirError, match=f"output directory {blocker / 'run'}: its parent {blocker} is not a dir"):
        check_output_dir(blocker / "run")
    with pytest.raises(OutputDirError, match=f"output directory {blocker}: it is not a directory"):
        check_output_dir(blocker)
    check_output_dir(tmp_path / "new" / "deeper")  # creatable: fine, and nothing is made
    assert not (tmp_path / "new").exists()
    train = write_corpus(tmp_path / "train.txt")
    assert main(pretrain_args(train, blocker / "run", 2)) == 1
    assert f"cannot write the output directory {blocker / 'run'}" in capsys.readouterr().err
    assert main(["finetune", "--train-file", "missing.tsv", "--output-dir", str(blocker)]) == 1
    assert f"cannot write the output directory {blocker}: it is not a directory" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write read-only directories")
def test_a_read_only_output_directory_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(OutputDirError, match="locked: it is not writable"):
        check_output_dir(locked)
    with pytest.raises(OutputDirError, match="its parent .*locked is not writable"):
        check_output_dir(locked / "run")
