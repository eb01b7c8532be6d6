"""Exercises for notebook 00 (setup and data): class fractions of a ground truth, and the
2-98 percentile stretch that turns 16-bit bands into the 8-bit RGB the models need."""
from __future__ import annotations

import numpy as np

from rs_helpers.teaching.exercises import Exercise, Incorrect, as_array, as_number, close

IGNORE = 255


class RoadFraction(Exercise):
    name = "q1"
    title = "How much of the scene is road?"
    task = ("Load the `vegas_roads` sample and compute the **fraction** (a number from 0 to 1) of its "
            "labelled ground-truth pixels that are road. Find the road index with "
            "`sample.class_names.index(\"road\")`; leave unlabelled pixels (255) out of the count.")
    hint_text = ("`sample.load()` returns `(image, labels)`. `labels == road` is a boolean array and the mean "
                 "of a boolean array is the fraction of True values; keep only `labels != 255` first.")
    solution_code = '''from rs_helpers.samples import get_sample

vegas = get_sample("vegas_roads")
_, labels = vegas.load()
road = vegas.class_names.index("road")
labelled = labels[labels != 255]
answer = float((labelled == road).mean())'''

    def __init__(self, labels: np.ndarray | None = None, road: int = 1):
        self._labels, self.road = labels, road

    def labels(self) -> np.ndarray:
        if self._labels is None:
            from rs_helpers.samples import get_sample

            sample = get_sample("vegas_roads")
            self._labels = sample.load_labels()
            self.road = sample.class_names.index("road")
        return self._labels

    def expected(self) -> float:
        labels = self.labels()
        labelled = labels[labels != IGNORE]
        return float((labelled == self.road).mean())

    def verify(self, answer):
        value = as_number(answer, "one number, the fraction of road pixels")
        labels = self.labels()
        want = self.expected()
        if close(value, want, 1e-4):
            return f"{100 * want:.1f}% of the labelled pixels are road."
        n_labelled = int((labels != IGNORE).sum())
        if close(value, 100 * want, 1e-2):
            raise Incorrect("that is a percentage: give the fraction, between 0 and 1.")
        if close(value, 1 - want, 1e-4):
            raise Incorrect("that is the fraction of the *other* pixels (background): count the road class.")
        if close(value, want * n_labelled, 0.5):
            raise Incorrect("that is the number of road pixels: divide by the number of labelled pixels.")
        if close(value, float((labels == self.road).sum() / labels.size), 1e-4):
            raise Incorrect("you divided by every pixel, unlabelled ones (255) included: leave those out.")
        if close(value, 0.0, 1e-9):
            raise Incorrect("0: no road at all? Check the class index: `class_names.index(\"road\")`.")
        raise Incorrect("not the fraction of road pixels: count the pixels equal to the road index and "
                        "divide by the number of labelled pixels.")


class Stretch16To8(Exercise):
    name = "q2"
    title = "16-bit to 8-bit with a 2-98 percentile stretch"
    task = ("`raw` holds band 1 of the `atlanta_buildings` GeoTIFF as stored: **uint16**, with values far "
            "above 255. Turn it into **uint8** the way `read_image` does: map the 2nd percentile to 0 and "
            "the 98th to 255 linearly, clip what falls outside, round. Use NumPy (`np.percentile`, "
            "`np.clip`), not `read_image`.")
    setup = '''import numpy as np
import rasterio

from rs_helpers.samples import get_sample

with rasterio.open(get_sample("atlanta_buildings").image) as src:
    raw = src.read(1)
print(raw.dtype, raw.shape, "min", raw.min(), "max", raw.max())'''
    hint_text = ("`low, high = np.percentile(raw, [2, 98])`; then `(raw - low) / (high - low)` is 0 at low and 1 at "
                 "high. Compute it in float, clip to 0..1, multiply by 255, round, and only then cast to uint8.")
    solution_code = '''low, high = np.percentile(raw, [2, 98])
scaled = (raw.astype(np.float64) - low) / (high - low)
answer = np.round(np.clip(scaled, 0, 1) * 255).astype(np.uint8)'''

    def __init__(self, raw: np.ndarray | None = None):
        self._raw = raw

    def raw(self) -> np.ndarray:
        if self._raw is None:
            import rasterio

            from rs_helpers.samples import get_sample

            with rasterio.open(get_sample("atlanta_buildings").image) as src:
                self._raw = src.read(1)
        return self._raw

    def expected(self) -> np.ndarray:
        from rs_helpers.geo.rasters import stretch_to_uint8

        return stretch_to_uint8(self.raw())

    @staticmethod
    def _matches(a: np.ndarray, b: np.ndarray, share: float = 0.99) -> bool:
        return bool((np.abs(a.astype(np.float64) - b.astype(np.float64)) <= 1).mean() >= share)

    def verify(self, answer):
        raw = self.raw()
        array = as_array(answer, f"a uint8 array of shape {raw.shape}")
        if array.shape != raw.shape:
            raise Incorrect(f"the answer has shape {array.shape}; want the band's shape {raw.shape}.")
        want = self.expected()
        low, high = np.percentile(raw, [2, 98])
        if array.dtype != np.uint8:
            if array.dtype.kind == "f" and np.nanmax(array) <= 1.0 and self._matches(array * 255, want):
                raise Incorrect("the values are scaled to 0..1: multiply by 255 and cast to uint8.")
            if array.dtype.kind in "iuf" and self._matches(array, want):
                raise Incorrect(f"right values, but of type {array.dtype}: cast to uint8 (`.astype(np.uint8)`).")
            raise Incorrect(f"want a uint8 array, got {array.dtype}.")
        if np.array_equal(array, raw.astype(np.uint8)):
            raise Incorrect("`raw.astype(np.uint8)` does not rescale: it keeps the lowest 8 bits, so values "
                            "wrap around. Stretch to 0..255 first.")
        if self._matches(array, (raw // 256).astype(np.uint8)):
            raise Incorrect("dividing by 256 maps the whole 16-bit range 0..65535 onto 0..255; the data use a "
                            "small part of it, so the image comes out nearly black. Stretch the 2-98 percentile range.")
        lo, hi = float(raw.min()), float(raw.max())
        minmax = np.round((raw.astype(np.float64) - lo) / max(hi - lo, 1) * 255).astype(np.uint8)
        if self._matches(array, minmax) and not self._matches(minmax, want):
            raise Incorrect("that is a min-max stretch: a few extreme pixels then squash the contrast. "
                            "Map the 2nd and 98th percentiles to 0 and 255 instead.")
        if self._matches(array, want):
            return "this is what `read_image` does to every 16-bit band."
        inside = (raw >= low) & (raw <= high)
        if inside.any() and self._matches(array[inside], want[inside]):
            raise Incorrect("right inside the 2-98 percentile range, wrong outside it: clip to 0..1 (or 0..255) "
                            "before casting, or the values outside wrap around.")
        raise Incorrect("not the 2-98 percentile stretch: `(raw - low) / (high - low)`, clipped to 0..1, "
                        "times 255, rounded, as uint8.")


q1 = RoadFraction()
q2 = Stretch16To8()
EXERCISES = [q1, q2]
