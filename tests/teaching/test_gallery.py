"""The gallery: one tagged figure cell per notebook; built only from full-profile runs of make demo,
never from tiny ones; earlier galleries kept unless --overwrite; the committed page says plainly
whether real weights made it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from rs_helpers.errors import BadInputError
from rs_helpers.teaching.demo import execute_notebooks
from rs_helpers.teaching.gallery import GALLERY_TAG, META_KEY, NOT_RUN, build_gallery, tagged_images

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")  # 1 x 1
FIGURE = f"""import base64
from IPython.display import Image, display
display(Image(base64.b64decode("{PNG}")))"""


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_tags_one_figure_cell_for_the_gallery(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if GALLERY_TAG in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"
    assert tagged_images(nb) == []  # committed without outputs


def test_the_committed_page_says_whether_real_weights_made_it():
    page = (ROOT / "docs" / "gallery.md").read_text()
    figures = sorted((ROOT / "docs" / "gallery").glob("*.png")) if (ROOT / "docs" / "gallery").is_dir() else []
    if not figures:
        assert NOT_RUN in page and "make demo" in page
    else:  # pragma: no cover - once a full-profile run has filled it
        assert "full profile" in page and "TINY" not in page


def _executed(tmp_path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell(FIGURE)]
    nb.cells[1].metadata["tags"] = [GALLERY_TAG]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source = tmp_path / "src" / "01_demo.ipynb"
    source.parent.mkdir()
    nbformat.write(nb, source)
    execute_notebooks([source], tmp_path / "outputs", timeout=120)  # as make demo does
    return tmp_path / "outputs"


def test_built_from_make_demo_runs_but_never_from_tiny_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("RS_HELPERS_PROFILE", "tiny")
    executed = _executed(tmp_path)
    record = nbformat.read(executed / "01_demo.ipynb", as_version=4).metadata[META_KEY]
    assert record["profile"] == "tiny" and {"device", "torch", "date"} <= set(record)
    gallery = tmp_path / "docs" / "gallery"
    with pytest.raises(BadInputError, match="tiny profile"):
        build_gallery(executed, gallery)
    assert not gallery.exists() and not (tmp_path / "docs" / "gallery.md").exists()

    entries = build_gallery(executed, gallery, allow_tiny=True)  # the tests' way only
    png = (gallery / "01_demo_1.png").read_bytes()
    assert entries[0].images == ["01_demo_1.png"] and png.startswith(b"\x89PNG")
    page = (tmp_path / "docs" / "gallery.md").read_text()
    assert "MEANINGLESS" in page and "![01_demo.ipynb figure 1](gallery/01_demo_1.png)" in page
    with pytest.raises(BadInputError, match="--overwrite"):
        build_gallery(executed, gallery, allow_tiny=True)

    nb = nbformat.read(executed / "01_demo.ipynb", as_version=4)
    nb.metadata[META_KEY] = {**record, "profile": "full", "device": "cuda:0 (NVIDIA T4)"}
    nbformat.write(nb, executed / "01_demo.ipynb")
    build_gallery(executed, gallery, overwrite=True)
    page = (tmp_path / "docs" / "gallery.md").read_text()
    assert "full profile, cuda:0 (NVIDIA T4)" in page and "MEANINGLESS" not in page


def test_a_not_run_page_is_replaced_and_a_failed_cell_is_named(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1 / 0")]
    nb.cells[0].metadata["tags"] = [GALLERY_TAG]
    nb.metadata[META_KEY] = {"profile": "full"}
    (tmp_path / "run").mkdir()
    nbformat.write(nb, tmp_path / "run" / "02_x.ipynb")
    (tmp_path / "gallery.md").write_text(f"# Gallery\n\n{NOT_RUN}\n")
    entries = build_gallery(tmp_path / "run", tmp_path / "gallery")
    assert entries[0].images == [] and "no image" in entries[0].problem
    assert "No figure: the tagged cell produced no image" in (tmp_path / "gallery.md").read_text()


def test_script_refuses_tiny_runs_with_exit_2(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata[META_KEY] = {"profile": "tiny"}
    (tmp_path / "run").mkdir()
    nbformat.write(nb, tmp_path / "run" / "00_a.ipynb")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_gallery.py"), str(tmp_path / "run"),
                           "--out", str(tmp_path / "g")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "only full-profile runs" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "g.md").exists()
