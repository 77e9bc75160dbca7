"""``run_info.json``: package versions, the tfptlm git commit and one entry per invocation."""

import json
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf

import tfptlm
from tfptlm.training.run_records import package_versions, record_run, source_commit

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(folder, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder,
                   check=True, capture_output=True)


def test_package_versions_name_the_stack():
    versions = package_versions()
    assert set(versions) == {"tensorflow", "keras", "tensorflow-text", "keras-hub", "numpy", "tfptlm"}
    assert versions["tensorflow"] == tf.__version__ and versions["tfptlm"] == tfptlm.__version__
    assert all(isinstance(v, str) for v in versions.values())  # all installed here


@needs_git
def test_the_commit_of_a_checkout_and_whether_its_package_folder_changed(tmp_path):
    package = tmp_path / "repo" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("x = 1\n")
    (tmp_path / "repo" / "notes.txt").write_text("outside the package\n")
    git(tmp_path / "repo", "init", "-q")
    assert source_commit(package) is None  # a checkout, but the package is not in it
    git(tmp_path / "repo", "add", ".")
    git(tmp_path / "repo", "commit", "-q", "-m", "first")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package, capture_output=True, text=True).stdout.strip()
    assert source_commit(package) == {"commit": head, "dirty": False}

    (tmp_path / "repo" / "notes.txt").write_text("changed, but not the package\n")
    (tmp_path / "repo" / "run_output.txt").write_text("untracked, not the package\n")
    assert source_commit(package)["dirty"] is False
    (package / "new_module.py").write_text("y = 2\n")
    assert source_commit(package) == {"commit": head, "dirty": True}
    (package / "new_module.py").unlink()
    (package / "__init__.py").write_text("x = 2\n")
    assert source_commit(package)["dirty"] is True


def test_no_commit_outside_a_checkout(tmp_path):
    (tmp_path / "__init__.py").write_text("")
    assert source_commit(tmp_path) is None


def test_each_invocation_adds_an_entry(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["tfptlm", "pretrain", "--steps", "8"])
    first = record_run(tmp_path, start_step=0, seed=3, deterministic=True)
    record_run(tmp_path, start_step=6, seed=3, deterministic=True)
    runs = json.loads((tmp_path / "run_info.json").read_text())["runs"]
    assert [run["start_step"] for run in runs] == [0, 6]
    assert runs[0] == first
    assert first["command"] == ["tfptlm", "pretrain", "--steps", "8"]
    assert (first["seed"], first["deterministic"]) == (3, True)
    assert first["python"] == ".".join(map(str, sys.version_info[:3]))
    assert first["packages"] == package_versions()
    assert ("git" in first) == (source_commit() is not None)
    assert not (tmp_path / "run_info.json.tmp").exists()


def test_an_unreadable_record_is_kept_aside_and_replaced(tmp_path):
    (tmp_path / "run_info.json").write_text('{"runs": [')  # cut short
    record_run(tmp_path, start_step=4, seed=0, deterministic=False)
    assert [r["start_step"] for r in json.loads((tmp_path / "run_info.json").read_text())["runs"]] == [4]
    assert (tmp_path / "run_info.json.bad").read_text() == '{"runs": ['
