"""Label files to class indices: the per-dataset codecs (value tables, RGB colours, thresholds).

Each benchmark stores its ground truth its own way (class indices, 0/255 masks, RGB colour
maps); a :class:`LabelCodec` turns the raw values into the indices its class list counts, with
255 for pixels that are ignored."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from rs_helpers.errors import BadInputError

IGNORE = 255  # label value of pixels that no metric counts


@dataclass(frozen=True)
class LabelCodec:
    """How the raw values of a label file become class indices.

    ``values``: raw index -> class (unlisted values are ignored); ``colours``: RGB -> class
    for colour-coded label images (unlisted colours -> ``unknown``). ``threshold`` makes a
    binary label: raw >= threshold is foreground; ``"auto"`` reads 0/255 masks (threshold 128)
    and 0/1 masks (threshold 1) alike, telling them apart by the maximum value.
    """

    values: Mapping[int, int] | None = None
    colours: Mapping[tuple, int] | None = None
    threshold: int | str | None = None
    unknown: int = IGNORE

    def decode(self, raw: np.ndarray, colormap: dict | None = None) -> np.ndarray:
        raw = np.asarray(raw)
        if raw.ndim == 2 and colormap and self.values is None and self.colours:
            lut = np.zeros((256, 3), np.uint8)
            for idx, rgba in colormap.items():
                lut[idx] = rgba[:3]
            raw = lut[raw]
        if raw.ndim == 3:
            if self.colours and self.threshold is None:
                return self._decode_colours(raw)
            if self.threshold is None and not np.array_equal(raw[..., 0], raw[..., -1]):
                raise BadInputError("this label image is in colour, but the dataset expects class-index labels")
            raw = raw[..., 0] if self.threshold is None else raw.mean(axis=2)
        if self.threshold is not None:
            thr = self.threshold
            if thr == "auto":
                thr = 1 if raw.size and raw.max() <= 1 else 128
            return (raw >= thr).astype(np.uint8)
        if self.values is None:
            raise BadInputError("this label image holds class indices, but the dataset expects colour labels")
        raw = raw.astype(np.int64)
        if raw.size and raw.min() < 0:
            raise BadInputError("negative values in a label image")
        lut = np.full(max(256, int(raw.max(initial=0)) + 1), IGNORE, np.uint8)
        for value, index in self.values.items():
            lut[value] = index
        return lut[raw]

    def _decode_colours(self, rgb: np.ndarray) -> np.ndarray:
        rgb = rgb[..., :3].astype(np.int32)
        key = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        out = np.full(key.shape, self.unknown, np.uint8)
        for (r, g, b), index in self.colours.items():
            out[key == ((r << 16) | (g << 8) | b)] = index
        return out


BINARY_PALETTE = [(0, 0, 0), (255, 255, 255)]


def binary_codec(cvt: bool) -> LabelCodec:
    """SegEarth-OV's ``*_cvt`` label folders hold 0/1; the published masks 0/255 (or 0/1)."""
    return LabelCodec(threshold=1 if cvt else "auto")


def identity_values(n: int) -> dict[int, int]:
    return {i: i for i in range(n)}
