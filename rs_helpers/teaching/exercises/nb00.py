"""Exercises for notebook 00 (setup and data), as function problems checked on hidden inputs
(:mod:`rs_helpers.teaching.exercises.function_problems`):

1. ``class_fraction(labels, class_index)``: the share of a ground truth's *labelled* pixels (255 left
   out) that belong to one class;
2. ``stretch(band)``: the 2-98 percentile stretch of a 16-bit (or float) band to uint8, without the
   package's ``stretch_to_uint8`` (the reference).
"""
from __future__ import annotations


import numpy as np

from rs_helpers.teaching.exercises import Incorrect
from rs_helpers.teaching.exercises.array_problems import ArrayFunctionExercise

IGNORE = 255


# --------------------------------------------------------------------------- 1: class fraction
def _labels(rng, shape, n_classes, ignored=0.0) -> np.ndarray:
    labels = rng.integers(0, n_classes, shape).astype(np.uint8)
    labels[rng.random(shape) < ignored] = IGNORE
    return labels


class ClassFraction(ArrayFunctionExercise):
    name = "q1"
    title = "How much of the scene is one class?"
    function_name = "class_fraction"
    tolerance = 1e-6
    task = ("A ground truth holds class indices 0..K-1, and **255 for unlabelled pixels**. Write "
            "`class_fraction(labels, class_index)` returning the **fraction** (a number from 0 to 1) of the "
            "*labelled* pixels of `labels` (a 2-D uint8 array) that equal `class_index`: unlabelled pixels count "
            "neither above nor below the fraction line. Try it on the `vegas_roads` sample's road class (the setup "
            "cell loads it), then set `answer = class_fraction`: the check calls your function on label maps of "
            "its own, some with unlabelled pixels and one where the class does not occur.")
    setup = '''import numpy as np

from rs_helpers.samples import get_sample

vegas = get_sample("vegas_roads")
labels = vegas.load_labels()
road = vegas.class_names.index("road")
print(vegas.class_names, labels.shape, "values:", np.unique(labels))'''
    hint_text = ("A comparison such as `labels == class_index` gives a boolean array, and the mean of a boolean "
                 "array is the share of True values. The unlabelled pixels must leave the count first.")
    hints = (hint_text, "Select the labelled pixels with a boolean index (`labels != 255`): that gives a 1-D array "
                        "of the labelled values only, and the share of the class is taken over that array.")
    solution_code = '''# class_fraction(labels, class_index) -> a fraction; then answer = class_fraction
def class_fraction(labels, class_index):
    labelled = labels[labels != 255]
    return float((labelled == class_index).mean())

print(f"road: {class_fraction(labels, road):.3f} of the labelled pixels")
answer = class_fraction'''
    confirmation = "A class's share of the labelled pixels is the first number to look at in a new data set."

    def cases(self):
        rng = np.random.default_rng(100)
        gt = _labels(rng, (30, 40), 4, ignored=0.2)
        gt[:10, :] = 2  # class 2 a clear share
        absent = np.where(_labels(rng, (12, 12), 2, 0.1) == 1, 3, 0).astype(np.uint8)  # classes 0 and 3 only
        absent[0, :] = IGNORE
        only = np.full((8, 9), 1, np.uint8)
        only[:, :3] = IGNORE  # everything labelled is class 1
        return [(gt, 2), (gt, 0), (_labels(rng, (16, 20), 3), 1), (absent, 1), (only, 1)]

    def expected(self, labels, class_index):
        return float((labels[labels != IGNORE] == class_index).mean())

    def wrong_versions(self, labels, index):
        want = self.expected(labels, index)
        return [(lambda: 100 * want, "that is a percentage: return the fraction, between 0 and 1."),
                (lambda: want * (labels != IGNORE).sum(), "that is the number of pixels of the class: divide by "
                                                          "the number of labelled pixels."),
                (lambda: (labels == index).mean(), "you divided by every pixel, unlabelled ones (255) included: "
                                                   "leave those out of the count."),
                (lambda: 1 - want, "that is the share of the *other* labelled pixels: count the pixels equal to "
                                   "`class_index`.")]

    def fallback(self, array, want, args):
        return f"want {float(want):.4f}, the share of the labelled pixels that equal the class index."


# --------------------------------------------------------------------------- 2: the stretch
def _reference_stretch(band: np.ndarray) -> np.ndarray:
    from rs_helpers.geo.rasters import stretch_to_uint8

    return stretch_to_uint8(band)


def _near(a: np.ndarray, b: np.ndarray) -> bool:
    """Within 1 of each other everywhere (rounding or truncating both pass)."""
    with np.errstate(invalid="ignore"):
        return a.shape == b.shape and bool((np.abs(a.astype(np.float64) - b.astype(np.float64)) <= 1).all())


