"""Checkpoints a run resumes from: what they hold, damaged files, and where the data stream picks up."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from tfptlm.config import FinetuneConfig, PretrainConfig, dump_config
from tfptlm.training.callbacks import CheckpointEveryEpoch
from tfptlm.training.checkpoints import (
    CheckpointError,
    check_resumable,
    continue_stream,
    open_checkpoints,
    restore_newest,
)


def tiny_model(width=8):
    """A built model with dropout (so a seed generator) and a built optimizer."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(width), keras.layers.Dropout(0.5), keras.layers.Dense(1)]
    )
    optimizer = keras.optimizers.Adam(0.01)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def save_steps(directory, steps=(2, 4, 6)):
    """Checkpoints whose every weight and the step counter equal the step number."""
    model, optimizer = tiny_model()
    manager = open_checkpoints(directory, model, optimizer)
    for step in steps:
        for variable in model.trainable_variables:
            variable.assign(np.full(variable.shape, step, "float32"))
        optimizer.iterations.assign(step)
        manager.save(checkpoint_number=step)
    return manager


def restore_into_new_model(directory):
    model, optimizer = tiny_model()
    path = restore_newest(open_checkpoints(directory, model, optimizer))
    return path, model, int(optimizer.iterations.numpy())


def test_a_new_directory_has_nothing_to_restore(tmp_path):
    assert restore_into_new_model(tmp_path / "checkpoints")[0] is None


def test_the_newest_checkpoint_is_restored_in_full(tmp_path):
    save_steps(tmp_path)
    path, model, step = restore_into_new_model(tmp_path)
    assert path == str(tmp_path / "ckpt-6") and step == 6
    assert all((w == 6).all() for w in model.get_weights()[:4])


def test_the_dropout_seed_state_is_saved_and_restored(tmp_path):
    model, optimizer = tiny_model()
    manager = open_checkpoints(tmp_path, model, optimizer)
    seeds = [v for v in model.non_trainable_variables if "seed" in v.path]
    assert seeds  # Keras keeps them out of model's own checkpoint tracking
    model(np.ones((2, 3), "float32"), training=True)  # a dropout draw moves the state on
    saved = [v.numpy().copy() for v in seeds]
    manager.save(checkpoint_number=1)
    model(np.ones((2, 3), "float32"), training=True)
    assert any((v.numpy() != s).any() for v, s in zip(seeds, saved))
    restore_newest(manager)
    assert all((v.numpy() == s).all() for v, s in zip(seeds, saved))


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_bytes(path):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle - 8 : middle + 8] = bytes(255 - b for b in data[middle - 8 : middle + 8])
    path.write_bytes(bytes(data))


DAMAGE = {
    "data-truncated": lambda d: truncate(d / "ckpt-6.data-00000-of-00001"),
    "data-deleted": lambda d: (d / "ckpt-6.data-00000-of-00001").unlink(),
    "data-bytes-flipped": lambda d: flip_bytes(d / "ckpt-6.data-00000-of-00001"),
    "data-emptied": lambda d: (d / "ckpt-6.data-00000-of-00001").write_bytes(b""),
    "index-truncated": lambda d: truncate(d / "ckpt-6.index"),
    "index-deleted": lambda d: (d / "ckpt-6.index").unlink(),
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path, damage):
    save_steps(tmp_path)
    damage(tmp_path)
    with pytest.warns(UserWarning, match=r"skipped unreadable checkpoint\(s\) \S*ckpt-6: .*resuming from \S*ckpt-4"):
        path, model, step = restore_into_new_model(tmp_path)
    assert path == str(tmp_path / "ckpt-4") and step == 4
    assert all((w == 4).all() for w in model.get_weights()[:4])  # every weight from ckpt-4


def test_no_readable_checkpoint_stops_with_the_files_named(tmp_path):
    save_steps(tmp_path, steps=(2, 4))
    truncate(tmp_path / "ckpt-4.data-00000-of-00001")
    (tmp_path / "ckpt-2.index").unlink()
    with pytest.raises(CheckpointError, match=r"no checkpoint in .* can be read \(\S*ckpt-4: .*; \S*ckpt-2: "):
        restore_into_new_model(tmp_path)


