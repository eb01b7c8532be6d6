"""Exercises for notebook 09 (large scenes): the tile windows of a scene, and how many tiles a
scene needs.

The tile grid is :func:`rs_helpers.geo.tiling.tile_grid`'s: along each axis tiles start every
``tile - overlap`` pixels from 0, and the last tile is shifted back so that it ends exactly at
the scene's edge (every tile has the full size; a scene no longer than a tile is one tile).
Each answer is a function, run on hidden scenes (:mod:`~rs_helpers.teaching.exercises.function_problems`).
"""
from __future__ import annotations

import math

import numpy as np

from rs_helpers.teaching.exercises import Incorrect, as_number
from rs_helpers.teaching.exercises.function_problems import FunctionExercise

_TILING = ("rs_helpers.geo.tiling:tile_grid", "rs_helpers.geo.tiling:tile_starts")


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    from rs_helpers.geo.tiling import tile_starts

    return tile_starts(length, tile, overlap)


class TileOffsets(FunctionExercise):
    name = "q1"
    title = "Tile windows of a scene"
    function_name = "tile_offsets"
    forbidden = _TILING
    task = ("Cut a scene `height` pixels high and `width` wide into `tile` x `tile` tiles that share `overlap` "
            "pixels with their neighbours: along each axis a tile starts every `tile - overlap` pixels from 0, and "
            "the last tile is **shifted back** so that it ends exactly at the scene's edge (no tile sticks out, none "
            "is smaller); along an axis no longer than a tile there is one tile, at 0. Write "
            "`tile_offsets(height, width, tile, overlap)` returning every tile's window offset as `(row_off, "
            "col_off)` (row = y, col = x), without `tile_grid` or `tile_starts`. Any order is accepted. The check "
            "calls it on scenes of its own.")
    setup = '''height, width, tile, overlap = 700, 1000, 256, 32'''
    hints = ("Do one axis at a time: list the start offsets along the height, then along the width; every pair of "
             "a row start and a column start is one tile.",
             "Along an axis: starts `0, step, 2 * step, ...` (step = tile - overlap) while the tile still fits, then "
             "one more start at `length - tile` if the last tile does not reach the edge yet. Mind the axis that is "
             "shorter than a tile.")
    hint_text = hints[0]
    solution_code = '''def tile_offsets(height, width, tile, overlap):
    """(row_off, col_off) of every tile of a height x width scene."""
    def starts(length):
        if length <= tile:
            return [0]
        out = list(range(0, length - tile + 1, tile - overlap))
        if out[-1] + tile < length:
            out.append(length - tile)  # the last tile, shifted back inside the scene
        return out

    return [(r, c) for r in starts(height) for c in starts(width)]

offsets = tile_offsets(height, width, tile, overlap)
print(len(offsets), "tiles:", offsets)
answer = tile_offsets'''

    def cases(self):
        return [(500, 1200, 256, 32), (200, 900, 256, 64), (736, 736, 256, 16), (1000, 512, 256, 0),
                (256, 256, 256, 32)]

    def expected(self, height, width, tile, overlap):
        from rs_helpers.geo.tiling import tile_grid

        return [(t.row_off, t.col_off) for t in tile_grid(height, width, tile, overlap)]

    @staticmethod
    def _read(answer) -> np.ndarray:
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

    @staticmethod
    def _axis_message(got: list[float], length: int, tile: int, overlap: int, axis: str) -> str | None:
        want = _starts(length, tile, overlap)
        if got == want:
            return None
        if any(s < 0 for s in got):
            return f"a {axis} offset is negative: tiles start at 0 or later."
        if length <= tile:
            return f"the scene is only {length} px along the {axis}s, no more than a tile: one tile, at 0."
        if got and got[-1] + tile > length:
            return (f"the last {axis} tile starts at {got[-1]:g} and ends at {got[-1] + tile:g}, past the scene's "
                    f"{length} pixels: shift it back to start at {length} - {tile} = {length - tile}.")
        if got and got[-1] + tile < length:
            return (f"pixels {got[-1] + tile:g} to {length - 1} along the {axis}s are in no tile: add a last tile "
                    f"that ends at the scene's edge (start {length - tile}).")
        if len(got) > 1 and got[1] - got[0] == tile and overlap:
            return f"the {axis} tiles do not overlap: step by tile - overlap = {tile - overlap}, not by the tile size."
        if len(got) > 1 and got[1] - got[0] == overlap:
            return f"the step is the overlap ({overlap}); step by tile - overlap = {tile - overlap}."
        return f"the {axis} offsets {[int(s) for s in got]} are not {want}."

    def compare(self, got, want, args):
        height, width, tile, overlap = args

        def wrong(message):
            raise Incorrect(f"for {self.describe(args)}: {message}")

        try:
            windows = self._read(got)
        except Incorrect as error:
            wrong(str(error))
        want = np.array(want, float)
        if windows.shape == want.shape and {tuple(w) for w in windows} == {tuple(w) for w in want}:
            return
        rows, cols = sorted({w[0] for w in windows}), sorted({w[1] for w in windows})
        want_rows, want_cols = _starts(height, tile, overlap), _starts(width, tile, overlap)
        if rows == want_cols and cols == want_rows and rows != want_rows:
            wrong("rows and columns are swapped: give (row_off, col_off); rows run along the height.")
        messages = [m for m in (self._axis_message(rows, height, tile, overlap, "row"),
                                self._axis_message(cols, width, tile, overlap, "column")) if m]
        if messages:  # a specific diagnosis on either axis before a plain "the offsets are not ..."
            wrong(next((m for m in messages if " are not " not in m), messages[0]))
        if len(windows) != len(rows) * len(cols) or len({tuple(w) for w in windows}) != len(windows):
            wrong(f"the right offsets per axis, but pair every row start with every column start: {len(rows)} x "
                  f"{len(cols)} = {len(rows) * len(cols)} tiles, each once.")
        wrong("not the tile grid.")


