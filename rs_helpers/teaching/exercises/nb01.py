"""Exercises for notebook 01 (SAM grid proposals): the grid of point prompts, and which
proposals SAM's two quality filters keep.

Ordering: the grid is checked as a *set* of points (any order is accepted). SAM prompts the
decoder with every point of the grid and filters each point's masks on their own, so the order
of the points does not change which masks come out; ``proposals.grid_points`` happens to list
them row by row (y outer, x inner), like segment-anything's ``build_point_grid``.
"""
from __future__ import annotations

import numpy as np

from rs_helpers.teaching.exercises import Exercise, Incorrect, as_array, as_number, same_points

PRED_IOU_THRESH = 0.88
STABILITY_THRESH = 0.95


class GridPoints(Exercise):
    name = "q1"
    title = "The grid of point prompts"
    task = ("SAM's automatic mask generator prompts the decoder with an n x n grid of points. For an image "
            "of **width 640 and height 480** and **n = 4**, write the 16 points as an array of shape "
            "(16, 2) holding pixel **(x, y)** (x = column, y = row). As in segment-anything, each point "
            "sits at the **centre of its cell** when the image is cut into n x n equal cells. Any order "
            "of the points is accepted.")
    setup = '''import numpy as np

n, width, height = 4, 640, 480'''
    hint_text = ("Along one axis the n cell centres are at (i + 0.5) / n of the side, i = 0..n-1, for example "
                 "`np.linspace(1 / (2 * n), 1 - 1 / (2 * n), n)`; scale by the width for x and by the height "
                 "for y, then pair every x with every y (`np.meshgrid`).")
    solution_code = '''axis = (np.arange(n) + 0.5) / n  # cell centres, as fractions of the side
xs, ys = np.meshgrid(axis * width, axis * height)
answer = np.stack([xs.ravel(), ys.ravel()], axis=1)'''

    def __init__(self, n: int = 4, width: int = 640, height: int = 480):
        self.n, self.width, self.height = n, width, height

    def expected(self) -> np.ndarray:
        from rs_helpers.sam.proposals import grid_points

        return grid_points(self.n, self.width, self.height)

    def _grid(self, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
        xs, ys = np.meshgrid(fx, fy)
        return np.stack([xs.ravel(), ys.ravel()], axis=1)

    def verify(self, answer):
        n, w, h = self.n, self.width, self.height
        points = as_array(answer, f"an array of shape ({n * n}, 2)")
        if points.dtype.kind not in "iuf":
            raise Incorrect(f"want numbers: an array of shape ({n * n}, 2) of pixel (x, y).")
        points = points.astype(float)
        if points.shape == (2, n * n):
            raise Incorrect(f"shape (2, {n * n}): want one row per point, shape ({n * n}, 2): transpose it (`.T`).")
        if points.ndim == 3 and points.shape[-1] == 2 and points.shape[0] * points.shape[1] == n * n:
            raise Incorrect(f"shape {points.shape}: flatten it to ({n * n}, 2), e.g. `.reshape(-1, 2)`.")
        if points.ndim != 2 or points.shape[1] != 2:
            raise Incorrect(f"want an array of shape ({n * n}, 2) of (x, y), got shape {points.shape}.")
        if points.shape[0] != n * n:
            raise Incorrect(f"{points.shape[0]} points: an n x n grid with n = {n} has {n * n}.")
        want = self.expected()
        tol = 0.51  # integer pixels are fine
        if same_points(points, want, tol):
            return "the same points as `rs_helpers.sam.proposals.grid_points(n, width, height)`."
        if same_points(points[:, ::-1], want, tol):
            raise Incorrect("x and y are swapped: each row is (x, y) = (column, row); x runs along the width.")
        centres = (np.arange(n) + 0.5) / n
        if same_points(points, self._grid(centres, centres), 1e-6):
            raise Incorrect("these are fractions of the image side (0..1): multiply x by the width and y by the height.")
        edges = np.linspace(0, 1, n)
        for scale_w, scale_h in ((w, h), (w - 1, h - 1)):
            if same_points(points, self._grid(edges * scale_w, edges * scale_h), tol):
                raise Incorrect(f"the outer points lie on the image edges: SAM puts each point at the centre of "
                                f"its cell, half a cell ({w / (2 * n):g} px in x) in from the border.")
        if same_points(points, self._grid(np.arange(n) / n * w, np.arange(n) / n * h), tol):
            raise Incorrect("these are the cells' top-left corners: add half a cell to reach the centres.")
        raise Incorrect("not the grid of cell centres: x = (i + 0.5) / n * width, y = (j + 0.5) / n * height.")


def example_scores() -> tuple[np.ndarray, np.ndarray]:
    """``(predicted_iou, stability_score)`` of 25 made-up proposals: both filters matter, and some
    values sit exactly on a threshold."""
    rows = [  # (predicted_iou, stability_score)
        (0.97, 0.98), (0.93, 0.96), (0.91, 0.99), (0.95, 0.97), (0.89, 0.965), (0.99, 0.985), (0.92, 0.955),
        (0.94, 0.91), (0.96, 0.72), (0.90, 0.94), (0.98, 0.88),
        (0.61, 0.97), (0.80, 0.99), (0.87, 0.96), (0.75, 0.975), (0.86, 0.952), (0.70, 0.98),
        (0.55, 0.60), (0.83, 0.93), (0.72, 0.81), (0.64, 0.90), (0.85, 0.70),
        (0.88, 0.97), (0.88, 0.99), (0.93, 0.95),
    ]
    order = np.random.default_rng(1).permutation(len(rows))
    values = np.array(rows)[order]
    return values[:, 0].copy(), values[:, 1].copy()


class KeptMasks(Exercise):
    name = "q2"
    title = "Which proposals survive SAM's filters?"
    task = ("`predicted_iou` and `stability_score` hold the two quality scores of 25 proposals. With SAM's "
            "default thresholds, a proposal is kept when **`predicted_iou > 0.88`** (strictly greater) **and** "
            "**`stability_score >= 0.95`** (greater or equal), exactly as in segment-anything's "
            "`SamAutomaticMaskGenerator`. How many proposals are kept? (An integer.)")
    setup = '''from rs_helpers.teaching.exercises.nb01 import example_scores

predicted_iou, stability_score = example_scores()
print("predicted IoU:  ", predicted_iou)
print("stability score:", stability_score)'''
    hint_text = ("Build one boolean array per filter, combine them with `&` and count the True values with "
                 "`.sum()`. Mind `>` against `>=`: three proposals sit exactly on a threshold.")
    solution_code = '''keep = (predicted_iou > 0.88) & (stability_score >= 0.95)
answer = int(keep.sum())'''

    def __init__(self, predicted_iou: np.ndarray | None = None, stability_score: np.ndarray | None = None):
        if predicted_iou is None or stability_score is None:
            predicted_iou, stability_score = example_scores()
        self.iou, self.stability = np.asarray(predicted_iou, float), np.asarray(stability_score, float)

    def keep(self) -> np.ndarray:
        return (self.iou > PRED_IOU_THRESH) & (self.stability >= STABILITY_THRESH)

    def expected(self) -> int:
        return int(self.keep().sum())

    def verify(self, answer):
        want, n = self.expected(), len(self.iou)
        array = np.asarray(answer) if not isinstance(answer, (int, float, np.number)) else None
        if array is not None and array.ndim == 1 and array.dtype == bool:
            if array.shape == (n,) and np.array_equal(array, self.keep()):
                return f"that is the keep mask; {want} proposals are kept."
            raise Incorrect(f"a boolean array: give the count of kept proposals (or the exact keep mask of {n}).")
        value = as_number(answer, "the number of kept proposals (an integer)")
        if value == want:
            return f"{want} of {n} proposals are kept."
        iou_ok, iou_ge = self.iou > PRED_IOU_THRESH, self.iou >= PRED_IOU_THRESH
        st_ok, st_gt = self.stability >= STABILITY_THRESH, self.stability > STABILITY_THRESH
        wrong = [
            ((iou_ok | st_ok).sum(), "that counts proposals passing *either* filter: a proposal must pass both (`&`)."),
            (n - want, "that is the number of proposals *removed*; count the kept ones."),
            ((iou_ge & st_gt).sum(), "both comparisons are the wrong way round at the threshold: "
                                     "`predicted_iou > 0.88` (strict) and `stability_score >= 0.95`."),
            ((iou_ge & st_ok).sum(), "a predicted IoU of exactly 0.88 does not pass: the rule is `predicted_iou > 0.88`."),
            ((iou_ok & st_gt).sum(), "a stability score of exactly 0.95 passes: the rule is `stability_score >= 0.95`."),
            (iou_ok.sum(), "you applied only the predicted-IoU filter; the stability filter applies too."),
            (st_ok.sum(), "you applied only the stability filter; the predicted-IoU filter applies too."),
        ]
        for count, message in wrong:
            if value == int(count):
                raise Incorrect(message)
        raise Incorrect(f"not the number of proposals with predicted_iou > {PRED_IOU_THRESH} "
                        f"and stability_score >= {STABILITY_THRESH}.")


q1 = GridPoints()
q2 = KeptMasks()
EXERCISES = [q1, q2]
