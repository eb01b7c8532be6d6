"""The gallery of expected results: one figure per notebook, taken from a full-profile run.

``make demo`` (the full profile, real weights; on Colab or a GPU machine) saves every executed
notebook in ``outputs/notebooks/`` with its figures and records in each one's metadata how it ran
(:func:`run_record`: profile, device, versions, date). In each notebook source one figure cell is
tagged ``gallery``. :func:`build_gallery` copies the images of those cells into ``docs/gallery/``
and writes ``docs/gallery.md``, naming for each figure the run that made it. A notebook that ran
under the tiny profile is refused: its figures are meaningless and must never be shown as results
(``allow_tiny`` exists for the tests, and stamps the page as meaningless). Until it has been run
with real weights, the committed page says so plainly.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from rs_helpers.errors import BadInputError

GALLERY_TAG = "gallery"
META_KEY = "rs_helpers_run"
MAX_FIGURES = 3  # per notebook: a cell that draws one figure per sample gives its first three
NOT_RUN = ("**Not run with real weights yet.** No figure on this page comes from real models: the sessions "
           "that built this suite had no pretrained weights and no GPU. To fill it, run the full profile where "
           "the weights can be downloaded (Colab with a GPU runtime, or your own machine):")


def run_record() -> dict:
    """How this process runs notebooks: stored in each executed notebook's metadata by ``make demo``."""
    import datetime
    import platform

    import torch

    from rs_helpers.device import pick_device
    from rs_helpers.profile import get_profile, random_weights

    device = pick_device(None)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return {"profile": get_profile(), "device": f"{device} ({name})", "torch": torch.__version__,
            "python": platform.python_version(), "date": datetime.date.today().isoformat(),
            "random_weights": random_weights()}


@dataclass
class GalleryEntry:
    notebook: str  # the notebook's file name
    images: list[str]  # the written PNG names, relative to the gallery folder
    run: dict  # the notebook's run record (empty when it has none)
    problem: str = ""  # why there is no figure


def tagged_images(nb) -> list[bytes]:
    """The PNG images (at most :data:`MAX_FIGURES`) that the ``gallery``-tagged cell of an executed
    notebook produced, in order; [] when the cell has none (not executed, or it failed)."""
    cells = [c for c in nb.cells if c.cell_type == "code" and GALLERY_TAG in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise BadInputError(f"want one code cell tagged '{GALLERY_TAG}', found {len(cells)}")
    images = []
    for output in cells[0].get("outputs", []):
        data = output.get("data", {}).get("image/png")
        if data:
            images.append(base64.b64decode("".join(data) if isinstance(data, list) else data))
    return images[:MAX_FIGURES]


def build_gallery(executed: Path, out: Path, allow_tiny: bool = False, overwrite: bool = False) -> list[GalleryEntry]:
    """Copy each executed notebook's gallery figures from ``executed`` (``make demo``'s
    ``outputs/notebooks``) into ``out`` and write ``out.parent / (out.name + ".md")``, whole files
    only. An earlier gallery is replaced only with ``overwrite`` (the "not run yet" page always is)."""
    import nbformat

    from rs_helpers.files import atomic_path, write_text_atomic

    out = Path(out)
    page = out.parent / f"{out.name}.md"
    paths = sorted(Path(executed).glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise BadInputError(f"{executed}: no executed notebooks (NN_name.ipynb); run `make demo` first")
    earlier = sorted(out.glob("*.png")) if out.is_dir() else []
    if not overwrite and (earlier or (page.is_file() and NOT_RUN not in page.read_text(errors="replace"))):
        raise BadInputError(f"{page} and {out}/ hold an earlier gallery; give --overwrite to replace it")
    entries = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        run = dict(nb.metadata.get(META_KEY, {}))
        if run.get("random_weights") and not allow_tiny:
            raise BadInputError(f"{path} ran with random weights (a timing run): its figures are meaningless")
        if run.get("profile") != "full" and not allow_tiny:
            what = f"the {run['profile']} profile" if run.get("profile") else "no recorded profile (not from make demo)"
            raise BadInputError(f"{path} ran under {what}: only full-profile runs make the gallery (tiny output "
                                "is meaningless)")
        entry = GalleryEntry(path.name, [], run)
        images = tagged_images(nb)
        if not images:
            entry.problem = "the tagged cell produced no image (not executed, or it failed)"
        for k, png in enumerate(images, start=1):
            name = f"{path.stem}_{k}.png"
            out.mkdir(parents=True, exist_ok=True)
            with atomic_path(out / name) as tmp:
                Path(tmp).write_bytes(png)
            entry.images.append(name)
        entries.append(entry)
    write_text_atomic(page, gallery_page(entries, out.name, tiny=allow_tiny))
    return entries


def gallery_page(entries: list[GalleryEntry], folder: str, tiny: bool = False) -> str:
    """The Markdown page: per notebook its figures and the run that made them."""
    lines = ["# Gallery: what the notebooks show with real weights", ""]
    if tiny:
        lines += ["**TINY PROFILE: these figures come from random tiny models and are MEANINGLESS. This page "
                  "exists only to test the gallery builder; never publish it.**", ""]
    if not entries:
        lines += [NOT_RUN, "", "    make demo                      # PROFILE=full, on a GPU",
                  "    python scripts/make_gallery.py outputs/notebooks", ""]
        return "\n".join(lines)
    for entry in entries:
        run = entry.run
        made = (f"{run.get('profile', '?')} profile, {run.get('device', '?')}, torch {run.get('torch', '?')}, "
                f"{run.get('date', '?')}") if run else "run not recorded"
        lines += [f"## {entry.notebook}", "", f"Made by `make demo`: {made}.", ""]
        lines += [f"![{entry.notebook} figure {k}]({folder}/{name})" for k, name in enumerate(entry.images, 1)]
        if entry.problem:
            lines.append(f"No figure: {entry.problem}.")
        lines.append("")
    return "\n".join(lines)