@pytest.mark.parametrize("state", ["deleted", "garbage"])
def test_without_a_readable_checkpoint_list_the_files_are_used(tmp_path, state):
    save_steps(tmp_path)
    if state == "deleted":
        (tmp_path / "checkpoint").unlink()
    else:
        (tmp_path / "checkpoint").write_text("model_checkpoint_path: \x00{{")
    with pytest.warns(UserWarning, match="missing or unreadable; trying the checkpoint files ckpt-6, ckpt-4, ckpt-2"):
        path, _, step = restore_into_new_model(tmp_path)
    assert path == str(tmp_path / "ckpt-6") and step == 6


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    save_steps(tmp_path)
    model, optimizer = tiny_model(width=16)
    with pytest.raises(CheckpointError, match=r"ckpt-6 does not fit this model: .*shape"):
        restore_newest(open_checkpoints(tmp_path, model, optimizer))


def test_a_write_cut_short_leaves_the_previous_checkpoint_latest_and_is_redone(tmp_path):
    manager = save_steps(tmp_path, steps=(2, 4))
    # What a kill during the write of ckpt-6 leaves: temporary shards, no list entry.
    (tmp_path / "ckpt-6_temp").mkdir()
    (tmp_path / "ckpt-6_temp" / "part-00000-of-00001.data-00000-of-00001.tempstate123").write_bytes(b"half")
    assert restore_into_new_model(tmp_path)[0] == str(tmp_path / "ckpt-4")
    assert not (tmp_path / "ckpt-6_temp").exists()  # what the cut-short write left is cleared
    manager.checkpoint.optimizer.iterations.assign(6)
    manager.save(checkpoint_number=6)
    assert restore_into_new_model(tmp_path)[2] == 6


def test_the_epoch_callback_saves_each_step_once_and_replaces_a_damaged_newest(tmp_path):
    model, optimizer = tiny_model()
    model.compile(optimizer=optimizer, loss="mse")
    data = tf.data.Dataset.from_tensors((np.ones((4, 3), "float32"), np.ones((4, 1), "float32"))).repeat()
    manager = open_checkpoints(tmp_path, model, optimizer)
    model.fit(data, epochs=3, steps_per_epoch=2, verbose=0, shuffle=False, callbacks=[CheckpointEveryEpoch(manager)])
    assert [p.rsplit("-", 1)[1] for p in manager.checkpoints] == ["2", "4", "6"]

    truncate(tmp_path / "ckpt-6.data-00000-of-00001")
    model, optimizer = tiny_model()
    model.compile(optimizer=optimizer, loss="mse")
    manager = open_checkpoints(tmp_path, model, optimizer)
    with pytest.warns(UserWarning, match="ckpt-6"):
        restore_newest(manager)
    model.fit(data, epochs=3, initial_epoch=2, steps_per_epoch=2, verbose=0, shuffle=False,
              callbacks=[CheckpointEveryEpoch(manager)])
    assert restore_into_new_model(tmp_path)[2] == 6  # rewritten whole


def seeded_stream(seed):
    """Shaped like the pretraining pipelines: reshuffled every epoch, endless, fresh random seeds."""
    dataset = tf.data.Dataset.range(10).shuffle(10, seed=seed, reshuffle_each_iteration=True).repeat()
    seeds = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip(dataset, seeds).batch(3)


def as_lists(dataset, count):
    return [[t.numpy().tolist() for t in batch] for batch in dataset.take(count)]


def test_a_continued_stream_is_the_rest_of_the_uninterrupted_one():
    tf.random.set_seed(0)
    uninterrupted = as_lists(seeded_stream(5), 12)
    tf.random.set_seed(0)  # a resumed run seeds as the first one did
    assert as_lists(continue_stream(seeded_stream(5), 7), 5) == uninterrupted[7:]
    assert uninterrupted[:4] != uninterrupted[4:8]  # the epochs do differ


def test_resuming_under_other_model_settings_is_refused_with_the_key(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "ckpt-4.index").write_bytes(b"")
    dump_config(PretrainConfig(), tmp_path / "config.yaml")
    changed = PretrainConfig()
    changed.training.steps = 99  # training settings may change
    check_resumable(changed, tmp_path, ("model", "tokenizer"))
    changed.model.hidden_dim = 7
    with pytest.raises(ValueError, match=r"model\.hidden_dim differ"):
        check_resumable(changed, tmp_path, ("model", "tokenizer"))

    dump_config(FinetuneConfig(), tmp_path / "config.yaml")
    other = FinetuneConfig(task="token_classification")
    with pytest.raises(ValueError, match=r"\(task differ"):
        check_resumable(other, tmp_path, ("task", "backbone", "tokenizer"))
