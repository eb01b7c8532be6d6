"""Referring / reasoning segmentation scores: gIoU, cIoU and precision at IoU thresholds.

- gIoU: the mean of the per-sample IoUs (RRSIS-D papers call it mIoU);
- cIoU: the cumulative intersection over the cumulative union (large targets weigh more);
- P@t: the fraction of samples whose IoU is at least t, for t = 0.5, 0.6, 0.7, 0.8, 0.9.

A sample where both the prediction and the target are empty scores IoU 1 (``empty_iou``).
A sample that failed (no usable clicks) counts as an empty prediction: IoU 0, and its target
area still enters the cumulative union.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rs_helpers.errors import BadInputError

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


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
    """Accumulates per-sample results; ``summary()`` gives gIoU, cIoU and P@t (fractions 0..1)."""

    empty_iou: float = 1.0
    ious: list[float] = field(default_factory=list)
    intersection: int = 0
    union: int = 0
    failures: int = 0

    def add(self, pred: np.ndarray, target: np.ndarray) -> float:
        """Score one prediction; returns its IoU."""
        inter, union = intersection_union(pred, target)
        return self.add_counts(inter, union)

    def add_counts(self, intersection: int, union: int) -> float:
        value = intersection / union if union else float(self.empty_iou)
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
        return self.intersection / self.union if self.union else float(self.empty_iou)

    def precision_at(self, threshold: float) -> float:
        return float(np.mean([v >= threshold for v in self.ious])) if self.ious else float("nan")

    def summary(self) -> dict:
        out = {"n": self.count, "failures": self.failures, "gIoU": self.giou(), "cIoU": self.ciou()}
        out.update({f"P@{t:.1f}": self.precision_at(t) for t in THRESHOLDS})
        return out
