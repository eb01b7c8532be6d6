"""Referring / reasoning segmentation scores: gIoU, cIoU and precision at IoU thresholds.

- gIoU: the mean of the per-sample IoUs (RRSIS-D papers call it mIoU);
- cIoU: the cumulative intersection over the cumulative union (large targets weigh more);
- P@t: the fraction of samples whose IoU is at least t, for t = 0.5, 0.6, 0.7, 0.8, 0.9.

By default (``ReferScores()``, the ``native`` protocol) a sample where both the prediction and
the target are empty scores IoU 1 (``empty_iou``), P@t counts IoU >= t and the IoU is exactly
I / U. The official evaluators differ on those three points; ``ReferScores.for_protocol`` takes
their rules from a :class:`rs_helpers.evaluation.protocols.ReferProtocol` (RMSIN scores the
both-empty sample 0; SegEarth-R1 and LISA count IoU > t on I / (U + 1e-5)), and
:func:`to_protocol_resolution` brings a prediction and its target to the size they are scored at.
A sample that failed (no usable clicks) counts as an empty prediction: IoU 0, and its target
area still enters the cumulative union.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from rs_helpers.errors import BadInputError

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
RESOLUTIONS = ("native", "square", "long-side-padded")


def intersection_union(pred: np.ndarray, target: np.ndarray) -> tuple[int, int]:
    """Pixel counts of ``pred & target`` and ``pred | target`` (both H x W, truthy = inside)."""
    pred, target = np.asarray(pred).astype(bool), np.asarray(target).astype(bool)
    if pred.shape != target.shape:
        raise BadInputError(f"prediction {pred.shape} and target {target.shape} differ in size")
    return int(np.logical_and(pred, target).sum()), int(np.logical_or(pred, target).sum())


def iou(pred: np.ndarray, target: np.ndarray, empty_iou: float = 1.0) -> float:
    inter, union = intersection_union(pred, target)
    return inter / union if union else float(empty_iou)


@dataclass
class ReferScores:
    """Accumulates per-sample results; ``summary()`` gives gIoU, cIoU and P@t (fractions 0..1).

    The rules (defaults: today's behaviour): ``empty_iou`` is the IoU of a sample with an empty
    union; ``strict`` makes P@t count IoU > t instead of >= t; ``eps`` is added to each sample's
    union (I / (U + eps)); ``ciou_eps`` to the cumulative union; ``empty_ciou`` is the cIoU when
    the cumulative union is 0 and ``ciou_eps`` is 0 (None: ``empty_iou``).
    """

    empty_iou: float = 1.0
    ious: list[float] = field(default_factory=list)
    intersection: int = 0
    union: int = 0
    failures: int = 0
    strict: bool = False
    eps: float = 0.0
    ciou_eps: float = 0.0
    empty_ciou: float | None = None

    @classmethod
    def for_protocol(cls, protocol) -> "ReferScores":
        """Empty scores that follow a :class:`~rs_helpers.evaluation.protocols.ReferProtocol`'s rules."""
        return cls(empty_iou=float(protocol.both_empty_iou), strict=bool(protocol.strict_precision),
                   eps=float(protocol.iou_eps), ciou_eps=float(protocol.ciou_eps), empty_ciou=protocol.empty_ciou)

    def sample_iou(self, intersection: int, union: int) -> float:
        """One sample's IoU under these rules."""
        return intersection / (union + self.eps) if union else float(self.empty_iou)

    def add(self, pred: np.ndarray, target: np.ndarray) -> float:
        """Score one prediction; returns its IoU."""
        inter, union = intersection_union(pred, target)
        return self.add_counts(inter, union)

    def add_counts(self, intersection: int, union: int) -> float:
        value = self.sample_iou(int(intersection), int(union))
        self.ious.append(value)
        self.intersection += int(intersection)
        self.union += int(union)
        return value

    def add_failure(self, target: np.ndarray) -> float:
        """A sample with no prediction: IoU 0 (or ``empty_iou`` if the target is empty too)."""
        self.failures += 1
        return self.add_counts(0, int(np.asarray(target).astype(bool).sum()))

    @property
    def count(self) -> int:
        return len(self.ious)

    def giou(self) -> float:
        return float(np.mean(self.ious)) if self.ious else float("nan")

    def ciou(self) -> float:
        if not self.ious:
            return float("nan")
        if self.union or self.ciou_eps:
            return self.intersection / (self.union + self.ciou_eps)
        return float(self.empty_iou if self.empty_ciou is None else self.empty_ciou)

    def precision_at(self, threshold: float) -> float:
        if not self.ious:
            return float("nan")
        hits = [v > threshold if self.strict else v >= threshold for v in self.ious]
        return float(np.mean(hits))

    def summary(self) -> dict:
        out = {"n": self.count, "failures": self.failures, "gIoU": self.giou(), "cIoU": self.ciou()}
        out.update({f"P@{t:.1f}": self.precision_at(t) for t in THRESHOLDS})
        return out


# --------------------------------------------------------------------------- scoring resolution
def resize_nearest_pil(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """A 0/1 mask resized with PIL's nearest neighbour, as torchvision's ``F.resize(target, (h, w),
    interpolation=Image.NEAREST)`` does on the PIL target in RMSIN's ``transforms.py``."""
    from PIL import Image

    mask = np.asarray(mask).astype(np.uint8)
    if mask.shape == (height, width):
        return mask.astype(bool)
    return np.asarray(Image.fromarray(mask).resize((width, height), Image.NEAREST)) > 0


def resize_nearest_cv2(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """OpenCV's ``INTER_NEAREST`` (source index ``floor(x * src / dst)``, its ``resizeNN``) in numpy,
    so that the scoring needs no OpenCV."""
    mask = np.asarray(mask)
    src_h, src_w = mask.shape
    if (src_h, src_w) == (height, width):
        return mask.astype(bool)
    fx, fy = 1.0 / (width / src_w), 1.0 / (height / src_h)  # OpenCV: ifx = 1 / inv_scale_x
    xs = np.minimum(np.floor(np.arange(width) * fx).astype(np.int64), src_w - 1)
    ys = np.minimum(np.floor(np.arange(height) * fy).astype(np.int64), src_h - 1)
    return mask[ys[:, None], xs[None, :]].astype(bool)


def long_side_padded(mask: np.ndarray, size: int) -> np.ndarray:
    """SegEarth-R1's ``preprocess_mask``: the long side resized to ``size`` (nearest, the short side
    ``int(h * size / w)``), then zero padding split evenly around it into a ``size`` square."""
    h, w = np.asarray(mask).shape
    if w > h:
        new_w, new_h = size, int(h * (size / w))
    else:
        new_h, new_w = size, int(w * (size / h))
    resized = resize_nearest_cv2(mask, max(new_h, 1), max(new_w, 1))
    out = np.zeros((size, size), bool)
    top, left = (size - resized.shape[0]) // 2, (size - resized.shape[1]) // 2
    out[top:top + resized.shape[0], left:left + resized.shape[1]] = resized
    return out


def scoring_shape(shape: tuple, protocol=None) -> tuple[int, int]:
    """The (height, width) a target of ``shape`` is scored at under ``protocol`` (None: native)."""
    resolution = getattr(protocol, "resolution", "native")
    size = int(getattr(protocol, "size", 0) or 0)
    if resolution == "native":
        return tuple(int(v) for v in shape[:2])
    if resolution in ("square", "long-side-padded"):
        return size, size
    raise BadInputError(f"unknown scoring resolution {resolution!r}; choose one of {', '.join(RESOLUTIONS)}")


def to_protocol_resolution(pred: np.ndarray, target: np.ndarray, protocol=None) -> tuple[np.ndarray, np.ndarray]:
    """The prediction and target (bool H x W) at the protocol's scoring resolution.

    ``native``: unchanged, and they must have the same size. ``square`` (RMSIN): both resized to
    ``size`` x ``size`` with nearest neighbour (the target as RMSIN resizes it; the prediction, which
    RMSIN's model makes at that size, the same way). ``long-side-padded`` (SegEarth-R1): both brought
    into its ``size`` square frame. A prediction already at the scoring size (the frame an official
    model predicts in) is taken as it is; any other size mismatch is a :class:`BadInputError`.
    """
    pred, target = np.asarray(pred).astype(bool), np.asarray(target).astype(bool)
    if pred.ndim != 2 or target.ndim != 2:
        raise BadInputError(f"masks must be 2-D, got prediction {pred.shape} and target {target.shape}")
    resolution = getattr(protocol, "resolution", "native")
    frame = scoring_shape(target.shape, protocol)
    if pred.shape != target.shape and not (resolution != "native" and pred.shape == frame):
        raise BadInputError(f"prediction {pred.shape[1]}x{pred.shape[0]} and target "
                            f"{target.shape[1]}x{target.shape[0]} differ in size")
    if resolution == "native":
        return pred, target
    size = frame[0]
    if resolution == "square":
        bring = lambda m: resize_nearest_pil(m, size, size)  # noqa: E731
    else:
        bring = lambda m: long_side_padded(m, size)  # noqa: E731
    return (pred if pred.shape == frame else bring(pred)), bring(target)


def finite_or_none(value: float) -> float | None:
    """None for NaN (a summary with no samples), else the float."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
