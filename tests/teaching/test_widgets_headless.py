"""The widget cells of notebooks 01, 03 and 05 run headless, as ``nbconvert --execute``,
``pytest --nbmake`` and ``make demo`` run them: nbclient, no front end, and matplotlib's inline
backend (``make demo`` runs without ``MPLBACKEND=Agg``).

Each cell must end as soon as its kernel is done, and show its default view as an ordinary image.
A cell that captured output into an ipywidgets ``Output`` while it ran sometimes ended only when
the per-cell limit ran out, on the dot (issue #17 item 10; the cause is in
:mod:`rs_helpers.teaching.notebook`): that is what the bound on each run's time detects. The
notebook's earlier cells run once, then the widget cell several times in the same kernel.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("ipywidgets")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
WIDGET_CALLS = {  # notebook -> the call its widget cell makes
    "01_sam_grid_proposals": "grid_explorer(",
    "03_clip_mask_selection": "interactive_view(",
    "05_vlm_click_prompts": "click_explorer(",
}
RUNS = 3
LIMIT = 30  # seconds per cell; a widget cell takes a few, the stall took the whole limit


def _widget_cell(nb, call: str) -> int | None:
    return next((i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and call in cell.source), None)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(WIDGET_CALLS))
def test_widget_cell_never_waits_and_shows_an_image(name):
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    index = _widget_cell(nb, WIDGET_CALLS[name])
    assert index is not None, f"{name}: no cell calls {WIDGET_CALLS[name]}"
    # the plain client, as nbconvert and nbmake use it (not make demo's quieter one)
    client = NotebookClient(nb, timeout=LIMIT, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    env = {key: value for key, value in os.environ.items() if key != "MPLBACKEND"}
    env["RS_HELPERS_PROFILE"] = "tiny"
    seconds, images = [], []  # per run of the widget cell
    with client.setup_kernel(env=env):
        for i, cell in enumerate(nb.cells[:index]):
            if cell.cell_type == "code":
                client.execute_cell(cell, i)
        backend = nbformat.v4.new_code_cell("import matplotlib; print(matplotlib.get_backend())")
        nb.cells.append(backend)
        client.execute_cell(backend, len(nb.cells) - 1)
        assert "inline" in backend.outputs[0]["text"], "the kernel should use the inline backend"
        cell = nb.cells[index]
        for _ in range(RUNS):
            start = time.perf_counter()
            client.execute_cell(cell, index)
            seconds.append(round(time.perf_counter() - start, 1))
            images.append(sum(o.output_type == "display_data" and "image/png" in o.data for o in cell.outputs))
    assert max(seconds) < LIMIT - 5, f"{name}: a widget cell waited for its {LIMIT} s limit: {seconds} s"
    assert min(images) >= 1, f"{name}: the widget cell shows no image of its own: {cell.outputs}"
    captured = [state for state in client.widget_state.values()
                if state.get("_model_name") == "OutputModel" and state.get("outputs")]
    assert not captured, f"{name}: the first view was captured into an Output widget"
