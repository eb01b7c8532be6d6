"""The figures of notebooks 00 and 09: the shipped samples beside their ground truth, in a grid
that fits a notebook page (00), and why a 16-bit scene is stretched once for the whole scene and
not per tile (09).

:func:`per_tile_stretch` and :func:`seam_steps` are the pure helpers the tests pin down: the
per-tile stretch of a band, and how much neighbouring pixels jump across the tile borders compared
with everywhere else.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from rs_helpers.errors import BadInputError
from rs_helpers.geo.rasters import stretch_to_uint8
from rs_helpers.geo.tiling import tile_grid
from rs_helpers.teaching.plotting import show_image, show_semantic

MAX_WIDTH = 14.0  # inches: about what a notebook page shows without scrolling sideways


# --------------------------------------------------------------------------- notebook 00
def plot_sample_grid(samples: Sequence, columns: int = 4, size: float = 3.2, max_width: float = MAX_WIDTH):
    """Each sample's image and its ground truth side by side, ``columns // 2`` samples per row.
    Every ground-truth panel has its own legend under it: the sample's classes (absent ones
    marked) and "unlabelled" (hatched grey) where the ground truth has 255. ``samples``: objects
    with ``name``, ``palette``, ``class_names`` and ``load() -> (image with .rgb, labels)``
    (:class:`rs_helpers.samples.Sample`). The figure is at most ``max_width`` inches wide."""
    import matplotlib.pyplot as plt

    samples = list(samples)
    if not samples:
        raise BadInputError("no samples to show")
    columns = max(2, columns - columns % 2)
    per_row = columns // 2
    columns = 2 * min(per_row, len(samples))
    rows = -(-len(samples) // per_row)
    size = min(size, max_width / columns)
    legend_rows = max(-(-(len(s.class_names) + 1) // 2) for s in samples)
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, rows * (size + 0.3 + 0.17 * legend_rows)),
                             squeeze=False, layout="constrained")
    for k, ax in enumerate(axes.flat):
        if k // 2 >= len(samples):
            ax.set_axis_off()
            continue
        sample = samples[k // 2]
        if k % 2 == 0:
            image, labels = sample.load()
            show_image(image.rgb, ax, title=sample.name)
            ax.title.set_fontsize(9)
        else:
            show_semantic(labels, sample.palette, sample.class_names, ax, title="ground truth", legend_loc="below")
            ax.title.set_fontsize(9)
            for text in ax.get_legend().get_texts():
                text.set_fontsize(7)
    return fig


# --------------------------------------------------------------------------- notebook 09
def per_tile_stretch(band: np.ndarray, tile: int, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """The H x W ``band`` cut into ``tile`` px tiles without overlap (:func:`tile_grid`), each
    mapped to 0..255 by its *own* ``low``..``high`` percentiles: what a reader that stretches
    every tile on its own would hand to the models."""
    band = np.asarray(band)
    if band.ndim != 2:
        raise BadInputError(f"one H x W band, got shape {band.shape}")
    out = np.zeros(band.shape, np.uint8)
    for t in tile_grid(band.shape[0], band.shape[1], tile, 0):
        window = (slice(t.row_off, t.row_off + t.height), slice(t.col_off, t.col_off + t.width))
        out[window] = stretch_to_uint8(band[window], low, high)
    return out


def tile_borders(height: int, width: int, tile: int) -> tuple[list[int], list[int]]:
    """The rows and columns where a tile of :func:`tile_grid` (no overlap) starts, except 0."""
    tiles = tile_grid(height, width, tile, 0)
    return sorted({t.row_off for t in tiles} - {0}), sorted({t.col_off for t in tiles} - {0})


def seam_steps(image: np.ndarray, tile: int) -> tuple[float, float]:
    """Mean absolute step between neighbouring pixels (grey levels) across the tile borders, and
    everywhere else. Equal for a seamless image; larger across the borders where tiles show."""
    image = np.asarray(image, float)
    if image.ndim != 2:
        raise BadInputError(f"one H x W image, got shape {image.shape}")
    rows, cols = tile_borders(image.shape[0], image.shape[1], tile)
    across_cols = np.abs(np.diff(image, axis=1))  # step between column c-1 and c sits at index c-1
    across_rows = np.abs(np.diff(image, axis=0))
    at_col = np.zeros(across_cols.shape[1], bool)
    at_col[[c - 1 for c in cols]] = True
    at_row = np.zeros(across_rows.shape[0], bool)
    at_row[[r - 1 for r in rows]] = True
    seams = np.concatenate([across_cols[:, at_col].ravel(), across_rows[at_row].ravel()])
    rest = np.concatenate([across_cols[:, ~at_col].ravel(), across_rows[~at_row].ravel()])
    return float(seams.mean()) if seams.size else 0.0, float(rest.mean()) if rest.size else 0.0


def plot_stretch_comparison(raw: np.ndarray, scene: np.ndarray, tile: int, size: float = 4.0):
    """Four views of one 16-bit band: (a) divided by 256; (b) one stretch for the whole scene
    (``scene``, uint8); (c) stretched per ``tile`` px tile, with ticks at the tile borders; (d)
    \\|scene - per tile\\| in grey levels, with a colour bar and the tile borders dashed. Titles (b)
    and (c) give :func:`seam_steps`: the per-tile jump across the borders is the seam."""
    import matplotlib.pyplot as plt

    raw = np.asarray(raw)
    scene = np.asarray(scene)
    scene = scene[..., 0] if scene.ndim == 3 else scene
    if raw.ndim != 2 or scene.shape != raw.shape:
        raise BadInputError(f"raw band and scene stretch must be the same H x W, got {raw.shape} and {scene.shape}")
    per_tile = per_tile_stretch(raw, tile)
    difference = np.abs(scene.astype(int) - per_tile.astype(int))
    rows, cols = tile_borders(*raw.shape, tile)
    n_tiles = (len(rows) + 1) * (len(cols) + 1)
    fig, axes = plt.subplots(2, 2, figsize=(2 * size + 0.8, 2 * size + 0.9), layout="constrained")
    (a, b), (c, d) = axes
    show_image(np.dstack([(raw // 256).astype(np.uint8)] * 3), a, title="(a) uint16 // 256: almost black")
    seam, rest = seam_steps(scene, tile)
    show_image(np.dstack([scene] * 3), b, title=f"(b) one stretch for the scene\nstep at tile borders {seam:.1f}, "
                                              f"elsewhere {rest:.1f} grey levels")
    seam, rest = seam_steps(per_tile, tile)
    show_image(np.dstack([per_tile] * 3), c, title=f"(c) stretched per {tile} px tile ({n_tiles} tiles): edges\n"
                                                 f"step at tile borders {seam:.1f}, elsewhere {rest:.1f}")
    c.set_axis_on()
    c.set_xticks(cols)
    c.set_yticks(rows)
    c.tick_params(labelsize=7, length=6, color="red", width=2)
    c.set_xlabel("ticks: tile borders (px)", fontsize=8)
    image = d.imshow(difference, cmap="viridis", vmin=0, interpolation="nearest")
    for r in rows:
        d.axhline(r - 0.5, color="white", linestyle="--", linewidth=0.8)
    for col in cols:
        d.axvline(col - 0.5, color="white", linestyle="--", linewidth=0.8)
    d.set_axis_off()
    d.set_title("(d) |scene - per tile|: each tile its own contrast\n(dashed: tile borders)")
    bar = fig.colorbar(image, ax=d, fraction=0.046, pad=0.03)
    bar.set_label("difference (grey levels, 0-255)")
    return fig