class TileCount(FunctionExercise):
    name = "q2"
    title = "How many tiles?"
    function_name = "tile_count"
    forbidden = _TILING
    task = ("With the same rule as exercise 1, write `tile_count(height, width, tile, overlap)` returning how many "
            "tiles a scene needs, by arithmetic (`math.ceil`), without listing the tiles and without `tile_grid` "
            "or `tile_starts`. A Sentinel-2 granule at 10 m, for example, is 10980 x 10980 pixels; with 1024 x "
            "1024 tiles and 128 pixels of overlap it takes 169 tiles. The check calls your function on scenes of "
            "its own.")
    setup = '''import math

height, width, tile, overlap = 10980, 10980, 1024, 128'''
    hints = ("Count along one axis, then combine the two axes. Along an axis: the first tile, then how many more "
             "steps of `tile - overlap` until the far edge is covered?",
             "After the first tile `length - tile` pixels are left to cover, one step of `tile - overlap` per extra "
             "tile, rounded up (the last tile is shifted back, never dropped). An axis no longer than a tile has "
             "one tile. Multiply rows by columns.")
    hint_text = hints[0]
    solution_code = '''def tile_count(height, width, tile, overlap):
    """The number of tiles of a height x width scene."""
    def per_axis(length):
        return 1 if length <= tile else math.ceil((length - tile) / (tile - overlap)) + 1

    return per_axis(height) * per_axis(width)

print(tile_count(height, width, tile, overlap), "tiles")
answer = tile_count'''

    def cases(self):
        return [(5490, 10980, 1024, 128), (2000, 3000, 512, 0), (900, 400, 1024, 128), (100, 3000, 1024, 128),
                (2816, 1024, 1024, 128),
                (10000, 7000, 600, 100)]

    def expected(self, height, width, tile, overlap):
        from rs_helpers.geo.tiling import tile_grid

        return len(tile_grid(height, width, tile, overlap))

    def compare(self, got, want, args):
        h, w, t, o = args
        try:
            value = as_number(got, "one number of tiles")
        except Incorrect as error:
            raise Incorrect(f"for {self.describe(args)}: {error}") from None
        if value == want:
            return
        ny, nx = len(_starts(h, t, o)), len(_starts(w, t, o))
        plain = (lambda n: max(1, n))  # a scene smaller than a tile is still one tile
        candidates = [
            (nx, f"that is the count along the width alone; the grid has {ny} rows and {nx} columns."),
            (ny, f"that is the count along the height alone; the grid has {ny} rows and {nx} columns."),
            (nx + ny, "multiply the rows by the columns, do not add them."),
            (math.ceil(w / t) * math.ceil(h / t), f"that ignores the overlap: neighbours share {o} pixels, so a new "
                                                  f"tile starts every {t - o} pixels, not every {t}."),
            (plain(w // t) * plain(h // t), "that ignores the overlap and leaves the last strip uncovered."),
            (plain((w - t) // (t - o) + 1) * plain((h - t) // (t - o) + 1),
             "rounding down leaves a strip at the far edge uncovered: add the shifted-back last tile (round up)."),
            ((math.ceil((w - t) / (t - o)) + 1) * (math.ceil((h - t) / (t - o)) + 1),
             "an axis no longer than a tile has one tile (the formula gives fewer there)."),
            (w * h / t ** 2, "tiles come in whole numbers, and the overlap matters: count starts along each axis."),
        ]
        for candidate, message in candidates:
            if abs(value - candidate) < 1e-9 and candidate != want:
                raise Incorrect(f"for {self.describe(args)} it returned {value:g}: {message}")
        raise Incorrect(f"for {self.describe(args)} it returned {value:g}: not the number of tiles; count the tile "
                        "starts along each axis and multiply.")


q1 = TileOffsets()
q2 = TileCount()
EXERCISES = [q1, q2]
