"""Crop windows for benchmarks evaluated on patches of large tiles (Potsdam, Vaihingen, iSAID,
UAVid, Inria), reproducing the mmseg / SegEarth-OV converters so that our crops are theirs.

Two schemes exist in those converters:

- ``"clip"`` (ISPRS Potsdam / Vaihingen, Inria: ``clip_big_image``): windows start at multiples
  of the *crop size*; the number of rows/columns comes from the stride, and windows that would
  cross the border are shifted back inside. With size 512 and the nominal stride 256 this gives
  non-overlapping 512 crops plus one border-aligned crop per row/column (the stride only sets
  how many duplicates are generated; duplicates collapse to one file). Potsdam: 144 crops per
  6000 x 6000 tile, 2016 for the 14 validation tiles, as the mmseg docs state.
- ``"slide"`` (iSAID, UAVid: ``slide_crop_*``): windows every ``size - overlap`` pixels, the last
  one shifted back inside; a tile smaller than the crop is padded (image 0, labels 255).

``"grid"`` is a plain strided grid (last window shifted inside), for your own tiling.
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np


def _pair(value) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _clip_starts(length: int, size: int, stride: int) -> list[int]:
    n = max(math.ceil((length - size) / stride), 0)
    if n * stride + size < length:
        n += 1
    starts = []
    for i in range(n + 1):
        start = i * size
        if start + size > length:
            start = length - size
        starts.append(max(start, 0))
    return starts


def _slide_starts(length: int, size: int, step: int) -> list[int]:
    starts = []
    for start in range(0, length, step):
        if start + size > length:
            start = length - size
        starts.append(max(start, 0))
    return starts


def crop_boxes(height: int, width: int, size, stride, scheme: str = "grid") -> list[tuple[int, int, int, int]]:
    """Distinct crop windows (x0, y0, x1, y1) over a ``height`` x ``width`` tile.

    ``size`` and ``stride`` are an int or (height, width). Order: ``clip`` row by row, ``slide``
    column by column (as the converters write them). For ``slide`` the tile counts as at least
    one crop large (the converters pad), so windows may extend past the tile.
    """
    (sh, sw), (th, tw) = _pair(size), _pair(stride)
    if min(sh, sw, th, tw) <= 0:
        raise ValueError("crop size and stride must be positive")
    boxes: list[tuple[int, int, int, int]] = []
    if scheme == "clip":
        for y in _clip_starts(height, sh, th):
            for x in _clip_starts(width, sw, tw):
                boxes.append((x, y, min(x + sw, width), min(y + sh, height)))
    elif scheme in ("slide", "grid"):
        if scheme == "slide":
            height, width = max(height, sh), max(width, sw)
        xs, ys = _slide_starts(width, sw, tw), _slide_starts(height, sh, th)
        outer, inner = (xs, ys) if scheme == "slide" else (ys, xs)
        for a in outer:
            for b in inner:
                x, y = (a, b) if scheme == "slide" else (b, a)
                boxes.append((x, y, min(x + sw, width), min(y + sh, height)))
    else:
        raise ValueError(f"unknown crop scheme {scheme!r}; use clip, slide or grid")
    return list(dict.fromkeys(boxes))


def crops(array: np.ndarray, size, stride, scheme: str = "grid", pad_value=0
          ) -> Iterator[tuple[tuple[int, int, int, int], np.ndarray]]:
    """Yield ``(box, crop)`` for an H x W (x C) array; ``slide`` crops are padded to full size."""
    height, width = array.shape[:2]
    sh, sw = _pair(size)
    for box in crop_boxes(height, width, size, stride, scheme):
        x0, y0, x1, y1 = box
        crop = array[y0:y1, x0:x1]
        if scheme == "slide" and crop.shape[:2] != (sh, sw):
            pad = [(0, sh - crop.shape[0]), (0, sw - crop.shape[1])] + [(0, 0)] * (array.ndim - 2)
            crop = np.pad(crop, pad, constant_values=pad_value)
        yield box, crop