class Stretch16To8(ArrayFunctionExercise):
    name = "q2"
    title = "16-bit to 8-bit with a 2-98 percentile stretch"
    function_name = "stretch"
    forbidden = ("rs_helpers.geo.rasters:stretch_to_uint8", f"{__name__}:_reference_stretch")
    task = ("`raw` holds band 1 of the `atlanta_buildings` GeoTIFF as stored: **uint16**, with values far above "
            "255. Write `stretch(band)` turning such a band (any 2-D array of integers or floats) into **uint8** "
            "the way `read_image` does: the 2nd percentile of the band maps to 0 and the 98th to 255, linearly; "
            "what falls outside is clipped; the result is rounded. A flat band (both percentiles equal) maps to 0. "
            "Write the stretch with NumPy, **without** the package's `stretch_to_uint8` (the check refuses it). "
            "Then set `answer = stretch`: the check calls your function on bands of its own, with outliers, a "
            "float band and a flat one.")
    setup = '''import numpy as np
import rasterio

from rs_helpers.samples import get_sample

with rasterio.open(get_sample("atlanta_buildings").image) as src:
    raw = src.read(1)
print(raw.dtype, raw.shape, "min", raw.min(), "max", raw.max())'''
    hint_text = ("`np.percentile` gives both percentiles in one call. Work in float: the linear map that sends the "
                 "low percentile to 0 and the high one to 1, then clip, then scale to 255, and cast last.")
    hints = (hint_text, "`(band - low) / (high - low)` is 0 at the low percentile and 1 at the high one; `np.clip` "
                        "to 0..1 before multiplying by 255, and round before `.astype(np.uint8)` (a cast truncates "
                        "and wraps around). When `high == low`, divide by 1 instead.")
    solution_code = '''# stretch(band) -> uint8 band; then answer = stretch
def stretch(band):
    low, high = np.percentile(band, [2, 98])
    if high <= low:  # a flat band: no division by zero
        high = low + 1
    scaled = (band.astype(np.float64) - low) / (high - low)
    return np.round(np.clip(scaled, 0, 1) * 255).astype(np.uint8)

small = stretch(raw)
print(small.dtype, "min", small.min(), "max", small.max())
answer = stretch'''
    confirmation = "This is what `read_image` does to every 16-bit band."

    def cases(self):
        rng = np.random.default_rng(200)
        outliers = rng.integers(1000, 3000, size=(40, 50)).astype(np.uint16)
        outliers[0, :5] = 60000  # a few extreme pixels
        outliers[1, :5] = 10
        wide = rng.normal(9000, 2500, size=(64, 48)).clip(0, 65535).astype(np.uint16)
        reflectance = rng.random((30, 30)).astype(np.float32) ** 2 * 0.4  # a float band, 0..0.4
        return [(outliers,), (wide,), (reflectance,), (np.full((10, 12), 700, np.uint16),)]

    def expected(self, band):
        return _reference_stretch(band)

    def same(self, a, b):
        return _near(np.asarray(a), np.asarray(b))

    def read(self, got, want, args, where):
        array = super().read(got, want, args, where)
        if array.dtype != np.uint8:
            if array.dtype.kind == "f" and np.nanmax(array) <= 1.0 and want.max() > 1 and _near(array * 255, want):
                raise Incorrect(f"{where} the values are scaled to 0..1: multiply by 255 and cast to uint8.")
            if _near(array, want):
                raise Incorrect(f"{where}: right values, but {array.dtype}: cast to uint8 (`.astype(np.uint8)`).")
            raise Incorrect(f"{where} the result is {array.dtype}; want uint8.")
        return array

    def wrong_versions(self, band):
        integer = band.dtype.kind in "iu"
        lo, hi = float(band.min()), float(band.max())
        return [(lambda: band.astype(np.uint8) if integer else None,
                 "`.astype(np.uint8)` does not rescale: it keeps the lowest 8 bits, so values wrap around. Stretch "
                 "to 0..255 first."),
                (lambda: (band // 256).astype(np.uint8) if integer else None,
                 "dividing by 256 maps the whole 16-bit range 0..65535 onto 0..255; the data use a small part of it, "
                 "so the image comes out nearly black. Stretch the 2-98 percentile range."),
                (lambda: np.round((band.astype(np.float64) - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8),
                 "that is a min-max stretch: a few extreme pixels then squash the contrast. Map the 2nd and 98th "
                 "percentiles to 0 and 255 instead.")]

    def fallback(self, array, want, args):
        (band,) = args
        low, high = np.percentile(band, [2, 98])
        inside = (band >= low) & (band <= high)
        if inside.any() and _near(array[inside], want[inside]):
            return ("right inside the 2-98 percentile range, wrong outside it: clip to 0..1 (or 0..255) before "
                    "casting, or the values outside wrap around.")
        if high == low:
            return "a flat band (both percentiles equal) must come out as 0 everywhere, with no division by zero."
        return ("not the 2-98 percentile stretch: the low percentile should give 0, the high one 255, linearly in "
                "between, clipped outside.")


q1 = ClassFraction()
q2 = Stretch16To8()
EXERCISES = [q1, q2]
