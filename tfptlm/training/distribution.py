"""Training on several devices or machines with TensorFlow's ``tf.distribute`` (``training.distribution``).

``none`` (default) trains on one device; ``mirrored`` on all GPUs of one
machine (``MirroredStrategy``); ``multi_worker`` on several machines, each
running the same command with its own ``TF_CONFIG``
(``MultiWorkerMirroredStrategy``); ``tpu`` on a TPU (``TPUStrategy``, the TPU
named by ``training.tpu``). The whole run, model and optimizer included, is
built inside the strategy's scope and trained with ``model.fit``.

- **Global batch.** ``training.batch_size`` is the global batch: Keras splits
  each batch across the replicas. Datasets are sharded by DATA (every worker
  builds the same seeded pipeline and keeps its share of each batch), so the
  workers together train on exactly the batches one worker would see: same
  loss, same weights, up to float summation order. A batch that does not split
  evenly (the last, partial batch of a fine-tuning epoch) is averaged per
  replica, which weighs its examples slightly differently from one worker.
- **Chief writes.** The chief (task ``chief``, else worker 0) writes the
  output directory; every other worker runs the same steps (checkpoint saves
  and model saves may need all workers) into a temporary directory it deletes
  at the end, and restores from the chief's ``checkpoints/``: the output
  directory must be on a file system every worker reads (or be copied to
  the same path on every host before a re-run). All workers must resume at
  the same step, else the run stops with a :class:`DistributionError`.
- **XLA.** ``jit_compile`` is kept where it works; XLA cannot compile the
  multi-worker collectives on the CPU ("Collectives are not yet implemented
  for CPU devices when compiling with XLA"), so there it falls back to no
  XLA with a warning.
- **A lost worker.** A peer that dies is seen at once (its port refuses the
  next collective) and a hung one within about 10 s (TensorFlow's
  coordination service stops getting its heartbeats); the surviving workers
  stop with a :class:`WorkerFailedError` that says so. No
  ``CommunicationOptions(timeout_seconds=...)`` is set: it would also abort
  legitimately slow collectives (a first step that compiles for minutes).

Example:

>>> run_distributed(config.training, "runs/bert", lambda out: train(config, out))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Callable, TypeVar

import tensorflow as tf
from keras.src.backend.tensorflow import trainer as keras_tf_trainer
from tensorflow.python.framework import ops

from tfptlm.config import DISTRIBUTIONS
from tfptlm.training.runtime import resolve_jit_compile

#: The cluster jobs ``MultiWorkerMirroredStrategy`` trains with.
WORKER_JOBS = ("chief", "worker")
T = TypeVar("T")


class DistributionError(ValueError):
    """The cluster set-up (``TF_CONFIG``, the checkpoints the workers see) cannot work."""


class WorkerFailedError(ValueError):
    """A peer worker died or stopped answering during multi-worker training.

    A ``ValueError``, so that the ``tfptlm`` command reports it in one line and
    exits with status 1.
    """


def read_tf_config(environ: dict | None = None) -> dict:
    """The checked ``TF_CONFIG`` of this worker (from ``environ``, default ``os.environ``).

    Raises:
        DistributionError: TF_CONFIG is missing, not JSON, or its ``cluster``
            or ``task`` is malformed; the message names what is wrong.

    Example:

    >>> read_tf_config({"TF_CONFIG": '{"cluster": {"worker": ["h1:2222", "h2:2222"]}, '
    ...                 '"task": {"type": "worker", "index": 1}}'})["task"]
    {'type': 'worker', 'index': 1}
    """
    environ = os.environ if environ is None else environ
    raw = environ.get("TF_CONFIG", "").strip()
    example = ('e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
               '"task": {"type": "worker", "index": 0}} on the first host, index 1 on the second')
    if not raw:
        raise DistributionError(
            f"training.distribution is multi_worker but the environment variable TF_CONFIG is not set; "
            f"set it on every worker, {example}"
        )
    try:
        config = json.loads(raw)
    except ValueError as error:
        raise DistributionError(f"TF_CONFIG is not valid JSON ({error}): {raw[:200]!r}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster:
        raise DistributionError(f'TF_CONFIG has no "cluster" object listing the workers; {example}')
    for job, addresses in cluster.items():
        if job not in WORKER_JOBS:
            raise DistributionError(
                f'TF_CONFIG cluster job "{job}" is not supported by multi_worker training '
                f"(only {' and '.join(WORKER_JOBS)})"
            )
        if not isinstance(addresses, list) or not addresses or not all(
            isinstance(a, str) and a.rpartition(":")[2].isdigit() for a in addresses
        ):
            raise DistributionError(
                f'TF_CONFIG cluster "{job}" must be a non-empty list of "host:port" strings, got {addresses!r}'
            )
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise DistributionError(f'TF_CONFIG has no "task" with "type" and "index" for this worker; {example}')
    kind, index = task["type"], task["index"]
    if kind not in cluster:
        raise DistributionError(f'TF_CONFIG task type "{kind}" is not a job of its cluster ({", ".join(cluster)})')
    if not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise DistributionError(
            f'TF_CONFIG task index {index!r} is out of range: cluster "{kind}" lists '
            f"{len(cluster[kind])} address(es), so the index must be 0 to {len(cluster[kind]) - 1}"
        )
    return config


def create_strategy(distribution: str, tpu: str | None = None) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy of ``training.distribution`` (``none``: the default strategy).

    Create it before any other TensorFlow work of the process:
    ``MultiWorkerMirroredStrategy`` must configure the collective ops first.

    Example:

    >>> create_strategy("mirrored").num_replicas_in_sync  # doctest: +SKIP
    1
    """
    if distribution == "none":
        return tf.distribute.get_strategy()
    if distribution == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
    elif distribution == "multi_worker":
        read_tf_config()
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif distribution == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        strategy = tf.distribute.TPUStrategy(resolver)
    else:
        raise DistributionError(f"training.distribution must be one of {', '.join(DISTRIBUTIONS)}; got {distribution!r}")
    _patch_keras_fit()
    return strategy


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """True on the worker that writes the outputs: task ``chief``, else worker 0; always on one machine."""
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if not is_multi_worker(strategy) or resolver is None or resolver.task_type is None:
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (not has_chief and resolver.task_type == "worker" and resolver.task_id == 0)


