"""Step checkpoints that a killed run resumes from, and where its data stream picks up.

A checkpoint holds the model's weights, the optimizer (its slots and step
counter, so also the learning-rate schedule's position) and the models'
random-seed states (dropout), which Keras's own checkpoint tracking leaves out.

Writes are atomic in effect: ``tf.train.CheckpointManager`` writes a
checkpoint's files (to ``ckpt-N_temp/``, then merged into ``ckpt-N.index`` and
``ckpt-N.data-*``) before it atomically replaces its ``checkpoint`` list, so a
run killed mid-write resumes from the checkpoint before (SIGKILLs during the
write and between the merge and the list update were tried: see
``tests/test_resume.py`` and ``tests/test_checkpoints.py``). A listed checkpoint
whose files are damaged anyway (a full disk, a copy cut short, a lost write) is
skipped with a warning naming it, and the one before is loaded in full; when no
checkpoint can be read the run stops with a :class:`CheckpointError` naming
the files, never with half a model loaded.

Example:

>>> manager = open_checkpoints("runs/bert/checkpoints", model, optimizer)  # doctest: +SKIP
>>> restore_newest(manager)  # None for a new run
>>> step = int(optimizer.iterations.numpy())
>>> model.fit(continue_stream(dataset, step), callbacks=[CheckpointEveryEpoch(manager)], ...)
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import warnings
from pathlib import Path

import keras
import tensorflow as tf

from tfptlm.config import load_config
from tfptlm.training.distribution import check_same_start


class CheckpointError(ValueError):
    """No checkpoint of a run can be read, or one does not fit the model."""


def open_checkpoints(
    directory: str | Path, model: keras.Model, optimizer: keras.optimizers.Optimizer, max_to_keep: int = 3
) -> tf.train.CheckpointManager:
    """The checkpoints of ``model`` (built) and ``optimizer`` (built) in ``directory``.

    Keras does not track the seed generators' states for ``tf.train.Checkpoint``;
    they are listed among ``model.non_trainable_variables`` and saved from there.
    """
    checkpoint = tf.train.Checkpoint(
        model=model, optimizer=optimizer, non_trainable=list(model.non_trainable_variables)
    )
    return tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=max_to_keep)


def resume(
    model: keras.Model, optimizer: keras.optimizers.Optimizer, output_dir: Path, shared_dir: Path,
    total_steps: int | None = None,
) -> tuple[tf.train.CheckpointManager, int]:
    """The checkpoints of a run in ``output_dir`` and the step it starts from.

    Restores the newest readable checkpoint of ``shared_dir`` (the chief's
    output directory; ``output_dir`` itself on one machine) into ``model`` and
    ``optimizer`` (both built), checks that every worker starts at the same
    step, and says where a resumed run picks up.

    Example:

    >>> manager, start_step = resume(model, optimizer, Path("runs/bert"), Path("runs/bert"))  # doctest: +SKIP
    """
    manager = open_checkpoints(output_dir / "checkpoints", model, optimizer)
    restored = restore_newest(manager, shared_dir / "checkpoints")
    start_step = int(optimizer.iterations.numpy())
    check_same_start(start_step, shared_dir / "checkpoints")
    if restored:
        of_total = f" of {total_steps}" if total_steps is not None else ""
        print(f"Resuming from {restored} (step {start_step}{of_total}); the data pipeline first replays "
              f"its {start_step} batches to continue where the run stopped")
    return manager, start_step


def restore_newest(manager: tf.train.CheckpointManager, directory: str | Path | None = None) -> str | None:
    """Loads the newest readable checkpoint of ``manager``; returns its path (None: none).

    ``directory``: read the checkpoints there instead of in the manager's own
    directory (a non-chief worker of a multi-worker run reads the chief's and
    saves to a directory of its own); nothing there is deleted.

    Checkpoints are tried newest first (those the manager lists, else the
    ``ckpt-*.index`` files of its directory when its ``checkpoint`` list is
    missing or unreadable); an unreadable one is skipped with a warning. What
    writes cut short by a kill left behind (``ckpt-N_temp/``, possibly a large
    partial shard) is deleted first: no other run writes to this directory.

    Raises:
        CheckpointError: checkpoints exist but none can be read, or one does
            not fit the model (another model config).
    """
    if directory is not None and Path(directory) != Path(manager.directory):
        manager = tf.train.CheckpointManager(manager.checkpoint, str(directory), max_to_keep=None)
    else:
        for partial in Path(manager.directory).glob("ckpt-*_temp"):
            shutil.rmtree(partial, ignore_errors=True)
    directory = Path(manager.directory)
    candidates = list(reversed(manager.checkpoints))
    if not candidates:
        candidates = _checkpoint_files(directory)
        if candidates:
            warnings.warn(
                f"{directory / 'checkpoint'} is missing or unreadable; trying the checkpoint "
                f"files {', '.join(Path(c).name for c in candidates)} newest first",
                stacklevel=2,
            )
    damaged = []
    for prefix in candidates:
        problem = unreadable(prefix)
        if problem:
            damaged.append(f"{prefix}: {problem}")
            continue
        try:
            manager.checkpoint.restore(prefix).assert_existing_objects_matched()
        except (AssertionError, ValueError) as error:
            raise CheckpointError(f"{prefix} does not fit this model: {error}") from None
        if damaged:
            warnings.warn(
                f"skipped unreadable checkpoint(s) {'; '.join(damaged)}; resuming from {prefix}",
                stacklevel=2,
            )
        return prefix
    if damaged:
        raise CheckpointError(
            f"no checkpoint in {directory} can be read ({'; '.join(damaged)}); move the "
            "folder away to start over"
        )
    return None


def unreadable(prefix: str) -> str | None:
    """Why the checkpoint ``prefix`` cannot be read in full (None: it can).

    Reads every tensor, which checks each one's checksum, so a damaged file is
    found before any variable is assigned.
    """
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as error:  # any failure to read the files: missing, cut short, corrupt
        message = getattr(error, "message", None) or str(error) or type(error).__name__
        return message.strip().splitlines()[0]
    return None


def _checkpoint_files(directory: Path) -> list[str]:
    """Prefixes of the ``ckpt-N.index`` files in ``directory``, highest ``N`` first."""
    steps = []
    for index in directory.glob("ckpt-*.index"):
        match = re.fullmatch(r"ckpt-(\d+)\.index", index.name)
        if match:
            steps.append(int(match.group(1)))
    return [str(directory / f"ckpt-{step}") for step in sorted(steps, reverse=True)]


def has_checkpoints(directory: str | Path) -> bool:
    """True when ``directory`` holds checkpoint files to resume from."""
    return bool(_checkpoint_files(Path(directory)))


def check_resumable(config, output_dir: str | Path, sections: tuple[str, ...]) -> None:
    """Refuses to resume the checkpoints in ``output_dir`` under other ``sections`` settings.

    ``sections`` are top-level config keys (e.g. ``model``, ``tokenizer``);
    they are compared with the run's previous ``config.yaml``.

    Raises:
        ValueError: a setting of ``sections`` differs, named with its key.
    """
    output_dir = Path(output_dir)
    previous = output_dir / "config.yaml"
    if not has_checkpoints(output_dir / "checkpoints") or not previous.is_file():
        return
    before = load_config(previous, config_class=type(config))
    changed = []
    for section in sections:
        now, then = getattr(config, section), getattr(before, section)
        if not dataclasses.is_dataclass(now):
            changed += [section] if now != then else []
            continue
        then = dataclasses.asdict(then)
        changed += [f"{section}.{name}" for name, value in dataclasses.asdict(now).items() if then[name] != value]
    if changed:
        raise ValueError(
            f"{output_dir} holds checkpoints of a run with other settings "
            f"({', '.join(changed)} differ from {previous}); use a new --output-dir "
            "or the same settings to resume"
        )


def continue_stream(dataset: tf.data.Dataset, steps_done: int) -> tf.data.Dataset:
    """The training batches from batch ``steps_done`` on, as an uninterrupted run would see them.

    The training pipelines are fixed by their seeds: a pipeline built anew
    with the same seeds (and the same ``keras.utils.set_random_seed``) yields
    the same batches, shuffles and masks included, so skipping the batches
    already trained on continues exactly where a killed run stopped. The
    skipped batches are recomputed (no model work): about 160 batches/s for
    ``configs/bert_tiny_pretrain.yaml`` on 2 CPU cores.

    The ``tf.data`` iterator is not checkpointed instead: its state holds the
    shuffle buffer, i.e. the whole corpus (19 MB per checkpoint for a 2.9 MB
    corpus with ``mlm_nsp``, 1.3 s to write), which grows with the corpus.
    """
    return dataset.skip(steps_done)
