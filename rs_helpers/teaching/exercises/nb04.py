"""Exercises for notebook 04 (a VLM writes click prompts): from a click answer on the 0-1000 grid
to pixel clicks, and gIoU / cIoU from per-query intersections and unions."""
from __future__ import annotations

import numpy as np

from rs_helpers.teaching.exercises import Exercise, Incorrect, as_array, as_clicks, close, same_points

EXAMPLE_ANSWER = ('{"clicks": [{"x": 250, "y": 500, "label": 1}, {"x": 990, "y": 40, "label": 1}, '
                  '{"x": 1000, "y": 720, "label": 0}]}')
EXAMPLE_SIZE = (4000, 3000)  # width, height


def same_clicks(a: np.ndarray, b: np.ndarray, tol: float = 1.0 + 1e-9) -> bool:
    """Clicks match one to one (any order): positions within ``tol`` pixels, labels equal."""
    weight = np.array([1.0, 1.0, 1e6])
    return same_points(np.asarray(a, float) * weight, np.asarray(b, float) * weight, tol)


class ClicksToPixels(Exercise):
    name = "q1"
    title = "From a click answer to pixel coordinates"
    task = ("A model answered `answer_text` for an image **4000 pixels wide and 3000 high**. Its clicks are on the "
            "0-1000 grid: x from the left edge, y from the top edge, **0 is the first pixel and 1000 the last "
            "one**. Give the clicks in **pixels** as a list of `(x, y, label)` with integer x (column) and y (row). "
            "Use `json`, not `parse_clicks`. Any order is accepted; a pixel off by one from rounding is fine.")
    setup = '''import json

from rs_helpers.teaching.exercises.nb04 import EXAMPLE_ANSWER, EXAMPLE_SIZE

answer_text = EXAMPLE_ANSWER
width, height = EXAMPLE_SIZE
print(answer_text, "| image", width, "x", height)'''
    hint_text = ("`json.loads(answer_text)[\"clicks\"]` is a list of dicts. Grid value v on a side of n pixels is "
                 "pixel `round(v * (n - 1) / 1000)`: 0 -> 0 and 1000 -> n - 1. x goes with the width, y with the height.")
    solution_code = '''clicks = json.loads(answer_text)["clicks"]
answer = [(round(c["x"] * (width - 1) / 1000), round(c["y"] * (height - 1) / 1000), c["label"]) for c in clicks]
answer'''

    def __init__(self, answer_text: str = EXAMPLE_ANSWER, width: int = EXAMPLE_SIZE[0], height: int = EXAMPLE_SIZE[1]):
        self.text, self.width, self.height = answer_text, width, height

    def grid(self) -> np.ndarray:
        from rs_helpers.refer.clicks import parse_clicks

        return np.array([[c.x, c.y, c.label] for c in parse_clicks(self.text)], float)

    def expected(self) -> np.ndarray:
        from rs_helpers.refer.clicks import parse_clicks, to_pixels

        clicks = to_pixels(parse_clicks(self.text), self.width, self.height)
        return np.array([[c.x, c.y, c.label] for c in clicks], float)

    def _scaled(self, sx: float, sy: float, swap: bool = False) -> np.ndarray:
        grid = self.grid()
        xs, ys = grid[:, 0] * sx, grid[:, 1] * sy
        return np.stack([ys, xs, grid[:, 2]] if swap else [xs, ys, grid[:, 2]], axis=1)

    def verify(self, answer):
        clicks = as_clicks(answer, "a list of pixel clicks (x, y, label)")
        want = self.expected()
        w, h = self.width, self.height
        if len(clicks) != len(want):
            raise Incorrect(f"{len(clicks)} clicks; the answer holds {len(want)}.")
        if same_clicks(clicks, want):
            if ((clicks[:, 0] >= 0) & (clicks[:, 0] < w) & (clicks[:, 1] >= 0) & (clicks[:, 1] < h)).all():
                return "the same pixels as `to_pixels(parse_clicks(text), width, height)`."
        if same_points(clicks[:, :2], want[:, :2], 1.0 + 1e-9) and not same_clicks(clicks, want):
            raise Incorrect("the places are right but not the labels: keep each click's label (1 positive, 0 negative).")
        candidates = [
            (self._scaled(1, 1), "these are still grid units (0..1000): scale x by (width - 1) / 1000 and y by "
                                 "(height - 1) / 1000."),
            (self._scaled(1 / 1000, 1 / 1000), "these are fractions of the side: multiply x by (width - 1) and y by "
                                               "(height - 1)."),
            (self._scaled((w - 1) / 999, (h - 1) / 999), "the grid runs from 0 to 1000 inclusive: divide by 1000, "
                                                         "not 999."),
            (self._scaled((w - 1) / 1000, (h - 1) / 1000, swap=True), "x and y are swapped: give (x, y) = (column, row)."),
            (self._scaled((h - 1) / 1000, (w - 1) / 1000), "x scales with the width and y with the height, not the "
                                                           "other way round."),
            (self._scaled(w / 1000, h / 1000), f"1000 on the grid is the last pixel, index width - 1 = {w - 1}: scale "
                                               "by (width - 1) / 1000, or the click at 1000 falls outside the image."),
        ]
        for candidate, message in candidates:
            if same_clicks(clicks, candidate):
                raise Incorrect(message)
        outside = (clicks[:, 0] < 0) | (clicks[:, 0] >= w) | (clicks[:, 1] < 0) | (clicks[:, 1] >= h)
        if outside.any():
            x, y = clicks[outside][0, :2]
            raise Incorrect(f"pixel ({x:g}, {y:g}) lies outside the {w} x {h} image (x 0..{w - 1}, y 0..{h - 1}).")
        raise Incorrect("not the pixel clicks: pixel = round(grid * (side - 1) / 1000), x with the width, y with the height.")


