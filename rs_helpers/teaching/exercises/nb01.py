"""Exercises for notebook 01 (SAM grid proposals), function problems checked on hidden inputs, in
the order the notebook teaches them: 1. ``kept_mask``, which of SAM's answers the package keeps
(``from_clicks.use_multimask``); 2. ``grid``, the n x n grid of point prompts (checked as a set of
points: the order changes no mask); 3. ``keep_filter``, SAM's quality filters (``predicted_iou >
t`` and ``stability_score >= t``, as ``SamAutomaticMaskGenerator``); 4. ``nms``, greedy box NMS
(``proposals.box_nms``, torchvision's ``nms``)."""
from __future__ import annotations

import numpy as np

from rs_helpers.teaching.exercises import Incorrect, same_points
from rs_helpers.teaching.exercises.array_problems import ArrayFunctionExercise

PRED_IOU_THRESH = 0.88
STABILITY_THRESH = 0.95


# --------------------------------------------------------------------------- 1: SAM's multimask choice
def _square(size: int, top: int, left: int, side: int) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[top:top + side, left:left + side] = True
    return mask


def example_candidates() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(three, three_scores, single)``: nested squares (subpart, part, whole), their scores, the single mask."""
    three = np.stack([_square(12, 4, 4, 3), _square(12, 2, 2, 7), _square(12, 0, 0, 12)])
    return three, np.array([0.71, 0.93, 0.86]), _square(12, 1, 1, 9)


class MultimaskChoice(ArrayFunctionExercise):
    name = "q1"
    title = "Which of SAM's answers is kept?"
    function_name = "kept_mask"
    forbidden = ("rs_helpers.sam.from_clicks:use_multimask", "rs_helpers.sam.from_clicks:multimask_mode",
                 "rs_helpers.sam.from_clicks:predict_mask")
    task = ("Asked with `multimask_output=True`, SAM returns three candidate masks and their predicted IoUs; asked "
            "with `multimask_output=False`, one mask. Write `kept_mask(three, three_scores, single, n_clicks, "
            "multimask)` returning the mask the package keeps for `n_clicks` clicks (1 or more): `three` is the 3 x "
            "H x W boolean array of candidates, `three_scores` their 3 predicted IoUs, `single` the H x W mask of "
            "the one-mask answer, and `multimask` the package's rule, `\"auto\"`, `\"always\"` or `\"never\"` (the "
            "rule of section 1: `\"auto\"` asks for three masks for a single click only). When three masks are "
            "asked for, the kept one is the candidate of highest predicted IoU. Write the rule yourself, "
            "**without** `use_multimask` or `predict_mask`. Then set `answer = kept_mask`: the check calls it on "
            "candidates of its own, for each rule and several numbers of clicks.")
    setup = '''import numpy as np

from rs_helpers.teaching.exercises.nb01 import example_candidates

three, three_scores, single = example_candidates()
print("areas of the three candidates:", three.sum(axis=(1, 2)), "| predicted IoU:", three_scores)
print("area of the single mask:", single.sum())'''
    hint_text = ("Two decisions: first whether SAM is asked for three masks at all (it depends on the rule and "
                 "on the number of clicks), then, if so, which of the three to keep.")
    hints = (hint_text, "`\"always\"` means three masks whatever the clicks, `\"never\"` one mask, `\"auto\"` "
                        "three for one click and one for two or more. Of three, the kept one has the largest "
                        "score: `np.argmax` gives its index along the first axis.")
    solution_code = '''# kept_mask(three, three_scores, single, n_clicks, multimask) -> the kept H x W mask
def kept_mask(three, three_scores, single, n_clicks, multimask="auto"):
    ask_for_three = multimask == "always" or (multimask == "auto" and n_clicks < 2)
    if not ask_for_three:
        return single
    return three[int(np.argmax(three_scores))]

for clicks in (1, 2):
    print(clicks, "click(s): kept mask of area", kept_mask(three, three_scores, single, clicks).sum())
answer = kept_mask'''

    def cases(self):
        rng = np.random.default_rng(101)
        nested = np.stack([_square(10, 0, 0, 10), _square(10, 1, 2, 6), _square(10, 3, 3, 3)])  # large, mid, small
        apart = np.stack([_square(10, 7, 7, 3), _square(10, 1, 1, 5), _square(10, 0, 0, 7)])  # not nested
        single, three, one = _square(10, 2, 1, 7), rng.random((3, 9, 11)) > 0.5, rng.random((9, 11)) > 0.5
        a = np.array
        return [  # each wrong rule first fails on a case where it is the only one to give that mask
            (nested, a([0.95, 0.40, 0.70]), single, 1, "auto"), (apart, a([0.78, 0.91, 0.62]), single, 1, "auto"),
            (apart, a([0.78, 0.91, 0.62]), single, 2, "auto"), (three, a([0.55, 0.60, 0.97]), one, 4, "auto"),
            (three, a([0.88, 0.99, 0.50]), one, 3, "always"), (nested, a([0.80, 0.70, 0.93]), single, 1, "never"),
            (three, a([0.30, 0.20, 0.81]), one, 1, "always")]

    def expected(self, three, scores, single, n_clicks, multimask):
        from rs_helpers.sam.from_clicks import use_multimask

        return np.asarray(three[int(np.argmax(scores))] if use_multimask(multimask, n_clicks) else single, bool)

    def describe(self, args):
        n_clicks, mode = args[3:]
        return f"{n_clicks} click{'s' if n_clicks > 1 else ''} under the rule {mode!r}"

    def read(self, got, want, args, where):
        if np.ndim(got) == 0 and not isinstance(got, (str, bytes)):
            raise Incorrect(f"{where}, it returned {got!r}: return the kept mask itself (H x W), not its index.")
        return super().read(got, want, args, where).astype(bool)

    def wrong_versions(self, three, scores, single, n_clicks, mode):
        if not (mode == "always" or (mode == "auto" and n_clicks < 2)):
            rule = ("SAM is asked for one mask: with two or more clicks the target is no longer ambiguous, so the "
                    "rule \"auto\" keeps `single`." if mode == "auto" else
                    "SAM is never asked for three masks: the rule \"never\" always keeps `single`.")
            return [(lambda m=m: m, rule) for m in three]
        areas = three.reshape(3, -1).sum(1)
        return [(lambda: single, "one click is ambiguous, so the rule \"auto\" asks for three masks and keeps the "
                                 "best; `single` is for two or more clicks." if mode == "auto" else
                 "the rule \"always\" asks for three masks whatever the number of clicks, and keeps the best."),
                (lambda: three[0], "that is the first candidate: SAM's three answers come in no particular order, "
                                   "so keep the one of highest predicted IoU."),
                (lambda: three[np.argmax(areas)], "that is the largest candidate: keep the one of highest predicted "
                                                  "IoU, whatever its size."),
                (lambda: three[np.argmin(areas)], "that is the smallest candidate: keep the one of highest predicted "
                                                  "IoU, whatever its size."),
                (lambda: three[np.argmin(scores)], "that is the candidate of *lowest* predicted IoU: keep the "
                                                   "highest."),
                (lambda: three.any(0), "that is the union of the three: keep one candidate, the best.")]

    not_right = "another mask than the one the rule keeps."


# --------------------------------------------------------------------------- 2: the grid of point prompts
def _grid(fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    xs, ys = np.meshgrid(fx, fy)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


class GridPoints(ArrayFunctionExercise):
    name = "q2"
    title = "The grid of point prompts"
    function_name = "grid"
    forbidden = ("rs_helpers.sam.proposals:grid_points", "segment_anything.utils.amg:build_point_grid",
                 "segment_anything.utils.amg:build_all_layer_point_grids", f"{__name__}:_grid")
    task = ("SAM's automatic mask generator prompts the decoder with an n x n grid of points. Write "
            "`grid(n, width, height)` returning the n * n points as an array of shape (n * n, 2) holding pixel "
            "**(x, y)** (x = column, y = row). As in segment-anything, each point sits at the **centre of its "
            "cell** when the image is cut into n x n equal cells. Any order of the points is accepted; pixel "
            "positions may be fractional or rounded. Write it **without** the package's `grid_points` (or "
            "segment-anything's `build_point_grid`). Then set `answer = grid`: the check calls it for other sizes, "
            "a grid of one point and non-square images among them.")
    setup = '''import numpy as np

n, width, height = 4, 640, 480'''
    hint_text = ("Work along one axis first: cut a side into n equal cells and find the n cell centres as fractions "
                 "of the side. Then pair every x with every y.")
    hints = (hint_text, "The centre of cell i (i = 0..n-1) is at (i + 0.5) / n of the side; multiply by the width "
                        "for x and by the height for y. `np.meshgrid` pairs the two axes; `.ravel()` flattens each.")
    solution_code = '''# grid(n, width, height) -> (n * n, 2) pixel (x, y); then answer = grid
def grid(n, width, height):
    axis = (np.arange(n) + 0.5) / n  # cell centres, as fractions of the side
    xs, ys = np.meshgrid(axis * width, axis * height)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)

print(grid(n, width, height))
answer = grid'''

    def cases(self):
        return [(3, 90, 30), (5, 1000, 700), (1, 64, 48), (7, 333, 517), (2, 10, 10), (6, 1280, 720)]

    def expected(self, n, width, height):
        from rs_helpers.sam.proposals import grid_points

        return grid_points(n, width, height)

    confirmation = "The same points as `rs_helpers.sam.proposals.grid_points(n, width, height)`."

    def same(self, a, b):
        return same_points(np.asarray(a, float), np.asarray(b, float), 0.51)  # integer pixels are fine

    def read(self, got, want, args, where):
        n = args[0]
        points = super().read(got, None, args, where).astype(float)
        if points.shape == (2, n * n) and n > 1:
            raise Incorrect(f"{where} the shape is (2, {n * n}): want one row per point, ({n * n}, 2): transpose it.")
        if points.ndim == 3 and points.shape[-1] == 2 and points.shape[0] * points.shape[1] == n * n:
            raise Incorrect(f"{where} the shape is {points.shape}: flatten it to ({n * n}, 2), one row per point.")
        if points.ndim != 2 or points.shape[1] != 2:
            raise Incorrect(f"{where}: want an array of shape ({n * n}, 2) of (x, y), got shape {points.shape}.")
        if points.shape[0] != n * n:
            raise Incorrect(f"{where}: {points.shape[0]} points, but an n x n grid with n = {n} has {n * n}.")
        return points

    def wrong_versions(self, n, w, h):
        centres, edges = (np.arange(n) + 0.5) / n, np.linspace(0, 1, n)
        on_edges = ("the outer points lie on the image edges: SAM puts each point at the centre of its cell, half a "
                    "cell in from the border.")
        return [(lambda: self.expected(n, w, h)[:, ::-1], "x and y are swapped: each row is (x, y) = (column, row), "
                                                          "x runs along the width."),
                (lambda: _grid(centres, centres), "these are fractions of the image side (0..1): multiply x by the "
                                                  "width and y by the height."),
                (lambda: _grid(edges * w, edges * h), on_edges),
                (lambda: _grid(edges * (w - 1), edges * (h - 1)), on_edges),
                (lambda: _grid(np.arange(n) / n * w, np.arange(n) / n * h),
                 "these are the cells' top-left corners: add half a cell to reach the centres.")]

    not_right = "not the grid of cell centres, x = (i + 0.5) / n * width, y = (j + 0.5) / n * height."


# --------------------------------------------------------------------------- 3: the quality filters
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


def _scores_with_ties(rng, n: int, iou_thresh: float, stability_thresh: float) -> tuple[np.ndarray, np.ndarray]:
    """Random scores, three exactly on each threshold (the other score passing)."""
    iou, stability = np.round(rng.uniform(0.5, 1.0, n), 2), np.round(rng.uniform(0.6, 1.0, n), 3)
    iou[:3], stability[:3] = iou_thresh, np.maximum(stability[:3], stability_thresh + 0.01)
    stability[3:6], iou[3:6] = stability_thresh, np.maximum(iou[3:6], iou_thresh + 0.02)
    order = rng.permutation(n)
    return iou[order], stability[order]


class KeptMasks(ArrayFunctionExercise):
    name = "q3"
    title = "Which proposals survive SAM's filters?"
    function_name = "keep_filter"
    task = ("Each proposal has two quality scores. As in segment-anything's `SamAutomaticMaskGenerator`, a "
            "proposal is kept when **`predicted_iou > iou_thresh`** (strictly greater) **and** "
            "**`stability_score >= stability_thresh`** (greater or equal). Write `keep_filter(predicted_iou, "
            "stability_score, iou_thresh, stability_thresh)`: the two scores are 1-D arrays (one value per "
            "proposal, possibly none); return the **boolean keep mask**, one True or False per proposal. Then set "
            "`answer = keep_filter`: the check calls it with other scores and thresholds, values sitting exactly "
            "on a threshold among them.")
    setup = '''from rs_helpers.teaching.exercises.nb01 import example_scores

predicted_iou, stability_score = example_scores()
print("predicted IoU:  ", predicted_iou)
print("stability score:", stability_score)'''
    hint_text = ("One comparison per filter gives one boolean array each; a proposal must pass both. Read the task "
                 "again for which comparison is strict.")
    hints = (hint_text, "Combine two boolean arrays element-wise with `&` (both) rather than `|` (either); `>` "
                        "drops a value equal to the threshold, `>=` keeps it.")
    solution_code = '''# keep_filter(predicted_iou, stability_score, iou_thresh, stability_thresh) -> boolean keep mask
def keep_filter(predicted_iou, stability_score, iou_thresh=0.88, stability_thresh=0.95):
    return (predicted_iou > iou_thresh) & (stability_score >= stability_thresh)

keep = keep_filter(predicted_iou, stability_score)
print(f"{keep.sum()} of {len(keep)} proposals kept")
answer = keep_filter'''

    def cases(self):
        rng = np.random.default_rng(103)
        default = _scores_with_ties(rng, 30, PRED_IOU_THRESH, STABILITY_THRESH)
        looser = _scores_with_ties(rng, 20, 0.7, 0.8)
        return [default + (PRED_IOU_THRESH, STABILITY_THRESH), looser + (0.7, 0.8),
                (np.array([0.9, 0.9]), np.array([0.9, 0.9]), 0.9, 0.9),
                (np.zeros(0), np.zeros(0), PRED_IOU_THRESH, STABILITY_THRESH)]

    def expected(self, iou, stability, iou_thresh, stability_thresh):
        return (np.asarray(iou) > iou_thresh) & (np.asarray(stability) >= stability_thresh)

    def read(self, got, want, args, where):
        if np.ndim(got) == 0:
            raise Incorrect(f"{where} it returned {got!r}: return the boolean keep mask (one value per proposal), "
                            "not a count.")
        array = np.asarray(got)
        if array.ndim == 1 and array.dtype.kind in "iu" and np.array_equal(array, np.flatnonzero(want)) \
                and array.shape != want.shape:
            raise Incorrect(f"{where}: these are the indices of the kept proposals; return the boolean keep mask.")
        array = super().read(got, want, args, where)
        if array.dtype != bool and not np.isin(array, [0, 1]).all():
            raise Incorrect(f"{where}: want a boolean mask (True = kept), got {array.dtype} values.")
        return array.astype(bool)

    def wrong_versions(self, iou, stab, t_iou, t_stab):
        keep = self.expected(iou, stab, t_iou, t_stab)
        iou_ok, iou_ge, st_ok, st_gt = iou > t_iou, iou >= t_iou, stab >= t_stab, stab > t_stab
        return [(lambda: iou_ok | st_ok, "that keeps proposals passing *either* filter: a proposal must pass both "
                                         "(`&`)."),
                (lambda: ~keep, "that is the mask of the proposals *removed*: True should mark the kept ones."),
                (lambda: iou_ge & st_gt, "both comparisons are the wrong way round at the threshold: `predicted_iou > "
                                         "iou_thresh` (strict) and `stability_score >= stability_thresh`."),
                (lambda: iou_ge & st_ok, "a predicted IoU equal to the threshold does not pass: the rule is "
                                         "`predicted_iou > iou_thresh`."),
                (lambda: iou_ok & st_gt, "a stability score equal to the threshold passes: the rule is "
                                         "`stability_score >= stability_thresh`."),
                (lambda: iou_ok, "you applied only the predicted-IoU filter; the stability filter applies too."),
                (lambda: st_ok, "you applied only the stability filter; the predicted-IoU filter applies too."),
                (lambda: (iou > PRED_IOU_THRESH) & (stab >= STABILITY_THRESH),
                 "those are the default thresholds 0.88 and 0.95: use the thresholds the function is given.")]

    not_right = "not the proposals with predicted_iou > iou_thresh and stability_score >= stability_thresh."
    confirmation = "With the default thresholds, 8 of the example's 25 proposals pass."


# --------------------------------------------------------------------------- 4: non-maximum suppression
def example_boxes() -> tuple[np.ndarray, np.ndarray]:
    """``(boxes, scores)`` for the notebook: 6 XYXY boxes (x2, y2 exclusive) and their scores."""
    boxes = np.array([[10, 10, 50, 50], [12, 12, 52, 50], [60, 10, 90, 40], [11, 8, 49, 52],
                      [62, 12, 92, 44], [100, 100, 120, 130]], float)
    return boxes, np.array([0.90, 0.95, 0.80, 0.70, 0.85, 0.60])


def _iou_matrix(boxes: np.ndarray, plus_one: bool = False, over: str = "union") -> np.ndarray:
    e = 1.0 if plus_one else 0.0
    x1, y1, x2, y2 = (boxes[:, i] for i in range(4))
    area = (x2 - x1 + e) * (y2 - y1 + e)
    inter = (np.clip(np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None]) + e, 0, None)
             * np.clip(np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None]) + e, 0, None))
    return inter / (np.minimum(area[:, None], area[None]) if over == "min" else area[:, None] + area[None] - inter)


def _greedy(boxes, scores, thresh, *, strict=True, chain=False, ascending=False, plus_one=False, over="union"):
    """NMS variants: the right one by default; ``chain``: removed boxes still remove others."""
    if len(boxes) == 0:
        return np.zeros(0, int)
    beyond = _iou_matrix(np.asarray(boxes, float), plus_one, over)
    beyond = beyond > thresh if strict else beyond >= thresh
    order, kept = np.argsort(scores if ascending else -np.asarray(scores)), []
    for position, i in enumerate(order):
        if not any(beyond[i, j] for j in (order[:position] if chain else kept)):
            kept.append(int(i))
    return np.array(kept, int)


class BoxNms(ArrayFunctionExercise):
    name = "q4"
    title = "Non-maximum suppression"
    function_name = "nms"
    forbidden = ("rs_helpers.sam.proposals:box_nms", "torchvision.ops:nms", "torchvision.ops:batched_nms",
                 "torchvision.ops.boxes:nms", "torchvision.ops.boxes:batched_nms", f"{__name__}:_greedy")
    task = ("Many grid points find the same object, so SAM's generator ends with **box NMS**: of proposals whose "
            "boxes overlap too much, only the best survives. Write `nms(boxes, scores, iou_thresh)`: `boxes` is an "
            "N x 4 float array of boxes (x1, y1, x2, y2), x2 and y2 *exclusive*, so a box's area is (x2 - x1) * "
            "(y2 - y1); `scores` the N scores (all different). Greedily: take the best remaining box, keep it, "
            "remove every remaining box whose IoU with it is **greater than** `iou_thresh`, repeat. Return the "
            "indices of the kept boxes, **best score first**. N may be 0. Write it **without** the package's "
            "`box_nms` or torchvision's `nms` (the check refuses them). Then set `answer = nms`: the check calls it "
            "on boxes of its own, with an IoU exactly at the threshold and a chain of overlaps.")
    setup = '''import numpy as np

from rs_helpers.teaching.exercises.nb01 import example_boxes

boxes, scores = example_boxes()
print(boxes, "\\nscores:", scores)'''
    hint_text = ("Write the IoU of one box with an array of boxes first: the intersection is a box too (the larger "
                 "of the two left edges, the smaller of the two right edges, ...), empty when those cross.")
    hints = (hint_text, "Visit the boxes in order of decreasing score (`np.argsort(-scores)`) and keep a list of "
                        "the kept ones; a box is kept when its IoU with every box kept so far is at most the "
                        "threshold. Boxes that were removed never remove others.")
    solution_code = '''# nms(boxes, scores, iou_thresh) -> kept indices, best first; then answer = nms
def nms(boxes, scores, iou_thresh):
    x1, y1, x2, y2 = np.asarray(boxes, float).T
    area = (x2 - x1) * (y2 - y1)
    kept = []
    for i in np.argsort(-np.asarray(scores)):  # best first
        w = np.clip(np.minimum(x2[kept], x2[i]) - np.maximum(x1[kept], x1[i]), 0, None)
        h = np.clip(np.minimum(y2[kept], y2[i]) - np.maximum(y1[kept], y1[i]), 0, None)
        if not (w * h / (area[kept] + area[i] - w * h) > iou_thresh).any():
            kept.append(int(i))
    return np.array(kept, int)

print("kept:", nms(boxes, scores, 0.7))
answer = nms'''

    def cases(self):
        rng = np.random.default_rng(104)
        chain = np.array([[0, 0, 20, 10], [6, 0, 26, 10], [12, 0, 32, 10]], float)  # A-B, B-C overlap; A-C hardly
        small = np.array([[0, 0, 2, 2], [1, 1, 3, 3]], float)  # IoU 1/7, but 4/14 with a pixel added to each side
        inside = np.array([[0, 0, 40, 40], [0, 0, 20, 20]], float)  # IoU 0.25, but all of the small box overlaps
        tie = np.array([[0, 0, 10, 10], [0, 0, 10, 5], [30, 30, 40, 38]], float)  # IoU exactly 0.5
        corners = rng.integers(0, 80, (14, 2))
        random_boxes = np.concatenate([corners, corners + rng.integers(8, 40, (14, 2))], 1).astype(float)
        objects = np.repeat(rng.integers(0, 100, (4, 2)), 4, axis=0)  # 4 objects, each found 4 times
        duplicates = (np.concatenate([objects, objects + rng.integers(15, 30, (4, 2)).repeat(4, 0)], 1)
                      + rng.integers(-3, 4, (16, 4))).astype(float)
        return [  # each wrong version first fails on a case where it is the only one to give that answer
            (chain, np.array([0.9, 0.8, 0.7]), 0.4), (small, np.array([0.8, 0.3]), 0.26),
            (inside, np.array([0.9, 0.4]), 0.5), (tie, np.array([0.6, 0.9, 0.7]), 0.5),
            (tie, np.array([0.6, 0.9, 0.7]), 0.45), (random_boxes, rng.permutation(14) / 14 + 0.01, 0.3),
            (duplicates, rng.permutation(16) / 16 + 0.02, 0.7), (np.array([[5, 5, 9, 9]], float), np.array([0.3]), 0.7),
            (np.zeros((0, 4)), np.zeros(0), 0.7)]

    def expected(self, boxes, scores, iou_thresh):
        from rs_helpers.sam.proposals import box_nms

        return np.asarray(box_nms(boxes, scores, iou_thresh), int)

    confirmation = "The same boxes, in the same order, as `rs_helpers.sam.proposals.box_nms`."

    def read(self, got, want, args, where):
        array = super().read(got, None, args, where)
        if array.dtype == bool:
            raise Incorrect(f"{where} it returned a boolean mask: return the *indices* of the kept boxes, best first.")
        if array.ndim == 2 and array.shape[-1] == 4:
            raise Incorrect(f"{where} it returned boxes: return the *indices* of the kept boxes, best first.")
        if array.ndim != 1 or not np.array_equal(array, np.round(array)):
            raise Incorrect(f"{where}: want a 1-D array (or list) of kept indices (whole numbers), got {array!r}.")
        return array.astype(int)

    def wrong_versions(self, boxes, scores, thresh):
        variant = lambda **kw: lambda: _greedy(boxes, scores, thresh, **kw)  # noqa: E731
        return [(variant(strict=False), "a box whose IoU equals the threshold is kept: remove only those with IoU "
                                        "*greater than* iou_thresh."),
                (variant(chain=True), "a removed box must not remove others: compare each box only with the boxes "
                                      "already *kept*."),
                (variant(ascending=True), "that starts from the lowest score: the best box (highest score) is kept "
                                          "first."),
                (variant(plus_one=True), "x2 and y2 are exclusive here: a box's width is x2 - x1, not x2 - x1 + 1."),
                (variant(over="min"), "that divides the intersection by the smaller box's area; IoU divides by the "
                                      "union.")]

    def fallback(self, array, want, args):
        if sorted(array.tolist()) == sorted(want.tolist()):
            return f"it returned {array.tolist()}, the right boxes in another order: list them best score first."
        return f"it returned {array.tolist()}; want {want.tolist()} (greedy NMS, best score first)."


q1 = MultimaskChoice()
q2 = GridPoints()
q3 = KeptMasks()
q4 = BoxNms()
EXERCISES = [q1, q2, q3, q4]
