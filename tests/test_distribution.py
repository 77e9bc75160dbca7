"""``training.distribution``: config and TF_CONFIG errors, MirroredStrategy in-process, and real
multi-worker training: two ``tfptlm finetune`` processes on 127.0.0.1 (CPU, TF_CONFIG) reach the loss
and weights of one worker with the same global batch, only the chief writes, a killed worker makes
the other one fail with a clear message, and re-running both resumes from the last checkpoint."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from test_finetune_cli import TINY, reviews
from test_resume import checkpoint_difference, listed_steps
from tfptlm.cli import main
from tfptlm.config import ConfigError, FinetuneConfig, PretrainConfig, load_config
from tfptlm.training.distribution import DistributionError, read_tf_config

# Deterministic and dropout-free (backbone and head): replicas draw other dropout masks than one worker would.
EXACT = ["--set", "training.deterministic=true", "--set", "training.dropout=0.0", "--set",
         "backbone.config={num_layers: 1, hidden_dim: 32, num_heads: 2, intermediate_dim: 64, dropout: 0.0}"]
# 64 examples, batch 16 (8 per worker): 4 steps per epoch, every batch splits evenly.
EXAMPLES = 64


@pytest.mark.parametrize("config_class", [PretrainConfig, FinetuneConfig])
def test_config_names_the_bad_distribution_key(config_class):
    with pytest.raises(ConfigError, match=r"training.distribution must be one of none, mirrored, "
                                          r"multi_worker, tpu; got 'horovod'"):
        load_config(overrides=["training.distribution=horovod"], config_class=config_class).validate()
    with pytest.raises(ConfigError, match=r"training.tpu is set \('my-tpu'\) but training.distribution "
                                          r"is 'mirrored', not tpu"):
        load_config(overrides=["training.distribution=mirrored", "training.tpu=my-tpu"],
                    config_class=config_class).validate()
    load_config(overrides=["training.distribution=tpu", "training.tpu=my-tpu"], config_class=config_class).validate()


def tf_config(workers, index, kind="worker"):
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": kind, "index": index}})


@pytest.mark.parametrize("value, message", [
    (None, "the environment variable TF_CONFIG is not set"),
    ("{cluster: 1}", "TF_CONFIG is not valid JSON"),
    ('{"task": {"type": "worker", "index": 0}}', 'TF_CONFIG has no "cluster" object'),
    ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', 'cluster job "ps" is not supported'),
    ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}',
     'cluster "worker" must be a non-empty list of "host:port" strings'),
    ('{"cluster": {"worker": ["a:1", "b:2"]}}', 'TF_CONFIG has no "task"'),
    (tf_config(["a:1", "b:2"], 0, kind="chief"), 'task type "chief" is not a job of its cluster'),
    (tf_config(["a:1", "b:2"], 2), "task index 2 is out of range: cluster \"worker\" lists 2 address"),
])
def test_tf_config_errors_say_what_is_wrong(value, message):
    environ = {} if value is None else {"TF_CONFIG": value}
    with pytest.raises(DistributionError, match=message):
        read_tf_config(environ)


def test_a_valid_tf_config_is_returned():
    assert read_tf_config({"TF_CONFIG": tf_config(["a:1", "b:2"], 1)})["task"] == {"type": "worker", "index": 1}


def test_missing_tf_config_stops_the_command_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    train = training_file(tmp_path)
    assert main(["finetune", *TINY, "--train-file", str(train), "--set", "training.distribution=multi_worker",
                 "--output-dir", str(tmp_path / "run")]) == 1
    assert "TF_CONFIG is not set" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def training_file(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("text\tlabel\n" + "".join(f"{t}\t{l}\n" for t, l in reviews(EXAMPLES, seed=0)))
    return train


def finetune_args(train, out, epochs, *extra):
    # data.eval_share 0.25: 48 training examples, 3 steps of 16 per epoch
    return ["finetune", *TINY, *EXACT, "--train-file", str(train), "--set", "data.eval_share=0.25",
            "--set", f"training.epochs={epochs}", "--output-dir", str(out), *extra]


def losses(out) -> list[float]:
    rows = (out / "history.csv").read_text().strip().split("\n")
    column = rows[0].split(",").index("loss")
    return [float(row.split(",")[column]) for row in rows[1:]]


def test_mirrored_strategy_on_one_device_trains_like_no_strategy(tmp_path):
    train = training_file(tmp_path)
    assert main(finetune_args(train, tmp_path / "plain", 2)) == 0
    assert main(finetune_args(train, tmp_path / "mirrored", 2, "--set", "training.distribution=mirrored")) == 0
    metrics = json.loads((tmp_path / "mirrored" / "metrics.json").read_text())
    assert metrics["steps"] == 6
    np.testing.assert_allclose(losses(tmp_path / "mirrored"), losses(tmp_path / "plain"), rtol=1e-6)
    assert checkpoint_difference(tmp_path / "mirrored", tmp_path / "plain") <= 1e-6


# ---------------------------------------------------------------- two worker processes on 127.0.0.1


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture
def started():
    """The worker processes a test starts; any still running at its end are killed."""
    processes = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def start_workers(args, tmp_path, started, count=2):
    """``tfptlm *args`` as ``count`` workers of one cluster (CPU only); returns the processes."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(count)]
    scratch = tmp_path / "worker_tmp"  # where non-chief workers keep their temporary outputs
    scratch.mkdir(exist_ok=True)
    processes = []
    for index in range(count):
        env = dict(os.environ, TF_CONFIG=tf_config(workers, index), CUDA_VISIBLE_DEVICES="",
                   TF_CPP_MIN_LOG_LEVEL="3", TMPDIR=str(scratch))
        log = open(tmp_path / f"worker{index}.log", "w")
        processes.append(subprocess.Popen([sys.executable, "-m", "tfptlm", *args, "--set",
                                           "training.distribution=multi_worker"],
                                          env=env, stdout=log, stderr=subprocess.STDOUT))
    started.extend(processes)
    return processes


