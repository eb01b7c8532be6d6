"""Exercises for notebook 07 (large scenes): the tile windows of a scene, and how many tiles a
Sentinel-2 granule needs.

The tile grid is :func:`rs_helpers.geo.tiling.tile_grid`'s: along each axis tiles start every
``tile - overlap`` pixels from 0, and the last tile is shifted back so that it ends exactly at
the scene's edge (every tile has the full size; a scene no longer than a tile is one tile).
"""
from __future__ import annotations

import math

import numpy as np

from rs_helpers.teaching.exercises import Exercise, Incorrect, as_number


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    from rs_helpers.geo.tiling import tile_starts

    return tile_starts(length, tile, overlap)


class TileOffsets(Exercise):
    name = "q1"
    title = "Tile windows of a scene"
    task = ("A scene is **1000 pixels wide and 700 high**. Cut it into **256 x 256** tiles that share **32 pixels** "
            "with their neighbours: along each axis a tile starts every 256 - 32 = 224 pixels from 0, and the last "
            "tile is **shifted back** so that it ends exactly at the scene's edge (no tile sticks out, none is "
            "smaller). Give every tile's window offset as `(row_off, col_off)` (row = y, col = x). Any order is "
            "accepted.")
    setup = '''width, height, tile, overlap = 1000, 700, 256, 32'''
    hint_text = ("Do one axis at a time: starts `0, 224, 448, ...` while the tile still fits, then one more tile "
                 "starting at `length - tile` if the scene is not covered yet. Pair every row start with every "
                 "column start.")
    solution_code = '''def starts(length):
    step = tile - overlap
    out = list(range(0, length - tile + 1, step))
    if out[-1] + tile < length:
        out.append(length - tile)  # the last tile, shifted back inside the scene
    return out

answer = [(r, c) for r in starts(height) for c in starts(width)]
print(len(answer), "tiles:", answer)'''

    def __init__(self, width: int = 1000, height: int = 700, tile: int = 256, overlap: int = 32):
        self.width, self.height, self.tile, self.overlap = width, height, tile, overlap

    def expected(self) -> list[tuple[int, int]]:
        from rs_helpers.geo.tiling import tile_grid

        return [(t.row_off, t.col_off) for t in tile_grid(self.height, self.width, self.tile, self.overlap)]

    def _read(self, answer) -> np.ndarray:
        rows = []
        try:
            items = list(answer)
        except TypeError:
            raise Incorrect("want a list of (row_off, col_off) pairs.") from None
        for item in items:
            if hasattr(item, "row_off") and hasattr(item, "col_off"):  # Tile, rasterio Window
                rows.append((item.row_off, item.col_off))
                continue
            values = np.asarray(item).ravel()
            if values.size not in (2, 4) or values.dtype.kind not in "iuf":
                raise Incorrect(f"cannot read {item!r} as one window: want (row_off, col_off).")
            rows.append(tuple(values[:2]))
        return np.array(rows, float).reshape(-1, 2)

    def _axis_message(self, got: list[float], length: int, axis: str) -> str | None:
        tile, overlap = self.tile, self.overlap
        want = _starts(length, tile, overlap)
        if got == want:
            return None
        if any(s < 0 for s in got):
            return f"a {axis} offset is negative: tiles start at 0 or later."
        if got and got[-1] + tile > length:
            return (f"the last {axis} tile starts at {got[-1]:g} and ends at {got[-1] + tile:g}, past the scene's "
                    f"{length} pixels: shift it back to start at {length} - {tile} = {length - tile}.")
        if got and got[-1] + tile < length:
            return (f"pixels {got[-1] + tile:g} to {length - 1} along {axis} are in no tile: add a last tile that "
                    f"ends at the scene's edge (start {length - tile}).")
        if len(got) > 1 and got[1] - got[0] == tile:
            return f"the {axis} tiles do not overlap: step by tile - overlap = {tile - overlap}, not by the tile size."
        if len(got) > 1 and got[1] - got[0] == overlap:
            return f"the step is the overlap ({overlap}); step by tile - overlap = {tile - overlap}."
        return f"the {axis} offsets {[int(s) for s in got]} are not {want}."

    def verify(self, answer):
        windows = self._read(answer)
        want = np.array(self.expected(), float)
        if windows.shape == want.shape and {tuple(w) for w in windows} == {tuple(w) for w in want}:
            return f"{len(want)} tiles, as `rs_helpers.geo.tiling.tile_grid(height, width, tile, overlap)` lays them."
        rows, cols = sorted({w[0] for w in windows}), sorted({w[1] for w in windows})
        want_rows, want_cols = _starts(self.height, self.tile, self.overlap), _starts(self.width, self.tile, self.overlap)
        if rows == want_cols and cols == want_rows and rows != want_rows:
            raise Incorrect("rows and columns are swapped: give (row_off, col_off); rows run along the height.")
        for got, length, axis in ((rows, self.height, "row"), (cols, self.width, "column")):
            message = self._axis_message(got, length, axis)
            if message:
                raise Incorrect(message)
        if len(windows) != len(rows) * len(cols) or len({tuple(w) for w in windows}) != len(windows):
            raise Incorrect(f"the right offsets per axis, but pair every row start with every column start: "
                            f"{len(rows)} x {len(cols)} = {len(rows) * len(cols)} tiles, each once.")
        raise Incorrect("not the tile grid.")


