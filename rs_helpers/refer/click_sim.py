"""Click simulation: the clicks a careful annotator would give SAM, computed from a ground truth.

This is how LoRA training targets are made (``docs/method.md``, "Click simulation"):

1. The first click is positive, at the interior point farthest from the mask boundary (the
   argmax of the Euclidean distance transform of the ground-truth mask).
2. SAM (any ``predict`` callable) segments from all clicks so far; its mask is compared with
   the ground truth.
3. The next click goes where the error is largest: the distance transforms of the
   false-negative region (target SAM missed) and of the false-positive region (background SAM
   took) are computed, and the click goes to the larger maximum: positive for a false negative,
   negative for a false positive (equal maxima: the ``tie`` rule below).
4. Repeat until ``n_clicks`` clicks.

This is the protocol of RITM's click simulator (SamsungLabs/ritm_interactive_segmentation,
``isegm/inference/clicker.py``, ``Clicker._get_next_click``), which interactive-segmentation
benchmarks share; the tests check :func:`next_click` against a port of that function.

Conventions (fixed, so that the same image, mask and SAM always give the same clicks):

- **Outside the image counts as background.** Masks and error regions are padded with one ring
  of background before the distance transform (as in RITM's click simulator), so a region that
  touches the image border is "bounded" there too and clicks keep away from the border rather
  than landing on the last pixel row of a cut-off object.
- **Ties**: within a distance map, the first maximum in row-major order (smallest y, then
  smallest x) wins (as RITM's ``np.where(...)[0]``). Between the two maps, ``tie`` decides
  (:data:`TIE_RULES`): ``"negative"`` (default, RITM's rule: a positive click only when the
  false-negative maximum is strictly larger, so equal maxima give a negative click on the false
  positive) or ``"positive"`` (this package's rule before: equal maxima give a positive click).
- **No pixel is clicked twice**: pixels already clicked are set to 0 in both distance maps after
  the transform (RITM's ``not_clicked_map``; a click SAM ignored would otherwise be repeated).
- **SAM's masks**: :func:`predictor_fn` asks SAM under the ``multimask`` rule of
  :mod:`rs_helpers.sam.from_clicks`; the default "auto" keeps the best of three masks for the
  first click alone and asks for one mask from two clicks on, as segment-anything advises.
- **Early stop**: the loop stops before ``n_clicks`` when the prediction equals the ground truth
  (stop reason ``"perfect"``: there is no error left to click on), when the IoU reaches
  ``stop_iou`` if one is given (``"iou"``), or when the only errors are pixels already clicked
  (``"stuck"``). Otherwise the reason is ``"n_clicks"``. The clicks made so far are the target.

Clicks here are in **pixels** (``x`` = column, ``y`` = row); :meth:`ClickSimulation.grid_clicks`
gives them on the 0-1000 grid that models write.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.ndimage import distance_transform_edt

from rs_helpers.errors import BadInputError
from rs_helpers.refer.clicks import Click, to_grid
from rs_helpers.sam.from_clicks import DEFAULT_MULTIMASK

# predict(points_xy (N, 2) int pixel (x, y), labels (N,) int 1/0) -> H x W bool mask
Predict = Callable[[np.ndarray, np.ndarray], np.ndarray]
STOP_REASONS = ("n_clicks", "perfect", "iou", "stuck")
TIE_RULES = ("negative", "positive")  # what equal false-negative / false-positive maxima give
DEFAULT_TIE = "negative"  # RITM's rule (isegm/inference/clicker.py: is_positive = fn_max > fp_max)


def check_tie(tie: str) -> str:
    """``tie`` if it is one of :data:`TIE_RULES`, else a :class:`BadInputError`."""
    if tie not in TIE_RULES:
        raise BadInputError(f"tie rule {tie!r}: choose {' or '.join(TIE_RULES)} (negative is RITM's)")
    return tie


@dataclass
class ClickSimulation:
    """The result of :func:`simulate_clicks`.

    ``clicks``: pixel clicks in order; ``ious[k]``: IoU of the prediction from the first k+1
    clicks; ``distances[k]``: the distance-transform value (pixels) that chose click k;
    ``sources[k]``: "gt" (the first click), "fn" or "fp"; ``masks[k]``: the prediction after
    click k (only with ``keep_masks=True``); ``stop_reason``: one of ``STOP_REASONS``.
    """

    clicks: list[Click]
    ious: list[float]
    distances: list[float]
    sources: list[str]
    stop_reason: str
    shape: tuple[int, int]  # (height, width)
    masks: list[np.ndarray] | None = field(default=None, repr=False)

    @property
    def final_iou(self) -> float:
        return self.ious[-1] if self.ious else 0.0

    @property
    def points(self) -> np.ndarray:
        """(N, 2) int array of (x, y) pixels."""
        return np.array([[c.x, c.y] for c in self.clicks], np.int64).reshape(-1, 2)

    @property
    def labels(self) -> np.ndarray:
        return np.array([c.label for c in self.clicks], np.int64)

    def grid_clicks(self) -> list[Click]:
        """The clicks on the 0-1000 grid (what a model is trained to write)."""
        height, width = self.shape
        return to_grid(self.clicks, width, height)


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    union = np.logical_or(pred, gt).sum()
    return float(np.logical_and(pred, gt).sum() / union) if union else 1.0


def padded_distance(region: np.ndarray) -> np.ndarray:
    """Euclidean distance of every pixel of ``region`` to the nearest pixel outside it, where the
    outside of the image counts as outside the region (one ring of background is padded)."""
    padded = np.pad(np.asarray(region, bool), 1, mode="constant", constant_values=False)
    return distance_transform_edt(padded)[1:-1, 1:-1]


def farthest_point(distance: np.ndarray) -> tuple[int, int, float]:
    """(x, y, value) of the maximum of a distance map; the first in row-major order on ties."""
    index = int(np.argmax(distance))  # numpy returns the first occurrence
    y, x = divmod(index, distance.shape[1])
    return x, y, float(distance[y, x])


def first_click(gt_mask: np.ndarray) -> tuple[Click, float]:
    """The positive click farthest inside the ground truth, and its distance to the boundary."""
    gt = check_mask(gt_mask)
    x, y, value = farthest_point(padded_distance(gt))
    return Click(x, y, 1), value


def next_click(gt_mask: np.ndarray, pred_mask: np.ndarray, clicked: np.ndarray | None = None,
               tie: str = DEFAULT_TIE) -> tuple[Click, float, str] | None:
    """The corrective click for a prediction: ``(click, distance, "fn" | "fp")``, or None when no
    error pixel is left (perfect prediction, or only already ``clicked`` pixels are wrong).
    ``tie``: what equal maxima give, "negative" (RITM's rule) or "positive"."""
    check_tie(tie)
    gt, pred = np.asarray(gt_mask, bool), np.asarray(pred_mask, bool)
    fn, fp = gt & ~pred, pred & ~gt
    fn_dist, fp_dist = padded_distance(fn), padded_distance(fp)
    if clicked is not None:
        fn_dist[clicked] = 0.0
        fp_dist[clicked] = 0.0
    fn_x, fn_y, fn_value = farthest_point(fn_dist)
    fp_x, fp_y, fp_value = farthest_point(fp_dist)
    if max(fn_value, fp_value) <= 0:
        return None
    if fn_value > fp_value or (tie == "positive" and fn_value == fp_value):
        return Click(fn_x, fn_y, 1), fn_value, "fn"
    return Click(fp_x, fp_y, 0), fp_value, "fp"


def check_mask(gt_mask: np.ndarray) -> np.ndarray:
    """A 2-D boolean ground truth (nonzero = target); empty or malformed masks are bad input."""
    gt = np.asarray(gt_mask)
    if gt.ndim != 2 or gt.shape[0] < 1 or gt.shape[1] < 1:
        raise BadInputError(f"the ground-truth mask must be a 2-D array, got shape {gt.shape}")
    gt = gt > 0 if gt.dtype != bool else gt
    if not gt.any():
        raise BadInputError("the ground-truth mask is empty: there is nothing to click on")
    return gt


def simulate_clicks(gt_mask: np.ndarray, predict: Predict, n_clicks: int = 6, *,
                    stop_iou: float | None = None, keep_masks: bool = False,
                    tie: str = DEFAULT_TIE) -> ClickSimulation:
    """Simulate up to ``n_clicks`` clicks on ``gt_mask`` with ``predict`` in the loop.

    ``predict(points_xy, labels)`` gets every click so far ((N, 2) int pixel (x, y), (N,) int
    labels 1/0) and returns an H x W boolean mask (see :func:`sam_predictor_fn`). It is called
    once per click; ``ious[k]`` is the IoU after click k. See the module docstring for the
    protocol, the border and tie conventions (``tie``: "negative", RITM's, or "positive"), and
    the early stops.
    """
    check_tie(tie)
    gt = check_mask(gt_mask)
    if int(n_clicks) < 1:
        raise BadInputError(f"n_clicks must be at least 1, got {n_clicks}")
    click, distance = first_click(gt)
    clicks, distances, sources = [click], [distance], ["gt"]
    ious: list[float] = []
    masks: list[np.ndarray] = []
    clicked = np.zeros(gt.shape, bool)
    clicked[click.y, click.x] = True
    while True:
        points = np.array([[c.x, c.y] for c in clicks], np.int64)
        labels = np.array([c.label for c in clicks], np.int64)
        pred = np.asarray(predict(points, labels))
        if pred.shape != gt.shape:
            raise BadInputError(f"predict returned a mask of shape {pred.shape}, want {gt.shape}")
        pred = pred.astype(bool)
        ious.append(iou(pred, gt))
        if keep_masks:
            masks.append(pred)
        if np.array_equal(pred, gt):
            reason = "perfect"
            break
        if stop_iou is not None and ious[-1] >= stop_iou:
            reason = "iou"
            break
        if len(clicks) >= int(n_clicks):
            reason = "n_clicks"
            break
        step = next_click(gt, pred, clicked, tie=tie)
        if step is None:
            reason = "stuck"
            break
        click, distance, source = step
        clicks.append(click)
        distances.append(distance)
        sources.append(source)
        clicked[click.y, click.x] = True
    return ClickSimulation(clicks=clicks, ious=ious, distances=distances, sources=sources,
                           stop_reason=reason, shape=(int(gt.shape[0]), int(gt.shape[1])),
                           masks=masks if keep_masks else None)


# --------------------------------------------------------------------------- SAM in the loop
def predictor_fn(predictor, multimask: bool | str = DEFAULT_MULTIMASK) -> Predict:
    """A ``predict`` callable from a ``SamPredictor`` whose image is already set (reuse one
    predictor for every mask of the same image: the image embedding is computed once).
    ``multimask``: the rule of :mod:`rs_helpers.sam.from_clicks` ("auto", "always", "never")."""
    from rs_helpers.sam.from_clicks import multimask_mode, predict_mask

    multimask = multimask_mode(multimask)

    def predict(points_xy: np.ndarray, labels: np.ndarray) -> np.ndarray:
        clicks = [Click(int(x), int(y), int(label)) for (x, y), label in zip(points_xy, labels)]
        return predict_mask(predictor, clicks, multimask=multimask).mask

    return predict


def sam_predictor_fn(sam, image_rgb: np.ndarray, multimask: bool | str = DEFAULT_MULTIMASK) -> Predict:
    """A ``predict`` callable for :func:`simulate_clicks` from a SAM model and an image: the image
    is embedded once, here; every call then only runs SAM's prompt encoder and mask decoder.
    ``multimask``: as in :func:`predictor_fn` (default "auto", as ``rs-seg refer`` uses)."""
    from rs_helpers.sam.from_clicks import make_predictor

    return predictor_fn(make_predictor(sam, image_rgb), multimask=multimask)
