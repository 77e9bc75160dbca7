"""The README's examples run as written.

Every ```python block is executed, in README order, in one namespace inside a
temporary folder that holds the files the examples name (``corpus.txt``,
``train.tsv``, ``dev.tsv``: slices of the data bundled with the package, and a
copy of ``configs/``). Step counts are cut (`SHRINK`) and placeholders filled
(`PLACEHOLDERS`); each of them must occur in the README, so neither can drift
silently. A block preceded by ``<!-- readme-test: skip (reason) -->`` is not
run. Every ``tfptlm ...`` line of the ```bash blocks is parsed by the real
argument parser, so commands and options cannot rot either.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from tfptlm.cli import build_parser
from tfptlm.quickstart import corpus_path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"(?:<!-- readme-test: skip \((?P<skip>[^)]+)\) -->\s*)?```(?P<language>\w*)\n(?P<code>.*?)```", re.S)
#: Larger settings in the README -> what the test runs.
SHRINK = {"training.steps=500": "training.steps=4", "training.epochs=2": "training.epochs=1"}


def blocks(language: str) -> list[tuple[str, str | None]]:
    """(code, skip reason) of each README block in ``language``."""
    text = README.read_text(encoding="utf-8")
    return [(m["code"], m["skip"]) for m in BLOCK.finditer(text) if m["language"] == language]


def write_example_files(folder: Path) -> None:
    """The user files the examples name, cut from the bundled data."""
    shutil.copytree(ROOT / "configs", folder / "configs")
    lines = Path(corpus_path("wikitext2_train.txt")).read_text(encoding="utf-8").splitlines()
    (folder / "corpus.txt").write_text("\n".join(lines[:800]) + "\n", encoding="utf-8")
    for name, source, rows in (("train.tsv", "sst2_sample_train.tsv", 160), ("dev.tsv", "sst2_sample_dev.tsv", 60)):
        header, *examples = Path(corpus_path(source)).read_text(encoding="utf-8").splitlines()
        (folder / name).write_text("\n".join([header, *examples[:rows]]) + "\n", encoding="utf-8")


def test_every_shrunk_setting_and_placeholder_is_in_the_readme():
    code = "\n".join(code for code, _ in blocks("python"))
    for written in [*SHRINK, "path/to/all-MiniLM-L6-v2"]:
        assert written in code, f"README no longer has {written!r}: update tests/test_readme.py"


def test_python_examples_run(tmp_path, monkeypatch, minilm_dir):
    placeholders = {"path/to/all-MiniLM-L6-v2": str(minilm_dir)}
    write_example_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    ran = 0
    for index, (code, skip) in enumerate(blocks("python")):
        if skip:
            continue
        for written, used in {**SHRINK, **placeholders}.items():
            code = code.replace(written, used)
        exec(compile(code, f"README.md python block {index}", "exec"), namespace)
        ran += 1
    assert ran >= 5
    assert (tmp_path / "exports" / "sst2" / "1" / "saved_model.pb").is_file()
    assert namespace["tflite_file"].is_file()
    assert namespace["backbone"].count_params() > 20_000_000  # all-MiniLM-L6-v2 loaded


def cli_commands() -> list[str]:
    """Every ``tfptlm ...`` command in the README's bash blocks, continuation lines joined."""
    commands = []
    for code, _ in blocks("bash"):
        for line in code.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("tfptlm "):
                commands.extend(part.strip() for part in line.split("&&") if part.strip().startswith("tfptlm"))
    return commands


@pytest.mark.parametrize("command", cli_commands())
def test_cli_examples_parse(command):
    build_parser().parse_args(shlex.split(command)[1:])



def test_cli_reference_lists_every_command_and_option():
    """`scripts/cli_reference.py` wrote the README's reference after the last change of options."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from cli_reference import END, START, commands

    text = README.read_text(encoding="utf-8")
    reference = text.split(START, 1)[1].split(END, 1)[0]
    for name, parser in commands(build_parser()):
        assert f"#### `{name}`" in reference, f"{name} is missing: run python scripts/cli_reference.py"
        for action in parser._actions:
            for option in action.option_strings:
                assert option in reference, f"{name} {option} is missing: run python scripts/cli_reference.py"