class TileCount(Exercise):
    name = "q2"
    title = "Tiles for a Sentinel-2 granule"
    task = ("A Sentinel-2 granule at 10 m is **10980 x 10980** pixels. With the same rule as exercise 1, "
            "**1024 x 1024** tiles and **128 pixels** of overlap, how many tiles does it take?")
    setup = '''side, tile, overlap = 10980, 1024, 128'''
    hint_text = ("Along one axis: one tile at 0, then one more every 896 (= 1024 - 128) pixels until the scene is "
                 "covered: `math.ceil((side - tile) / (tile - overlap)) + 1`. The grid has that many rows and columns.")
    solution_code = '''import math

per_axis = math.ceil((side - tile) / (tile - overlap)) + 1
answer = per_axis ** 2
print(per_axis, "x", per_axis, "=", answer, "tiles")'''

    def __init__(self, width: int = 10980, height: int = 10980, tile: int = 1024, overlap: int = 128):
        self.width, self.height, self.tile, self.overlap = width, height, tile, overlap

    def expected(self) -> int:
        from rs_helpers.geo.tiling import tile_grid

        return len(tile_grid(self.height, self.width, self.tile, self.overlap))

    def verify(self, answer):
        value = as_number(answer, "one number of tiles")
        want = self.expected()
        if value == want:
            return f"{want} tiles; each is one SAM + CLIP run, so a granule costs {want} times one tile."
        w, h, t, o = self.width, self.height, self.tile, self.overlap
        ny, nx = len(_starts(h, t, o)), len(_starts(w, t, o))
        candidates = [
            (nx if w == h else None, f"that is the count along one axis; the grid has {ny} rows and {nx} columns."),
            (nx + ny, "multiply the rows by the columns, do not add them."),
            (math.ceil(w / t) * math.ceil(h / t), "that ignores the overlap: neighbours share 128 pixels, so a new "
                                                  "tile starts every 896 pixels, not every 1024."),
            ((w // t) * (h // t), "that ignores the overlap and leaves the last strip uncovered."),
            (((w - t) // (t - o) + 1) * ((h - t) // (t - o) + 1), "rounding down leaves a strip at the far edge "
                                                                  "uncovered: add the shifted-back last tile (round up)."),
            (w * h / t ** 2, "tiles come in whole numbers, and the overlap matters: count starts along each axis."),
        ]
        for candidate, message in candidates:
            if candidate is not None and abs(value - candidate) < 1e-9:
                raise Incorrect(message)
        raise Incorrect("not the number of tiles: count the tile starts along each axis and multiply.")


q1 = TileOffsets()
q2 = TileCount()
EXERCISES = [q1, q2]
