"""Notebooks stay consistent with their sources, the skeleton, Colab and the README."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
sys.path.insert(0, str(ROOT / "scripts"))
import build_notebooks  # noqa: E402

REPO_URL, VERSION = build_notebooks.project_meta()


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _text(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _title(path) -> str:
    first = _text(_cells(path)[0])
    return re.search(r"^# (.+)$", first, re.M).group(1).strip()


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    for cell in _cells(path):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_matches_its_source(path, tmp_path, monkeypatch):
    source = ROOT / "scripts" / "notebooks" / f"{path.stem}.py"
    assert source.exists(), f"{path.name} has no source {source}"
    monkeypatch.setattr(build_notebooks, "OUT", tmp_path)
    rebuilt = build_notebooks.build(source)
    assert json.loads(rebuilt.read_text())["cells"] == _cells(path), (
        f"{path.name} is stale: run python scripts/build_notebooks.py {path.stem}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_skeleton_title_badge_and_sections(path):
    cells = _cells(path)
    first = _text(cells[0])
    assert first.startswith("# "), "first cell starts with the title"
    badge = (f"colab.research.google.com/github/{REPO_URL.split('github.com/')[1]}/blob/"
             f"{build_notebooks.COLAB_REF}/notebooks/{path.name}")
    assert badge in first, "first cell carries this notebook's Colab badge"
    markdown = "\n".join(_text(c) for c in cells if c["cell_type"] == "markdown").lower()
    for word in ("objectives", "prerequisites", "time", "exercises", "summary", "what's next"):
        assert word in markdown, f"{path.name} lacks a '{word}' part"
    code = [_text(c) for c in cells if c["cell_type"] == "code"]
    assert any("pick(" in c for c in code), "one settings cell built with rs_helpers.teaching.notebook.pick"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_colab_setup_cell(path):
    setup = next(_text(c) for c in _cells(path) if c["cell_type"] == "code" and "google.colab" in _text(c))
    assert '"google.colab" in sys.modules' in setup
    assert f'"RS_HELPERS_REPO_URL", "{REPO_URL}"' in setup, "setup cell installs from the repository URL in pyproject"
    assert f'SUITE_REF = "{build_notebooks.COLAB_REF}"' in setup, "setup cell clones the ref the badge opens"
    install_lines = [line for line in setup.splitlines() if '"pip", "install"' in line]
    assert install_lines and all("torch" not in line for line in install_lines), "never reinstall torch on Colab"
    assert "!" not in "".join(line.lstrip()[:1] for line in setup.splitlines()), "no shell escapes: they cannot fail"
    assert "setup_notebook()" in setup  # executed for real in test_colab_cell.py


def test_setup_cell_is_valid_python_after_ipython_transforms():
    from IPython.core.inputtransformer2 import TransformerManager

    code = TransformerManager().transform_cell(build_notebooks.setup_cell())
    compile(code, "<setup>", "exec")


def test_readme_table_matches_notebooks_titles_and_badges():
    readme = (ROOT / "README.md").read_text()
    rows = [line for line in readme.splitlines() if re.match(r"^\| \d\d \|", line)]
    assert len(rows) == len(NOTEBOOKS), "one README table row per notebook"
    slug = REPO_URL.split("github.com/")[1]
    for row, path in zip(rows, NOTEBOOKS):
        title = _title(path).split("·", 1)[-1].strip()
        assert f"[{title}](notebooks/{path.name})" in row, f"README row for {path.name} lacks its title/link"
        assert f"colab.research.google.com/github/{slug}/blob/{build_notebooks.COLAB_REF}/notebooks/{path.name}" in row, (
            f"README row for {path.name} lacks its Colab badge")
