"""Exercises for notebook 07 (click simulation): the first click and the next corrective click
(position and polarity).

Each answer is a function, run on hidden cases (:mod:`~rs_helpers.teaching.exercises.function_problems`);
the references are the package's :func:`~rs_helpers.refer.click_sim.first_click` and
:func:`~rs_helpers.refer.click_sim.next_click`."""
from __future__ import annotations

import numpy as np

from rs_helpers.teaching.exercises import Incorrect, as_array
from rs_helpers.teaching.exercises.function_problems import FunctionExercise

# the one-line answers: the package's click simulation and its pieces
_SIMULATION = ("rs_helpers.refer.click_sim:first_click", "rs_helpers.refer.click_sim:next_click",
               "rs_helpers.refer.click_sim:padded_distance", "rs_helpers.refer.click_sim:farthest_point",
               "rs_helpers.refer.click_sim:simulate_clicks", "rs_helpers.refer.clicks:interior_clicks")


def example_target() -> np.ndarray:
    """A 24 x 32 L-shaped target touching the left image border."""
    mask = np.zeros((24, 32), bool)
    mask[2:22, 0:10] = True
    mask[15:22, 0:30] = True
    return mask


def example_prediction() -> tuple[np.ndarray, np.ndarray]:
    """``(target, prediction)``: SAM missed a thin strip of the target and added a larger block of
    background in the top-right corner."""
    target = np.zeros((24, 32), bool)
    target[6:18, 6:22] = True
    pred = target.copy()
    pred[6:18, 6:9] = False  # a 3-pixel-wide strip missed (false negative)
    pred[0:10, 24:32] = True  # an 8 x 10 block of background taken (false positive)
    return target, pred


def mask_text(target: np.ndarray, pred: np.ndarray | None = None) -> str:
    """A mask as text, one character per pixel: ``#`` target, ``.`` background. With a prediction:
    ``#`` both, ``-`` target SAM missed (false negative), ``+`` background SAM took (false positive)."""
    target = np.asarray(target, bool)
    pred = target if pred is None else np.asarray(pred, bool)
    chars = np.full(target.shape, ".", "<U1")
    chars[target & pred] = "#"
    chars[target & ~pred] = "-"
    chars[~target & pred] = "+"
    return "\n".join("".join(row) for row in chars)


def _as_click(answer, want_label: bool) -> tuple[float, float, int | None]:
    if hasattr(answer, "x") and hasattr(answer, "y"):
        return float(answer.x), float(answer.y), int(getattr(answer, "label", 1))
    values = as_array(answer, "(x, y, label)" if want_label else "(x, y)")
    if values.dtype.kind not in "iuf" or values.ndim != 1 or values.size not in (2, 3):
        raise Incorrect(f"want one click as {'(x, y, label)' if want_label else '(x, y)'}, got {answer!r}.")
    label = int(values[2]) if values.size == 3 else None
    if want_label and label is None:
        raise Incorrect("give the polarity too: (x, y, label) with 1 = positive, 0 = negative.")
    return float(values[0]), float(values[1]), label


def _on(dist: np.ndarray, x: float, y: float) -> float | None:
    """The distance map's value at pixel (x, y), or None when it is not a pixel of the map."""
    if x != int(x) or y != int(y) or not (0 <= y < dist.shape[0] and 0 <= x < dist.shape[1]):
        return None
    return float(dist[int(y), int(x)])


def _deepest(dist: np.ndarray, x: float, y: float) -> bool:
    """(x, y) is a pixel of the map where it takes its maximum (any of several tied ones)."""
    value = _on(dist, x, y)
    return value is not None and value > 0 and value >= dist.max() - 1e-9


def _masks() -> list[tuple[str, tuple]]:
    """The hidden targets: shapes where the padding, ties and the centroid matter."""
    top = np.zeros((14, 20), bool)
    top[0:8, 2:18] = True  # touches the top border
    yy, xx = np.mgrid[:21, :21]
    ring = (np.hypot(yy - 10, xx - 10) <= 9) & (np.hypot(yy - 10, xx - 10) > 4)  # the centroid is in the hole
    single = np.zeros((5, 7), bool)
    single[2, 3] = True
    from scipy.ndimage import gaussian_filter

    blob = gaussian_filter(np.random.default_rng(606).random((30, 40)), 3) > 0.5
    return [("a 14 x 20 rectangle touching the top border", (top,)),
            ("a 21 x 21 ring (its centre is background)", (ring,)),
            ("a 9 x 12 image that is all target", (np.ones((9, 12), bool),)),
            ("a single target pixel in a 5 x 7 image", (single,)),
            ("a random 30 x 40 blob", (blob,))]