def is_multi_worker(strategy: tf.distribute.Strategy | None = None) -> bool:
    """True under a ``MultiWorkerMirroredStrategy`` whose cluster has more than one worker."""
    strategy = strategy or tf.distribute.get_strategy()
    return keras_tf_trainer._collective_all_reduce_multi_worker(strategy)


def jit_compile_for_strategy(setting: bool | str) -> bool:
    """``training.jit_compile`` resolved for the current strategy (see :func:`resolve_jit_compile`).

    XLA is turned off, with a warning, where it cannot compile the strategy's
    collectives: multi-worker training on the CPU.
    """
    jit_compile = resolve_jit_compile(setting)
    if jit_compile and is_multi_worker() and not tf.config.list_logical_devices("GPU"):
        warnings.warn(
            "training.jit_compile is on, but XLA cannot compile multi-worker collectives on the CPU "
            "(TensorFlow: 'Collectives are not yet implemented for CPU devices when compiling with "
            "XLA'); training without XLA",
            stacklevel=2,
        )
        return False
    return jit_compile


def shard_by_data(dataset: tf.data.Dataset):
    """``dataset`` split so that the replicas together train on each of its (global) batches.

    Every worker builds the same seeded pipeline from in-memory examples. On
    one machine the DATA auto-shard policy lets ``tf.distribute`` split each
    batch across the devices (FILE sharding would need a file per worker).
    Across workers ``tf.distribute`` cannot split batches whose size it cannot
    read from the pipeline (bucketing) and would then give the workers
    different batches; there each worker's replicas get their contiguous rows
    of every batch explicitly (``distribute_datasets_from_function``).
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = dataset.with_options(options)
    strategy = tf.distribute.get_strategy()
    if not is_multi_worker(strategy):
        return dataset
    return strategy.distribute_datasets_from_function(lambda context: _replica_rows(dataset, context))


def _replica_rows(dataset: tf.data.Dataset, context: tf.distribute.InputContext) -> tf.data.Dataset:
    """This worker's share of every batch of ``dataset``: one element per local replica, in order."""
    replicas = context.num_replicas_in_sync
    local = replicas // context.num_input_pipelines
    first = context.input_pipeline_id * local

    def rows(*batch):
        batch = batch[0] if len(batch) == 1 else batch
        size = tf.shape(tf.nest.flatten(batch)[0], out_type=tf.int64)[0]

        def part(replica):
            begin, end = replica * size // replicas, (replica + 1) * size // replicas
            return tf.nest.map_structure(lambda t: t[begin:end], batch)

        return tf.data.Dataset.range(first, first + local).map(part)

    return dataset.flat_map(rows)


def check_same_start(step: int, checkpoint_dir: str | Path) -> None:
    """Stops the run unless every worker restored the same step (a no-op on one worker).

    Raises:
        DistributionError: a worker did not see the chief's checkpoints in
            ``checkpoint_dir``.
    """
    strategy = tf.distribute.get_strategy()
    if not is_multi_worker(strategy):
        return
    steps = strategy.gather(strategy.run(lambda: tf.constant([step], tf.int64)), axis=0).numpy().tolist()
    if len(set(steps)) > 1:
        raise DistributionError(
            f"the workers restored different steps {steps} from {checkpoint_dir}: every worker must read "
            "the chief's checkpoints, so put the output directory on a file system all hosts share, or "
            "copy the chief's output directory to the same path on every host before re-running"
        )


