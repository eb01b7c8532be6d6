"""Build notebooks/NN_name.ipynb from the reviewable sources scripts/notebooks/NN_name.py.

Sources are jupytext "percent" scripts. Three markers are filled in so that every notebook
carries the same badge, compute times and setup cell:
  {{BADGE}}     (in a markdown cell)  -> the "Open in Colab" badge for this notebook
  {{COMPUTE}}   (in a markdown cell)  -> its measured compute times (notebooks/timings.json, made by
                                         scripts/time_notebooks.py), or "not measured"
  # {{SETUP}}   (a whole code cell)   -> the Colab-aware install cell + profile banner
The setup cell's code is the template scripts/notebooks/_colab_setup.py (plain Python, tested by
executing it: tests/teaching/test_colab_cell.py) with the repository URL from pyproject.toml and
COLAB_REF filled in. COLAB_REF is the one source of truth for the branch the badges open and the
cell clones; README.md's table uses the same links (a test checks).
Notebooks are written without outputs. Usage: python scripts/build_notebooks.py [NAME ...]
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from rs_helpers.teaching.timings import compute_line, load_timings  # noqa: E402

SOURCES = ROOT / "scripts" / "notebooks"
OUT = ROOT / "notebooks"
TIMINGS = ROOT / "notebooks"  # where timings.json is read, wherever the notebooks are written
SETUP_TEMPLATE = SOURCES / "_colab_setup.py"
# The branch (or tag) that the Colab badges open and that the setup cell clones and installs:
# the repository's default branch, so that the notebook a student opens and the package it
# installs always come from the same commit.
COLAB_REF = "main"


def project_meta() -> tuple[str, str]:
    """(repository URL, version) declared once in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text()
    url = re.search(r'^Repository\s*=\s*"([^"]+)"', text, re.M).group(1)
    version = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)
    return url, version


def colab_url(name: str) -> str:
    """The Colab address of notebook ``name`` (e.g. ``01_sam_grid_proposals``) at COLAB_REF."""
    url, _ = project_meta()
    path = url.split("github.com/", 1)[1]
    return f"https://colab.research.google.com/github/{path}/blob/{COLAB_REF}/notebooks/{name}.ipynb"


def badge(name: str) -> str:
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(name)})"


def setup_cell() -> str:
    """The first code cell of every notebook: the Colab install (from the template) and the banner."""
    url, _ = project_meta()
    code = SETUP_TEMPLATE.read_text().replace("{{REPO_URL}}", url).replace("{{SUITE_REF}}", COLAB_REF)
    return code.rstrip() + "\n\nfrom rs_helpers.teaching import setup_notebook\nsetup_notebook()"


def build(source: Path) -> Path:
    name = source.stem
    nb = jupytext.read(source, fmt="py:percent")
    timings = load_timings(TIMINGS)
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index:03d}"  # stable ids: rebuilding gives the same file
        if cell.cell_type == "markdown" and "{{BADGE}}" in cell.source:
            cell.source = cell.source.replace("{{BADGE}}", badge(name))
        if cell.cell_type == "markdown" and "{{COMPUTE}}" in cell.source:
            cell.source = cell.source.replace("{{COMPUTE}}", compute_line(name, timings))
        if cell.cell_type == "code" and cell.source.strip() == "# {{SETUP}}":
            cell.source = setup_cell()
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in ("tags",)}
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
    }
    target = OUT / f"{name}.ipynb"
    OUT.mkdir(exist_ok=True)
    nbformat.write(nbformat.from_dict(nb), target)
    return target


def notebook_sources() -> list[Path]:
    """The notebook sources NN_name.py (the setup template and other helpers start with '_')."""
    return sorted(SOURCES.glob("[0-9][0-9]_*.py"))


def main(names: list[str]) -> int:
    sources = notebook_sources()
    if names:
        wanted = {n.removesuffix(".py").removesuffix(".ipynb") for n in names}
        sources = [s for s in sources if s.stem in wanted]
        missing = wanted - {s.stem for s in sources}
        if missing:
            print(f"no source for: {', '.join(sorted(missing))}", file=sys.stderr)
            return 2
    for source in sources:
        print(build(source).relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