class FirstClick(FunctionExercise):
    name = "q1"
    title = "The first simulated click"
    function_name = "deepest_pixel"
    forbidden = _SIMULATION
    task = ("The first simulated click is positive, at the mask pixel **farthest from the mask's boundary**: the "
            "maximum of the distance transform, where **outside the image counts as background** (pad the mask "
            "with one ring of background first). Write `deepest_pixel(mask)` returning that pixel as `(x, y)` (x = "
            "column, y = row) for a boolean mask, with `np.pad` and `distance_transform_edt`, without the "
            "package's click simulation (`first_click`, `padded_distance`, ...). Any pixel that ties for the "
            "maximum is accepted. The check calls it on masks of its own (touching the border, a ring, a single "
            "pixel, ...).")
    setup = '''import numpy as np
from scipy.ndimage import distance_transform_edt

from rs_helpers.teaching.exercises.nb07 import example_target, mask_text

target = example_target()
print(mask_text(target))  # '#' target, '.' background; row 0 at the top'''
    hints = ("Which pixel is farthest from every background pixel? A distance transform answers that for every pixel "
             "at once; but the image border must count as background too, so make the mask one pixel larger on "
             "every side first.",
             "`distance_transform_edt` gives each True pixel its distance to the nearest False one. Pad, transform, "
             "cut the ring off again, then find the position of the maximum: `np.unravel_index` turns a flat "
             "`argmax` into (row, column), which is (y, x).")
    hint_text = hints[0]
    solution_code = '''def deepest_pixel(mask):
    """(x, y) of the mask pixel farthest from the background, outside the image counting as background."""
    depth = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(depth.argmax(), depth.shape)
    return int(col), int(row)

print(deepest_pixel(target))
answer = deepest_pixel'''

    def named_cases(self):
        return _masks()

    def expected(self, mask):
        from rs_helpers.refer.click_sim import first_click

        click, _ = first_click(mask)
        return click.x, click.y

    def compare(self, got, want, args):
        from scipy.ndimage import distance_transform_edt

        from rs_helpers.refer.click_sim import padded_distance

        mask = np.asarray(args[0], bool)

        def wrong(message):
            raise Incorrect(f"for {self.describe(args)}: {message}")

        try:
            x, y, label = _as_click(got, want_label=False)
        except Incorrect as error:
            wrong(str(error))
        if label == 0:
            wrong("the first click is positive (label 1): it says where the target is.")
        depth = padded_distance(mask)
        if _deepest(depth, x, y):
            return
        if _deepest(depth, y, x):
            wrong("x and y are swapped: `unravel_index` gives (row, column) = (y, x); return (x, y).")
        plain = distance_transform_edt(mask)
        if _deepest(plain, x, y):
            wrong("without the padding the image border does not count as background, so the click drifts onto "
                  "the border of a cut-off target. Pad with one ring of background first.")
        ys, xs = np.nonzero(mask)
        if abs(x - xs.mean()) <= 1 and abs(y - ys.mean()) <= 1:
            wrong("that is the centroid: for a ring or an L shape it can even lie outside the target. Use the maximum "
                  "of the distance transform.")
        value = _on(depth, x, y)
        if not value:
            wrong(f"({x:g}, {y:g}) is not a pixel of the mask.")
        wrong(f"({x:g}, {y:g}) is {value:.1f} px from the background; the deepest pixel is {depth.max():.1f} px deep.")


def _predictions() -> list[tuple[str, tuple]]:
    """The hidden (target, prediction) pairs: each kind of larger error, a tie, an empty prediction."""
    target = np.zeros((20, 24), bool)
    target[5:16, 3:15] = True
    fp = target.copy()
    fp[5:16, 3:5] = False  # a 2-pixel strip missed
    fp[0:9, 18:24] = True  # background taken, at the top-right corner: padding matters
    fn = np.zeros_like(target)
    fn[5:16, 12:15] = True  # SAM found only a sliver: the miss is larger
    tie_t, tie_p = np.zeros((12, 22), bool), np.zeros((12, 22), bool)
    tie_t[3:8, 2:7] = True  # a 5 x 5 target SAM missed ...
    tie_p[3:8, 14:19] = True  # ... and a 5 x 5 background block it took: equal depths
    from scipy.ndimage import gaussian_filter, shift

    blob = gaussian_filter(np.random.default_rng(66).random((28, 36)), 3) > 0.5
    moved = shift(blob.astype(float), (2, -3), order=0) > 0.5
    return [("a 20 x 24 target with a 2-px strip missed and a 9 x 6 block taken at the top-right corner", (target, fp)),
            ("a 20 x 24 target of which SAM found only a 3-px sliver", (target, fn)),
            ("a 5 x 5 target missed and a 5 x 5 block taken (equal depths)", (tie_t, tie_p)),
            ("a 20 x 24 target and an empty prediction", (target, np.zeros_like(target))),
            ("a random 28 x 36 blob predicted 2 px too low and 3 px too far left", (blob, moved))]