def example_counts() -> tuple[list[int], list[int]]:
    """Pixel intersections and unions of five queries; the second one failed (no usable clicks):
    its prediction is empty, so its intersection is 0 and its union is the target's area."""
    return [120, 0, 900, 40, 300], [200, 150, 1000, 400, 320]


class GiouCiou(Exercise):
    name = "q2"
    title = "gIoU and cIoU"
    task = ("For five queries, `intersections[i]` and `unions[i]` are the pixel counts of prediction AND target and "
            "prediction OR target. Query 2 failed (no usable clicks: an empty prediction). Give **(gIoU, cIoU)** as "
            "fractions: gIoU is the mean of the per-query IoUs, cIoU the total intersection over the total union.")
    setup = '''import numpy as np

from rs_helpers.teaching.exercises.nb04 import example_counts

intersections, unions = example_counts()
print("intersections", intersections, "| unions", unions)'''
    hint_text = ("Per-query IoU is `intersection / union`; gIoU is their mean (the failure included, with IoU 0). "
                 "cIoU divides `sum(intersections)` by `sum(unions)`: large targets weigh more.")
    solution_code = '''inter, union = np.array(intersections), np.array(unions)
answer = (float(np.mean(inter / union)), float(inter.sum() / union.sum()))
answer'''

    def __init__(self, intersections: list[int] | None = None, unions: list[int] | None = None):
        if intersections is None:
            intersections, unions = example_counts()
        self.inter, self.union = np.asarray(intersections, float), np.asarray(unions, float)

    def expected(self) -> tuple[float, float]:
        from rs_helpers.evaluation.refer_metrics import ReferScores

        scores = ReferScores()
        for i, u in zip(self.inter, self.union):
            scores.add_counts(int(i), int(u))
        return scores.giou(), scores.ciou()

    def verify(self, answer):
        if isinstance(answer, dict):
            keys = {str(k).lower(): v for k, v in answer.items()}
            if "giou" not in keys or "ciou" not in keys:
                raise Incorrect('a dict needs the keys "gIoU" and "cIoU".')
            answer = (keys["giou"], keys["ciou"])
        values = as_array(answer, "two numbers (gIoU, cIoU)")
        if values.dtype.kind not in "iuf" or values.shape != (2,):
            raise Incorrect(f"want two numbers (gIoU, cIoU), got shape {values.shape}.")
        g, c = (float(v) for v in values)
        want_g, want_c = self.expected()
        tol = 1e-3
        if close(g, want_g, tol) and close(c, want_c, tol):
            return f"gIoU {want_g:.4f}, cIoU {want_c:.4f}."
        if close(g, want_c, tol) and close(c, want_g, tol):
            raise Incorrect("swapped: gIoU (the mean of per-query IoUs) comes first, then cIoU (pooled pixels).")
        if close(g, 100 * want_g, 0.1) or close(c, 100 * want_c, 0.1):
            raise Incorrect("these are percentages: give fractions between 0 and 1.")
        ok = self.inter > 0
        inverse = self.union[self.inter > 0] / self.inter[self.inter > 0]
        if close(c, self.union.sum() / self.inter.sum(), tol) or close(g, float(np.mean(inverse)), tol):
            raise Incorrect("that is union over intersection (above 1): IoU is intersection / union.")
        if not close(g, want_g, tol):
            if ok.any() and not ok.all() and close(g, float(np.mean(self.inter[ok] / self.union[ok])), tol):
                raise Incorrect("gIoU left out the failed query: a failure counts as IoU 0 and stays in the mean.")
            if close(g, want_c, tol):
                raise Incorrect("the gIoU is the cIoU: gIoU is the plain mean of the per-query IoUs.")
            raise Incorrect("gIoU is wrong: the mean of intersection / union over the queries.")
        if ok.any() and not ok.all() and close(c, self.inter.sum() / self.union[ok].sum(), tol):
            raise Incorrect("cIoU left out the failed query: its target area stays in the total union.")
        if close(c, want_g, tol):
            raise Incorrect("the cIoU is the gIoU: cIoU is total intersection / total union.")
        raise Incorrect("cIoU is wrong: sum of the intersections over the sum of the unions.")


q1 = ClicksToPixels()
q2 = GiouCiou()
EXERCISES = [q1, q2]
