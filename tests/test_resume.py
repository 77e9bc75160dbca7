"""A run killed with SIGKILL resumes when the same command is re-run, exactly: same step count and,
with ``training.deterministic``, the same final weights (optimizer and seeds too) as an
uninterrupted run. Kills are real (a subprocess); the uninterrupted reference runs in this
process, next to the subprocess, to save time."""

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from test_finetune_cli import TINY as FINETUNE_TINY, reviews
from test_pretrain_cli import pretrain_args, write_corpus
from tfptlm.cli import main

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
DETERMINISTIC = ["--set", "training.deterministic=true"]


@pytest.fixture(autouse=True)
def _op_determinism_off_afterwards():
    """``training.deterministic`` turns op determinism on for the whole process; later tests
    should run as they would alone."""
    from tensorflow.python.framework import config as tf_config

    was_on = tf_config.is_op_determinism_enabled()
    yield
    if not was_on:
        tf_config.disable_op_determinism()


def pretraining(tmp_path, steps=8):
    """The arguments of a tiny deterministic pretraining run that checkpoints every 2 steps."""
    train = write_corpus(tmp_path / "train.txt", documents=20)
    return lambda out: pretrain_args(train, out, steps, *DETERMINISTIC)


def finetuning(tmp_path, epochs=3):
    """The arguments of a tiny deterministic fine-tuning run: 4 steps (one checkpoint) per epoch."""
    train = tmp_path / "train.tsv"
    train.write_text("text\tlabel\n" + "".join(f"{t}\t{l}\n" for t, l in reviews(71, seed=0)))
    return lambda out: ["finetune", *FINETUNE_TINY, *DETERMINISTIC, "--train-file", str(train),
                        "--set", f"training.epochs={epochs}", "--output-dir", str(out)]


def listed_steps(out) -> list[int]:
    """The steps of the checkpoints that the run's checkpoint list names."""
    state = out / "checkpoints" / "checkpoint"
    text = state.read_text() if state.is_file() else ""
    return sorted({int(step) for step in re.findall(r'ckpt-(\d+)"', text)})


def start_killed(args, ready, timeout=240):
    """Starts ``tfptlm args`` and SIGKILLs it once ``ready()`` (from a thread); returns a join."""
    process = subprocess.Popen([sys.executable, "-m", "tfptlm", *args], env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def watch():
        deadline = time.time() + timeout
        while process.poll() is None and time.time() < deadline and not ready():
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()

    thread = threading.Thread(target=watch)
    thread.start()

    def join():
        thread.join()
        return process.returncode

    return join


def once(condition, delay):
    """A ``ready`` for :func:`start_killed`: true ``delay`` seconds after ``condition()`` first is."""
    since = []

    def ready():
        if not since and condition():
            since.append(time.time())
        return bool(since) and time.time() >= since[0] + delay

    return ready


def checkpoint_difference(a, b) -> float:
    """Largest difference between the final checkpoints of runs ``a`` and ``b`` (all tensors)."""
    first = tf.train.load_checkpoint(tf.train.latest_checkpoint(a / "checkpoints"))
    second = tf.train.load_checkpoint(tf.train.latest_checkpoint(b / "checkpoints"))
    names = sorted(n for n in first.get_variable_to_shape_map() if "OBJECT_GRAPH" not in n)
    assert names == sorted(n for n in second.get_variable_to_shape_map() if "OBJECT_GRAPH" not in n)
    return max(
        float(np.max(np.abs(first.get_tensor(n).astype("float64") - second.get_tensor(n).astype("float64"))))
        for n in names
    )


def truncate_newest_data_file(out) -> str:
    newest = tf.train.latest_checkpoint(out / "checkpoints")
    data = out / "checkpoints" / f"{os.path.basename(newest)}.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100])
    return newest


@pytest.mark.parametrize("kind", ["pretrain", "finetune"])
def test_killed_once_with_a_damaged_newest_checkpoint_ends_as_if_never_killed(tmp_path, kind):
    """SIGKILL after the second checkpoint, cut the newest checkpoint's data file short (a lost
    write); the re-run warns, resumes from the checkpoint before and ends with the weights,
    optimizer state and step of an uninterrupted run."""
    args = pretraining(tmp_path) if kind == "pretrain" else finetuning(tmp_path)
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    join = start_killed(args(killed), ready=lambda: len(listed_steps(killed)) >= 2)
    assert main(args(reference)) == 0
    assert join() == -signal.SIGKILL
    assert not (killed / "metrics.json").exists(), "the run finished before it was killed"

    newest = truncate_newest_data_file(killed)
    with pytest.warns(UserWarning, match=f"skipped unreadable checkpoint\\(s\\) {re.escape(newest)}"):
        assert main(args(killed)) == 0

    metrics = json.loads((killed / "metrics.json").read_text())
    expected = json.loads((reference / "metrics.json").read_text())
    assert metrics["steps"] == expected["steps"] == (8 if kind == "pretrain" else 12)
    assert 0 < metrics["steps_this_run"] < metrics["steps"]  # resumed mid-run, not from scratch
    assert checkpoint_difference(killed, reference) <= 1e-6
    runs = json.loads((killed / "run_info.json").read_text())["runs"]
    assert [run["start_step"] for run in runs] == [0, metrics["steps"] - metrics["steps_this_run"]]
    assert all(run["deterministic"] for run in runs)
    for name in ("vocab.txt", "tokenizer.json"):  # a fine-tuning run re-learns its vocabulary
        tokenizer = [out / "tokenizer" / name for out in (killed, reference)]
        assert tokenizer[0].read_bytes() == tokenizer[1].read_bytes()


@pytest.mark.slow  # six tfptlm processes: 30-60 s per kind on 2 CPU cores, 1-3 min when they are busy
@pytest.mark.parametrize("kind", ["pretrain", "finetune"])
def test_killed_at_random_moments_several_times_ends_as_if_never_killed(tmp_path, kind):
    """Kills land while starting, while training and while checkpoints are written (a random
    delay after a checkpoint is listed, or one about to be); each re-run resumes."""
    if kind == "pretrain":
        args, steps = pretraining(tmp_path, steps=24), 24
    else:
        args, steps = finetuning(tmp_path, epochs=6), 24
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    rng = random.Random(0)
    kills = 0
    for after in (None, 4, 8, 12, 16):  # None: some seconds after the start, maybe before any work
        if after is None:
            ready = once(lambda: True, rng.uniform(2, 12))
        else:
            ready = once(lambda: (listed_steps(killed) or [0])[-1] >= after, rng.uniform(0, 0.5))
        join = start_killed(args(killed), ready)
        if after is None:
            assert main(args(reference)) == 0  # the reference, meanwhile
        kills += join() == -signal.SIGKILL
    assert kills == 5
    assert not (killed / "metrics.json").exists()
    final = subprocess.run([sys.executable, "-m", "tfptlm", *args(killed)], env=ENV,
                           capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-3000:]

    metrics = json.loads((killed / "metrics.json").read_text())
    assert metrics["steps"] == steps
    assert checkpoint_difference(killed, reference) <= 1e-6
    starts = [run["start_step"] for run in json.loads((killed / "run_info.json").read_text())["runs"]]
    assert starts == sorted(starts) and starts[-1] > 0