@contextlib.contextmanager
def outside_strategy(model):
    """Runs the block as if no strategy were in scope: ``model`` predicts, evaluates and is saved on
    this worker's first device, without collectives (every worker computes the same).

    For the scoring after training: under a strategy with several replicas,
    Keras's ``predict_on_batch`` gives every replica the whole batch and
    returns one copy of the predictions per replica, and ``evaluate`` averages
    a partial last batch per replica. Example:

    >>> with outside_strategy(model):  # doctest: +SKIP
    ...     metrics = recipe.evaluate(model, examples, data, 64, output_dir)
    """
    graph = ops.get_default_graph()
    stack, strategy = graph._distribution_strategy_stack, model._distribute_strategy
    graph._distribution_strategy_stack, model._distribute_strategy = [], None
    model.predict_function = model.test_function = None  # compiled for the strategy
    try:
        yield
    finally:
        graph._distribution_strategy_stack, model._distribute_strategy = stack, strategy
        model.predict_function = model.test_function = None


def run_distributed(training, output_dir: str | Path, run: Callable[[Path], T]) -> T:
    """Runs ``run(write_dir)`` on this worker under ``training.distribution``; returns its result.

    ``write_dir`` is ``output_dir`` on the chief and a temporary directory
    (deleted afterwards) on the other workers. A lost peer worker becomes a
    :class:`WorkerFailedError`.

    Example:

    >>> run_distributed(config.training, "runs/sst2", lambda out: finetune(config, out))  # doctest: +SKIP
    """
    strategy = create_strategy(training.distribution, training.tpu)
    chief = is_chief(strategy)
    write_dir = Path(output_dir) if chief else Path(tempfile.mkdtemp(prefix="tfptlm-worker-"))
    try:
        with strategy.scope():
            return run(write_dir)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError) as error:
        if not is_multi_worker(strategy):
            raise
        resolver = strategy.cluster_resolver
        details = (getattr(error, "message", None) or str(error)).strip()
        cause = next((line for line in details.splitlines() if "unhealthy" in line or "Connect" in line
                      or "connect" in line or "down" in line), details.splitlines()[0] if details else "")
        raise WorkerFailedError(
            f"worker {resolver.task_type} {resolver.task_id} lost contact with the other workers: a peer "
            f"worker probably died or stopped answering ({cause.strip()}). Nothing after the last "
            f"checkpoint is lost: run the same command again on every worker to resume from the newest "
            f"checkpoint in {Path(output_dir) / 'checkpoints'}"
        ) from None
    finally:
        if not chief:
            shutil.rmtree(write_dir, ignore_errors=True)


def _patch_keras_fit() -> None:
    """Makes Keras 3's ``model.fit`` train under a strategy as without one (idempotent).

    Keras 3.15 builds a model made in a strategy's scope from a first batch
    that it takes from a fresh iterator over the training data before the
    first epoch. That changes the data: a seeded pipeline that reshuffles
    every epoch then starts at its second order, unlike a run without a
    strategy and unlike a resumed run (``continue_stream``). Under
    ``MultiWorkerMirroredStrategy`` it fails outright (tensorflow/tensorflow#72388):
    it averages that batch across workers with ``strategy.reduce``, which takes
    no nested structures, and after each step it reduces the scalar metrics
    along axis 0. Here the build takes the dataset's element spec (only the
    shapes count) and, with several workers, scalars are averaged across them.
    """
    trainer = keras_tf_trainer.TensorFlowTrainer
    if getattr(trainer, "_tfptlm_patched", False):
        return
    build, reduce_per_replica = trainer._maybe_symbolic_build, keras_tf_trainer.reduce_per_replica

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None or iterator is None:
            return build(self, iterator=iterator, data_batch=data_batch)
        with self.distribute_strategy.scope():
            spec = iterator.data_adapter.get_tf_dataset().element_spec
            self._symbolic_build(data_batch=tf.nest.map_structure(_one_replica, spec))

    def reduce_scalars(values, strategy, reduction="auto"):
        if reduction not in ("auto", "mean") or not is_multi_worker(strategy):
            return reduce_per_replica(values, strategy, reduction)

        def reduce(value):
            if getattr(value, "shape", None) is not None and value.shape.rank == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return reduce_per_replica(value, strategy, reduction)

        return tf.nest.map_structure(reduce, values)

    def _one_replica(spec):
        return spec._value_specs[0] if hasattr(spec, "_value_specs") else spec  # a PerReplicaSpec

    trainer._maybe_symbolic_build = maybe_symbolic_build
    keras_tf_trainer.reduce_per_replica = reduce_scalars
    trainer._tfptlm_patched = True
