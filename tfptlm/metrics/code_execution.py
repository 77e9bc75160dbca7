"""Run generated Python code against MBPP-style ``assert`` tests, each program in a sandbox.

Every call starts a fresh interpreter (``sys.executable -I -B``) in its own
process group, in a new temporary directory that is its working directory and
``HOME``, and deleted afterwards. Before the generated code runs, the child:

* lowers its resource limits, soft and hard: address space
  (``RLIMIT_AS``), CPU seconds (``RLIMIT_CPU``), size of a written file
  (``RLIMIT_FSIZE``) and processes (``RLIMIT_NPROC``; Linux ignores it for
  root). The limits are set by the child itself rather than in a
  ``preexec_fn``, which is unsafe in a multithreaded parent such as a
  TensorFlow process;
* installs an audit hook (``sys.addaudithook``, which cannot be removed) that
  raises ``PermissionError`` for network use (every ``socket.*`` event), new
  processes (``subprocess.Popen``, ``os.system``, ``os.exec*``,
  ``os.posix_spawn``, ``os.spawn*``, ``os.fork``), signals to other processes,
  raising resource limits and ``ctypes`` calls into C; for opening or listing
  anything outside the temporary directory except read-only access under
  ``sys.prefix``/``sys.base_prefix`` (the standard library and site-packages
  that imports need) and ``/dev/null``/``/dev/urandom``; and for creating,
  deleting, renaming or changing files outside it.

The parent kills the whole process group when the wall-clock ``timeout``
passes. The program's own output goes to ``/dev/null``; the child reports on
a private copy of its stdout, one JSON line per step, so tests that finished
before a timeout or crash still count.

This guards against the mistakes of generated code (endless loops, runaway
memory, stray file writes, network calls); it is not a jail for hostile
code, which can, for instance, reach C functions an audit hook never sees.
Run untrusted code inside a container or VM as well.

Example:

>>> result = run_code_tests("def add(a, b):\\n    return a + b",
...                         ["assert add(1, 2) == 3", "assert add(2, 2) == 5"])
>>> result
CodeResult(passed=1, total=2, error='test 2: AssertionError')
>>> pass_share([result, CodeResult(passed=3, total=3)])
0.8
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

_MAX_ERROR_CHARS = 300

# Runs in the child, in place of ``python -c``. It reads its job from stdin.
_CHILD_PROGRAM = r'''
import json, os, resource, sys


def main():
    job = json.loads(sys.stdin.read())
    report_fd = os.dup(1)
    null_fd = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null_fd, fd)

    def report(**event):
        os.write(report_fd, (json.dumps(event) + "\n").encode())

    for name, value in job["limits"].items():
        limit = getattr(resource, name, None)
        if limit is None:
            continue
        _, hard = resource.getrlimit(limit)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass

    work_dir = job["work_dir"]
    realpath, fsdecode, sep = os.path.realpath, os.fsdecode, os.sep
    read_roots = tuple({realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                              sys.base_exec_prefix)})
    read_files = frozenset(realpath(p) for p in ("/dev/null", "/dev/urandom"))
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    denied = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
              "os.fork", "os.forkpty", "os.kill", "os.killpg", "pty.", "signal.pthread_kill",
              "resource.setrlimit", "resource.prlimit", "ctypes.call_function")
    # event -> positions of the path arguments that must lie in work_dir
    changes = {"os.mkdir": (0,), "os.rmdir": (0,), "os.remove": (0,), "os.rename": (0, 1),
               "os.link": (0, 1), "os.symlink": (1,), "os.chmod": (0,), "os.chown": (0,),
               "os.chflags": (0,), "os.lchflags": (0,), "os.truncate": (0,), "os.utime": (0,),
               "os.setxattr": (0,), "os.removexattr": (0,), "shutil.rmtree": (0,)}

    def inside(path, roots):
        return any(path == root or path.startswith(root + sep) for root in roots)

    def check(event, path, writes):
        if isinstance(path, int) or path is None:
            return  # an open file descriptor
        full = realpath(fsdecode(path))
        if inside(full, (work_dir,)):
            return
        if not writes and (full in read_files or inside(full, read_roots)):
            return
        raise PermissionError(f"sandbox: {event} {fsdecode(path)!r} is not allowed")

    def hook(event, args):
        if event.startswith(denied):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "open":
            path, mode, flags = args
            writes = bool(mode and any(c in mode for c in "wax+"))
            check(event, path, writes or bool(isinstance(flags, int) and flags & write_flags))
        elif event in ("os.listdir", "os.scandir"):
            check(event, args[0] if args[0] is not None else ".", False)
        elif event in changes:
            for position in changes[event]:
                check(event, args[position], True)

    def describe(error):
        if isinstance(error, SyntaxError):
            return f"SyntaxError: {error.msg} ({error.filename} line {error.lineno})"
        text = str(error)
        return type(error).__name__ + (f": {text}" if text else "")

    namespace = {"__name__": "__solution__", "__builtins__": __builtins__}
    sys.addaudithook(hook)
    try:
        exec(compile(job["code"], "<solution>", "exec"), namespace)
        exec(compile(job["setup_code"], "<setup>", "exec"), namespace)
    except BaseException as error:
        report(program=describe(error))
        return
    report(program=None)
    for index, test in enumerate(job["tests"]):
        try:
            exec(compile(test, f"<test {index + 1}>", "exec"), namespace)
        except BaseException as error:
            report(test=index, error=describe(error))
        else:
            report(test=index, error=None)


main()
'''


@dataclass(frozen=True)
class CodeResult:
    """How many of a program's tests passed, and the first problem seen (None if none).

    ``error`` is the program's own error (e.g. a ``SyntaxError``), a timeout
    or crash, or else the first failed test as ``"test N: ..."``.
    """

    passed: int
    total: int
    error: str | None = None

    @property
    def all_passed(self) -> bool:
        """True when there were tests and every one passed."""
        return self.total > 0 and self.passed == self.total


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."


def _strings(values: Sequence[str], name: str) -> list[str]:
    if isinstance(values, str):
        raise TypeError(f"{name} must be a list of statements, not one string")
    values = list(values)
    for position, value in enumerate(values):
        if not isinstance(value, str):
            raise TypeError(f"{name}[{position}] must be a string, got {value!r:.60}")
    return values


def run_code_tests(
    code: str,
    tests: Sequence[str],
    setup_code: str = "",
    timeout: float = 5.0,
    *,
    memory_limit_mb: int = 1024,
    file_size_limit_mb: int = 16,
) -> CodeResult:
    """Runs ``code``, then ``setup_code``, then each test statement; counts the tests that pass.

    Args:
        code: the generated program (e.g. a function definition).
        tests: statements such as ``"assert f(1) == 2"``, each run on its
            own: one that raises fails, the others still run.
        setup_code: run after ``code`` and before the tests (MBPP's
            ``test_setup_code``).
        timeout: wall-clock seconds for the whole run, interpreter start
            included; the CPU-time limit is this rounded up plus one second.
        memory_limit_mb: address-space limit of the child.
        file_size_limit_mb: largest file the child may write.

    Returns:
        :class:`CodeResult`.

    Example:

    >>> run_code_tests("while True: pass", ["assert True"], timeout=1.0).error
    'timed out after 1 s'
    """
    if not isinstance(code, str) or not isinstance(setup_code, str):
        raise TypeError("code and setup_code must be strings")
    tests = _strings(tests, "tests")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    limits = {
        "RLIMIT_AS": memory_limit_mb * 2**20,
        "RLIMIT_CPU": math.ceil(timeout) + 1,
        "RLIMIT_FSIZE": file_size_limit_mb * 2**20,
        "RLIMIT_NPROC": 0,
    }
    with tempfile.TemporaryDirectory(prefix="tfptlm-code-", ignore_cleanup_errors=True) as work:
        work_dir = os.path.realpath(work)
        job = {"code": code, "setup_code": setup_code, "tests": tests,
               "work_dir": work_dir, "limits": limits}
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": work_dir,
            "TMPDIR": work_dir,
            "LC_ALL": "C.UTF-8",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        process = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c", _CHILD_PROGRAM],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=work_dir,
            env=env,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(json.dumps(job).encode(), timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            stdout, stderr = process.communicate()
            timed_out = True
    return _result(stdout, stderr, process.returncode, len(tests), timed_out, timeout)


def _result(
    stdout: bytes, stderr: bytes, returncode: int, total: int, timed_out: bool, timeout: float
) -> CodeResult:
    """Reads the child's JSON lines into a :class:`CodeResult`."""
    program_error: str | None = None
    loaded = False
    passed = finished = 0
    first_failure: str | None = None
    for line in stdout.decode("utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # not a line of the child's report
        if "program" in event:
            loaded, program_error = event["program"] is None, event["program"]
        else:
            finished += 1
            if event["error"] is None:
                passed += 1
            elif first_failure is None:
                first_failure = f"test {event['test'] + 1}: {event['error']}"
    if program_error is not None:
        return CodeResult(0, total, _clip(program_error))
    if timed_out:
        return CodeResult(passed, total, f"timed out after {timeout:g} s")
    if not loaded or finished < total:
        if returncode < 0:
            try:
                how = f"killed by signal {signal.Signals(-returncode).name}"
            except ValueError:
                how = f"killed by signal {-returncode}"
        else:
            how = f"exited with code {returncode}"
        detail = stderr.decode("utf-8", errors="replace").strip()
        message = f"the program {how}" + (f": {detail}" if detail else "")
        return CodeResult(passed, total, _clip(message))
    return CodeResult(passed, total, None if first_failure is None else _clip(first_failure))


def pass_share(results: Sequence[CodeResult]) -> float:
    """The fraction of all tests, over all programs, that passed.

    The share of programs that passed all their tests (pass@1 with one
    sample per task) is ``mean(result.all_passed for result in results)``.

    Example:

    >>> pass_share([CodeResult(3, 3), CodeResult(0, 3, "SyntaxError: invalid syntax")])
    0.5
    """
    results = list(results)
    total = sum(result.total for result in results)
    if not total:
        raise ValueError("no tests to score: the results hold no tests")
    return sum(result.passed for result in results) / total
