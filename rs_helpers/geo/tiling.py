"""Cut a raster scene of any size into overlapping tiles and read them one window at a time.

Three pieces:

* :func:`tile_grid` lays fixed-size tiles over the scene with ``overlap`` pixels shared between
  neighbours (the last row/column is shifted back inside the scene, so every tile has the full
  size). Each :class:`Tile` also owns a *core*: the pixels whose nearest tile centre is this
  tile's. Cores partition the scene, and every core pixel is at least ``overlap // 2`` pixels
  away from its tile's border (unless that border is the scene's), which is what
  :mod:`rs_helpers.geo.scene` uses to stitch without seams.
* :class:`Stretch` maps 16-bit or float bands to uint8 with percentiles computed **once per
  scene** from a decimated read (``out_shape``), so neighbouring tiles get the same grey levels.
  Computing the percentiles per tile would give each tile its own contrast: visible seams.
* :class:`SceneReader` opens the raster, chooses bands like :func:`rs_helpers.geo.rasters.read_image`
  and returns uint8 RGB tiles through windowed reads: memory depends on the tile, not the scene.
  Its header checks (size, bands, pixel type) are read_image's; a block that fails to decode is a
  :class:`~rs_helpers.errors.BadInputError`, not a rasterio traceback.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from rs_helpers.errors import BadInputError
from rs_helpers.geo.rasters import (
    MIN_SIDE,
    BandChoiceWarning,
    _open,
    choose_bands,
    palette_lut,
    plan_read,
    read_pixels,
)  # noqa: F401

OVERVIEW_SIDE = 2048  # long side of the decimated read used for the scene-wide stretch
DEFAULT_TILE = 1024  # SAM's input size: a tile goes through SAM at its native resolution
DEFAULT_OVERLAP = 128


# --------------------------------------------------------------------------- the grid
@dataclass(frozen=True)
class Tile:
    """One tile: its window in scene pixels and the core it is responsible for.

    ``row_off, col_off, height, width``: the tile's window. ``core``: ``(row0, col0, row1, col1)``
    in scene pixels (end exclusive), the pixels this tile decides when tiles are stitched.
    ``index``: (grid row, grid column).
    """

    row_off: int
    col_off: int
    height: int
    width: int
    core: tuple[int, int, int, int]
    index: tuple[int, int] = (0, 0)

    @property
    def window(self):
        """The tile as a :class:`rasterio.windows.Window`."""
        from rasterio.windows import Window

        return Window(self.col_off, self.row_off, self.width, self.height)

    @property
    def core_window(self):
        from rasterio.windows import Window

        r0, c0, r1, c1 = self.core
        return Window(c0, r0, c1 - c0, r1 - r0)

    @property
    def core_in_tile(self) -> tuple[slice, slice]:
        """Slices that cut the core out of an array covering the tile."""
        r0, c0, r1, c1 = self.core
        return slice(r0 - self.row_off, r1 - self.row_off), slice(c0 - self.col_off, c1 - self.col_off)

    @property
    def centre(self) -> tuple[float, float]:
        return self.row_off + self.height / 2, self.col_off + self.width / 2


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets along one axis: every ``tile - overlap`` pixels from 0, the last one shifted
    back so that it ends at ``length`` (every tile is full size; neighbours share at least
    ``overlap`` pixels). A scene no longer than ``tile`` is one tile."""
    if tile < 1:
        raise BadInputError(f"tile size must be at least 1 pixel, got {tile}")
    if overlap < 0 or overlap >= tile:
        raise BadInputError(f"overlap must be in 0..{tile - 1} (less than the tile size {tile}), got {overlap}")
    if length <= tile:
        return [0]
    step = tile - overlap
    n = math.ceil((length - tile) / step) + 1
    return [i * step for i in range(n - 1)] + [length - tile]


