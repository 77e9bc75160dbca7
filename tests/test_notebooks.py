"""Runs every notebook in notebooks/ top to bottom so that none of them rots.

Each notebook runs in its own temporary folder with ``TFPTLM_NOTEBOOK_SMOKE=1``,
which the notebooks read to shrink their settings further (fewer steps, less
text). Deselect with ``pytest -m "not notebooks"``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
#: Seconds one cell may run before the notebook fails.
CELL_TIMEOUT = 300

pytestmark = pytest.mark.notebooks


def test_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_clean(path: Path):
    """Committed notebooks open with an explanation and carry no outputs."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    assert cells[0]["cell_type"] == "markdown", f"{path.name}: the first cell should explain the idea"
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            assert not cell["outputs"], f"{path.name} cell {index}: clear the outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("TFPTLM_NOTEBOOK_SMOKE", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    notebook = nbformat.read(str(path), as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
