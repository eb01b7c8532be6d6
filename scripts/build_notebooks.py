"""Build notebooks/NN_name.ipynb from the reviewable sources scripts/notebooks/NN_name.py.

Sources are jupytext "percent" scripts. Two markers are filled in from pyproject.toml so that
every notebook carries the same badge and setup cell:
  {{BADGE}}     (in a markdown cell)  -> the "Open in Colab" badge for this notebook
  # {{SETUP}}   (a whole code cell)   -> the Colab-aware install cell + profile banner
Notebooks are written without outputs. Usage: python scripts/build_notebooks.py [NAME ...]
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "scripts" / "notebooks"
OUT = ROOT / "notebooks"


def project_meta() -> tuple[str, str]:
    """(repository URL, version) declared once in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text()
    url = re.search(r'^Repository\s*=\s*"([^"]+)"', text, re.M).group(1)
    version = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)
    return url, version


def badge(name: str) -> str:
    url, _ = project_meta()
    path = url.split("github.com/", 1)[1]
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{path}/blob/main/notebooks/{name}.ipynb)")


def setup_cell() -> str:
    url, version = project_meta()
    return f'''# Setup. On Colab this installs the suite (Colab's own torch is kept); locally it does nothing.
import os, sys
if "google.colab" in sys.modules:
    REPO_URL = "{url}"
    SUITE_REF = "v{version}"
    if not os.path.isdir("/content/rs-text-seg"):
        !git clone --quiet --depth 1 --branch {{SUITE_REF}} {{REPO_URL}} /content/rs-text-seg
    %pip install --quiet -e /content/rs-text-seg
    sys.path.insert(0, "/content/rs-text-seg")
    os.chdir("/content/rs-text-seg/notebooks")
from rs_helpers.teaching import setup_notebook
setup_notebook()'''


def build(source: Path) -> Path:
    name = source.stem
    nb = jupytext.read(source, fmt="py:percent")
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index:03d}"  # stable ids: rebuilding gives the same file
        if cell.cell_type == "markdown" and "{{BADGE}}" in cell.source:
            cell.source = cell.source.replace("{{BADGE}}", badge(name))
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


def main(names: list[str]) -> int:
    sources = sorted(SOURCES.glob("*.py"))
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