def _core_bounds(starts: list[int], size: int, length: int) -> list[tuple[int, int]]:
    """Per tile along one axis, the range of pixels nearer to its centre than to any other.

    Centres are ``start + size / 2``; the boundary between neighbours is the midpoint of their
    centres, rounded down: ``(s_i + s_{i+1} + size) // 2``. It lies inside both tiles because
    neighbours overlap or touch (``s_{i+1} <= s_i + size``)."""
    cuts = [0] + [(a + b + size) // 2 for a, b in zip(starts, starts[1:])] + [length]
    return list(zip(cuts[:-1], cuts[1:]))


def tile_grid(height: int, width: int, tile: int = 1024, overlap: int = 128) -> list[Tile]:
    """Tiles of ``tile`` x ``tile`` pixels (or the scene size where smaller) with ``overlap``
    pixels shared by neighbours, in row-major order, with their nearest-centre cores.

    Degenerate scenes are fine: a 1 x N scene gives one row of 1-pixel-high tiles, a tile larger
    than the scene gives one tile of the scene's size (whether the models can use such a tile is
    :func:`rs_helpers.geo.rasters.check_model_shape`'s question)."""
    height, width, tile, overlap = int(height), int(width), int(tile), int(overlap)
    if height < 1 or width < 1:
        raise BadInputError(f"scene of {width} x {height} pixels has nothing to tile")
    rows, cols = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    th, tw = min(tile, height), min(tile, width)
    row_cores, col_cores = _core_bounds(rows, th, height), _core_bounds(cols, tw, width)
    return [Tile(r, c, th, tw, (rc[0], cc[0], rc[1], cc[1]), (i, j))
            for i, (r, rc) in enumerate(zip(rows, row_cores))
            for j, (c, cc) in enumerate(zip(cols, col_cores))]


# --------------------------------------------------------------------------- the stretch
@dataclass(frozen=True)
class Stretch:
    """Per-band linear map of ``low[b]..high[b]`` onto 0..255 (identity for uint8 data)."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    def apply(self, data: np.ndarray) -> np.ndarray:
        """``data``: bands x H x W of any dtype -> uint8, clipped."""
        out = np.empty(data.shape, np.uint8)
        for b, band in enumerate(data):
            lo, hi = self.low[b], self.high[b]
            scaled = (band.astype(np.float32) - lo) / max(hi - lo, 1e-12)
            out[b] = (np.clip(np.nan_to_num(scaled), 0, 1) * 255 + 0.5).astype(np.uint8)
        return out


def scene_stretch(src, bands: Sequence[int], low: float = 2.0, high: float = 98.0,
                  overview_side: int = OVERVIEW_SIDE) -> Stretch | None:
    """Percentiles per band from one decimated read of the whole scene (long side at most
    ``overview_side``; exact for scenes no larger). ``None`` for uint8 data (used as is).
    Nodata pixels (the first band's) are left out, as :func:`rs_helpers.geo.rasters.read_image` does."""
    if np.dtype(src.dtypes[bands[0] - 1]) == np.uint8:
        return None
    scale = min(1.0, overview_side / max(src.height, src.width))
    shape = (len(bands), max(1, round(src.height * scale)), max(1, round(src.width * scale)))
    data = read_pixels(src, src.name, list(bands), out_shape=shape)
    valid = data[0] != src.nodata if src.nodata is not None else None
    lows, highs = [], []
    for band in data:
        values = band[valid] if valid is not None else band.ravel()
        if values.dtype.kind == "f":
            values = values[np.isfinite(values)]
        lo, hi = np.percentile(values, [low, high]) if values.size else (0.0, 1.0)
        lows.append(float(lo))
        highs.append(float(hi if hi > lo else lo + 1))
    return Stretch(tuple(lows), tuple(highs))


# --------------------------------------------------------------------------- the reader
class SceneReader:
    """An open raster that hands out uint8 RGB tiles. Use as a context manager.

    ``reader.height``, ``.width``, ``.crs``, ``.transform`` (``None`` when not georeferenced),
    ``.bands``, ``.stretch`` (scene-wide, see :func:`scene_stretch`); ``reader.read(tile)``.
    """

    def __init__(self, path: str | Path, bands: Sequence[int] | None = None,
                 overview_side: int = OVERVIEW_SIDE, stretch: Stretch | None = None):
        self.path = str(path)
        self.src = _open(path)
        try:
            src = self.src
            plan = plan_read(src, path, bands, stacklevel=2)  # size, bands, pixel type: header only
            self.bands = plan.bands
            self.lut = palette_lut(src, plan.bands[0], plan.dtype) if plan.palette else None
            self.stretch = stretch if stretch is not None or self.lut is not None else \
                scene_stretch(src, self.bands, overview_side=overview_side)
        except Exception:
            self.src.close()
            raise

    height = property(lambda self: self.src.height)
    width = property(lambda self: self.src.width)
    crs = property(lambda self: self.src.crs)
    nodata = property(lambda self: self.src.nodata)

    @property
    def transform(self):
        """The affine transform, or ``None`` for a raster without georeferencing."""
        return self.src.transform if self.src.crs is not None else None

    def read_raw(self, tile: Tile) -> np.ndarray:
        """The chosen bands of ``tile`` as stored (bands x H x W)."""
        return read_pixels(self.src, self.path, list(self.bands), window=tile.window)

    def to_rgb(self, data: np.ndarray) -> np.ndarray:
        """Raw bands x H x W -> uint8 H x W x 3 with the scene-wide stretch."""
        if self.lut is not None:
            return self.lut[data[0]]
        if self.stretch is not None:
            data = self.stretch.apply(data)
        elif data.dtype != np.uint8:
            data = data.astype(np.uint8)
        if data.shape[0] == 1:
            data = np.repeat(data, 3, axis=0)
        return np.ascontiguousarray(np.moveaxis(data, 0, -1))

    def read(self, tile: Tile) -> np.ndarray:
        """``tile`` as uint8 H x W x 3."""
        return self.to_rgb(self.read_raw(tile))

    def nodata_mask(self, raw: np.ndarray) -> np.ndarray | None:
        """True where the first chosen band equals the raster's nodata value (None without one)."""
        return None if self.nodata is None else raw[0] == self.nodata

    def overview(self, max_side: int = 1024) -> np.ndarray:
        """The whole scene decimated to a long side of ``max_side``, as uint8 RGB (for plots)."""
        scale = min(1.0, max_side / max(self.height, self.width))
        shape = (len(self.bands), max(1, round(self.height * scale)), max(1, round(self.width * scale)))
        return self.to_rgb(read_pixels(self.src, self.path, list(self.bands), out_shape=shape))

    def close(self) -> None:
        self.src.close()

    def __enter__(self) -> "SceneReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def needs_tiling(path: str | Path, tile: int | None = None, max_untiled: int = DEFAULT_TILE) -> bool:
    """True when ``tile`` is given or the raster's long side exceeds ``max_untiled`` pixels
    (checked from the header, without reading pixels; any scene shape, 1 x N included)."""
    if tile:
        return True
    with _open(path) as src:
        return max(src.height, src.width) > max_untiled