class NextClick(FunctionExercise):
    name = "q2"
    title = "The next corrective click"
    function_name = "corrective_click"
    forbidden = _SIMULATION
    task = ("After some clicks SAM predicts `pred` for the target `target`. The next click goes to the deepest point "
            "(padded distance transform, as in exercise 1) of the **larger error**: the false negatives (target "
            "SAM missed: a **positive** click, label 1) or the false positives (background SAM took: a "
            "**negative** click, label 0), whichever has the larger maximum (on a tie, the negative one). Write "
            "`corrective_click(target, pred)` returning `(x, y, label)`, without the package's click simulation "
            "(your `deepest_pixel` may help). The check calls it on masks of its own.")
    setup = '''import numpy as np
from scipy.ndimage import distance_transform_edt

from rs_helpers.teaching.exercises.nb07 import example_prediction, mask_text

target, pred = example_prediction()
print(mask_text(target, pred))  # '#' right, '-' target SAM missed, '+' background SAM took'''
    hints = ("Two error regions, each a boolean mask built from `target` and `pred`; the deeper one decides where the "
             "click goes and its polarity.",
             "False negatives are target and not predicted, false positives predicted and not target. Compute the "
             "padded distance map of each, compare their maxima with `>` (so a tie goes to the false positives, as "
             "in RITM) and click at the maximum of the winner.")
    hint_text = hints[0]
    solution_code = '''def corrective_click(target, pred):
    """(x, y, label) of the next click: the deepest pixel of the larger error region."""
    def depth(region):
        return distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]

    fn, fp = depth(target & ~pred), depth(pred & ~target)
    region, label = (fn, 1) if fn.max() > fp.max() else (fp, 0)
    row, col = np.unravel_index(region.argmax(), region.shape)
    return int(col), int(row), label

print(corrective_click(target, pred))
answer = corrective_click'''

    def named_cases(self):
        return _predictions()

    def expected(self, target, pred):
        from rs_helpers.refer.click_sim import next_click

        click, _, _ = next_click(target, pred)
        return click.x, click.y, click.label

    def compare(self, got, want, args):
        from scipy.ndimage import distance_transform_edt

        from rs_helpers.refer.click_sim import padded_distance

        target, pred = (np.asarray(a, bool) for a in args)

        def wrong(message):
            raise Incorrect(f"for {self.describe(args)}: {message}")

        try:
            x, y, label = _as_click(got, want_label=True)
        except Incorrect as error:
            wrong(str(error))
        fn, fp = target & ~pred, pred & ~target
        fn_d, fp_d = padded_distance(fn), padded_distance(fp)
        use_fn = fn_d.max() > fp_d.max()  # RITM: a tie is a negative click
        chosen, other = (fn_d, fp_d) if use_fn else (fp_d, fn_d)
        want_label = 1 if use_fn else 0
        if _deepest(chosen, x, y):
            if label == want_label:
                return
            if want_label == 0:
                wrong("right place, wrong polarity: that region is background SAM wrongly took (false positive), so "
                      "the click is negative (label 0).")
            wrong("right place, wrong polarity: that region is target SAM missed (false negative), so the click is "
                  "positive (label 1).")
        if _deepest(chosen, y, x):
            wrong("x and y are swapped: (x, y) = (column, row).")
        if _deepest(other, x, y):
            if other.max() == chosen.max():
                wrong(f"both errors are {chosen.max():.1f} px deep: on a tie the click is negative, on the false "
                      "positives (RITM's rule).")
            wrong(f"that is the deepest point of the smaller error (depth {other.max():.1f} px); the other error "
                  f"reaches {chosen.max():.1f} px, so the click goes there.")
        if _deepest(distance_transform_edt(fn if use_fn else fp), x, y):
            wrong("without the padding the image border does not count as background; pad the error region with one "
                  "ring of background first.")
        if _deepest(padded_distance(target), x, y):
            wrong("that is the deepest point of the target, the first click; the next click corrects SAM's error: "
                  "use the false-negative and false-positive regions.")
        wrong("not the deepest point of the larger error region.")


q1 = FirstClick()
q2 = NextClick()
EXERCISES = [q1, q2]
