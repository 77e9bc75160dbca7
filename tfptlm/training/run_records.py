"""``run_info.json``: what produced a run's output directory, for repeating it.

Next to ``config.yaml`` (the resolved config), every pretraining and
fine-tuning output directory gets ``run_info.json`` with one entry per
invocation (a resumed run adds one): when it started and from which step, the
command line, Python, the platform, the versions of the packages that decide
the numbers, and the git commit of the tfptlm source with a ``dirty`` flag
(uncommitted changes under ``tfptlm/``); ``git`` is absent when tfptlm is not
installed from a git checkout.

Example:

>>> record_run("runs/bert", start_step=0, seed=0, deterministic=False)  # doctest: +SKIP
>>> json.load(open("runs/bert/run_info.json"))["runs"][-1]["packages"]["tensorflow"]
'2.21.0'
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import platform
import subprocess
import sys
from pathlib import Path

import tfptlm

RUN_INFO_FILE = "run_info.json"
#: The distributions whose versions are recorded.
PACKAGES = ("tensorflow", "keras", "tensorflow-text", "keras-hub", "numpy")
#: The folder of the tfptlm source.
SOURCE_DIR = Path(tfptlm.__file__).resolve().parent


def package_versions() -> dict[str, str | None]:
    """Installed versions of :data:`PACKAGES` and tfptlm (None: not installed)."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    if versions["tensorflow"] is None:  # tensorflow-cpu, tf-nightly, ...
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    versions["tfptlm"] = tfptlm.__version__
    return versions


def source_commit(folder: Path = SOURCE_DIR) -> dict | None:
    """``{"commit": sha, "dirty": bool}`` of the git checkout ``folder`` is tracked in, else None.

    ``dirty``: files under ``folder`` differ from the commit (changed or untracked).
    """

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=True
        )
        return done.stdout.strip()

    try:
        git("ls-files", "--error-unmatch", "__init__.py")  # the package belongs to this checkout
        commit = git("rev-parse", "HEAD")
        changes = git("status", "--porcelain", "--", ".")
    except (OSError, subprocess.SubprocessError):  # no git, not a checkout, no commit yet
        return None
    return {"commit": commit, "dirty": bool(changes)}


def run_record(start_step: int, seed: int, deterministic: bool) -> dict:
    """This invocation's entry of ``run_info.json``."""
    record = {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "start_step": start_step,
        "seed": seed,
        "deterministic": deterministic,
        "command": sys.argv,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
    }
    commit = source_commit()
    if commit is not None:
        record["git"] = commit
    return record


def record_run(output_dir: str | Path, start_step: int, seed: int, deterministic: bool) -> dict:
    """Appends this invocation to ``output_dir/run_info.json``; returns its entry.

    An unreadable earlier file is replaced, with the broken one kept as
    ``run_info.json.bad``.
    """
    path = Path(output_dir) / RUN_INFO_FILE
    runs = []
    if path.is_file():
        try:
            runs = json.loads(path.read_text(encoding="utf-8"))["runs"]
        except (ValueError, KeyError, TypeError):
            path.replace(path.with_name(RUN_INFO_FILE + ".bad"))
    record = run_record(start_step, seed, deterministic)
    runs.append(record)
    temporary = path.with_name(RUN_INFO_FILE + ".tmp")
    temporary.write_text(json.dumps({"runs": runs}, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)  # atomic: a kill never leaves half a file
    return record