def wait_all(processes, timeout):
    deadline = time.time() + timeout
    try:
        return [p.wait(timeout=max(1, deadline - time.time())) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()


def log(tmp_path, index):
    return (tmp_path / f"worker{index}.log").read_text()


def test_two_workers_reach_the_loss_of_one_worker_and_only_the_chief_writes(tmp_path, started):
    train = training_file(tmp_path)
    two, one = tmp_path / "two_workers", tmp_path / "one_worker"
    processes = start_workers(finetune_args(train, two, 2), tmp_path, started)
    assert main(finetune_args(train, one, 2)) == 0  # the reference, meanwhile
    codes = wait_all(processes, timeout=240)
    assert codes == [0, 0], log(tmp_path, 0)[-3000:] + log(tmp_path, 1)[-3000:]

    metrics, expected = (json.loads((out / "metrics.json").read_text()) for out in (two, one))
    assert metrics["steps"] == expected["steps"] == 6
    np.testing.assert_allclose(losses(two), losses(one), rtol=1e-6)  # measured: 1e-7
    assert checkpoint_difference(two, one) <= 1e-6  # measured: 1.2e-7
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    assert len(json.loads((two / "run_info.json").read_text())["runs"]) == 1  # the chief's only
    assert list((tmp_path / "worker_tmp").iterdir()) == []  # worker 1 deleted its temporary outputs


@pytest.mark.slow  # four tfptlm processes: about 70 s on 2 busy CPU cores
def test_a_killed_worker_fails_the_job_clearly_and_a_rerun_resumes(tmp_path, started):
    train = training_file(tmp_path)
    out = tmp_path / "run"
    args = finetune_args(train, out, 12)  # 36 steps, a checkpoint every 3
    processes = start_workers(args, tmp_path, started)
    deadline = time.time() + 180
    while (listed_steps(out) or [0])[-1] < 6 and time.time() < deadline and processes[0].poll() is None:
        time.sleep(0.05)
    processes[1].send_signal(signal.SIGKILL)
    killed = time.time()
    codes = wait_all(processes, timeout=60)
    failed_after = time.time() - killed
    assert codes[1] == -signal.SIGKILL
    assert codes[0] == 1, log(tmp_path, 0)[-3000:]
    message = log(tmp_path, 0).strip().splitlines()[-1]
    assert "lost contact with the other workers: a peer worker probably died" in message
    assert "run the same command again on every worker to resume" in message
    assert failed_after < 30
    assert not (out / "metrics.json").exists()
    resumed_from = listed_steps(out)[-1]
    assert 0 < resumed_from < 36

    codes = wait_all(start_workers(args, tmp_path, started), timeout=240)
    assert codes == [0, 0], log(tmp_path, 0)[-3000:] + log(tmp_path, 1)[-3000:]
    assert f"Resuming from {out / 'checkpoints' / f'ckpt-{resumed_from}'}" in log(tmp_path, 1)  # the chief's
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 36 and metrics["steps_this_run"] == 36 - resumed_from
    runs = json.loads((out / "run_info.json").read_text())["runs"]
    assert [run["start_step"] for run in runs] == [0, resumed_from]
