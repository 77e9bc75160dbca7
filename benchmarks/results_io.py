"""Shared helpers of the quality benchmarks: versions, machine, timing and result files.

Every benchmark writes ``benchmarks/results/<stem>.json`` (everything, machine
readable) and ``<stem>.md`` (the same for people) with the exact command, the
date, the machine, the package versions and the wall time; ``write_report``
adds those common fields, the script supplies the figures and its own Markdown
body. Scripts import this module by name (``python benchmarks/<script>.py``
puts ``benchmarks/`` on ``sys.path``).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
REPO_ROOT = HERE.parent
#: The public datasets of the workplace (see its README.md); ``--data-dir`` overrides it.
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
#: Where the benchmarks put models and run directories unless ``--work-dir`` is given.
DEFAULT_WORK_DIR = Path("/tmp/tfptlm_benchmarks")


def command_line() -> str:
    """The command that started this process, as one could type it from the repository root."""
    script = Path(sys.argv[0]).resolve()
    try:
        script_text = str(script.relative_to(Path.cwd().resolve()))
    except ValueError:
        script_text = str(script)
    return " ".join(["python", shlex.quote(script_text)] + [shlex.quote(a) for a in sys.argv[1:]])


def cpu_and_memory() -> tuple[str, int | None, float | None]:
    """CPU model name, usable CPUs and total memory in GB (from /proc where available)."""
    cpu_model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gb = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return cpu_model, usable, memory_gb


def machine_info() -> dict:
    """CPU model and count, usable CPUs, memory, platform and Python version."""
    cpu_model, usable, memory_gb = cpu_and_memory()
    gpus = []
    try:
        import tensorflow as tf

        gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    except Exception:  # pragma: no cover - TF missing or broken
        pass
    return dict(
        platform=platform.platform(),
        cpu_model=cpu_model,
        cpu_count=os.cpu_count(),
        usable_cpus=usable,
        memory_gb=memory_gb,
        gpus=gpus,
    )


def package_versions() -> dict:
    """Python and the versions of the packages the benchmarks depend on."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for package in ("tensorflow", "keras", "tfptlm", "tensorflow-text", "keras-hub", "numpy", "seqeval"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def git_state() -> dict:
    """The repository's HEAD commit and whether ``tfptlm/`` differed from it (others may be editing it)."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=30).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"),
                "tfptlm_uncommitted_changes": bool(git("status", "--porcelain", "--", "tfptlm"))}
    except (OSError, subprocess.SubprocessError):
        return {}


class Stopwatch:
    """Wall time since creation; ``log`` prints timestamped progress lines (flushed).

    A daemon thread samples the machine's 1-minute load average every 30 s, so
    the report can say how busy the machine was (other jobs slow CPU runs down).
    """

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.started_at = datetime.datetime.now(datetime.timezone.utc)
        self.loads: list[float] = []
        self.git = git_state()  # at the start: the code the run imported
        threading.Thread(target=self._sample_load, daemon=True).start()

    def _sample_load(self) -> None:
        while True:
            self.loads.append(os.getloadavg()[0])
            time.sleep(30)

    def load_summary(self) -> dict:
        """Min, median and max of the sampled 1-minute load averages."""
        if not self.loads:
            return {}
        ordered = sorted(self.loads)
        return {"min": ordered[0], "median": ordered[len(ordered) // 2], "max": ordered[-1],
                "samples": len(ordered)}

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def log(self, message: str) -> None:
        print(f"[{self.seconds / 60:6.1f} min] {message}", flush=True)


def write_report(
    stem: str,
    title: str,
    report: dict,
    body: list[str],
    stopwatch: Stopwatch,
    output_dir: Path = RESULTS_DIR,
    complete: bool = True,
) -> Path:
    """Writes ``<stem>.json`` and ``<stem>.md`` with the common header fields.

    ``report`` holds the benchmark's own settings and figures; ``body`` is its
    Markdown (tables, notes) that follows the common header. Returns the
    Markdown path. Call it again as runs finish: the files are rewritten, so an
    interrupted benchmark keeps what it measured (``complete=False`` says so).
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    versions = package_versions()
    machine = machine_info()
    full = {
        "benchmark": stem,
        "command": command_line(),
        "date": stopwatch.started_at.isoformat(timespec="seconds"),
        "wall_seconds": round(stopwatch.seconds, 1),
        "complete": complete,
        "versions": versions,
        "machine": machine,
        "git": stopwatch.git,
        "loadavg_1min": stopwatch.load_summary(),
        **report,
    }
    (output_dir / f"{stem}.json").write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n")
    device = ", ".join(machine["gpus"]) if machine["gpus"] else "no GPU"
    header = [
        f"# {title}",
        "",
        f"- Command (from the repository root): `{full['command']}`",
        f"- Date (UTC): {full['date']}",
        f"- Wall time: {full['wall_seconds'] / 60:.1f} min"
        + ("" if complete else " so far (partial results: the run did not finish)"),
        f"- Machine: {machine['cpu_model']}, {machine['usable_cpus']} usable CPUs of "
        f"{machine['cpu_count']}, {machine['memory_gb']} GB, {device}; {machine['platform']}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v is not None),
    ]
    if stopwatch.git.get("commit"):
        header.append(
            f"- Code: git commit {stopwatch.git['commit'][:10]} at the start"
            + (" (tfptlm/ had uncommitted changes)" if stopwatch.git["tfptlm_uncommitted_changes"] else "")
        )
    load = full["loadavg_1min"]
    if load:
        header.append(
            f"- Machine load during the run (1-minute load average, sampled every 30 s; this "
            f"benchmark alone adds about 2): min {load['min']:.1f}, median {load['median']:.1f}, "
            f"max {load['max']:.1f}"
        )
    header.append("")
    md_path = output_dir / f"{stem}.md"
    md_path.write_text("\n".join(header + body) + "\n", encoding="utf-8")
    return md_path


def fmt(value, digits: int = 3) -> str:
    """A number for a Markdown table (``–`` for missing)."""
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"
