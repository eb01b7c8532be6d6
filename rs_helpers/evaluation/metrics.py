"""Segmentation metrics from an accumulated confusion matrix.

Benchmarks report mIoU (multi-class sets) and foreground IoU (building, road and water
extraction). Both come from one confusion matrix summed over every image of a split (not an
average of per-image scores), with ``ignore_index`` pixels of the ground truth left out.

For class c: IoU = TP / (TP + FP + FN). Classes that occur neither in the ground truth nor in
the prediction have no IoU (NaN) and do not count in the mean, as in mmsegmentation.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from rs_helpers.errors import BadInputError

IGNORE = 255


class ConfusionMatrix:
    """Counts of (ground truth, prediction) pixel pairs for ``n_classes`` classes.

    ``matrix[g, p]``: pixels of true class g predicted as p. ``unmatched[g]``: pixels of true
    class g whose prediction is outside 0..K-1 (e.g. 255 from an 'ignore' fallback): they count
    as misses of g and as nobody's false positive.
    """

    def __init__(self, n_classes: int, ignore_index: int | None = IGNORE):
        if n_classes < 1:
            raise BadInputError("a confusion matrix needs at least one class")
        self.n_classes = int(n_classes)
        self.ignore_index = ignore_index
        self.matrix = np.zeros((self.n_classes, self.n_classes), np.int64)
        self.unmatched = np.zeros(self.n_classes, np.int64)

    def update(self, prediction: np.ndarray, target: np.ndarray) -> "ConfusionMatrix":
        """Add one image (or batch): integer arrays of the same shape."""
        pred = np.asarray(prediction)
        gt = np.asarray(target)
        if pred.shape != gt.shape:
            raise BadInputError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
        pred = pred.astype(np.int64, copy=False).ravel()
        gt = gt.astype(np.int64, copy=False).ravel()
        keep = (gt >= 0) & (gt < self.n_classes)
        if self.ignore_index is not None:
            keep &= gt != self.ignore_index
        pred, gt = pred[keep], gt[keep]
        inside = (pred >= 0) & (pred < self.n_classes)
        k = self.n_classes
        self.matrix += np.bincount(gt[inside] * k + pred[inside], minlength=k * k).reshape(k, k)
        self.unmatched += np.bincount(gt[~inside], minlength=k)
        return self

    def __iadd__(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        if other.n_classes != self.n_classes:
            raise BadInputError("cannot add confusion matrices of different sizes")
        self.matrix += other.matrix
        self.unmatched += other.unmatched
        return self

    @property
    def total(self) -> int:
        return int(self.matrix.sum() + self.unmatched.sum())

    def iou(self) -> np.ndarray:
        """Per-class IoU (NaN for classes absent from both ground truth and prediction)."""
        tp = np.diag(self.matrix).astype(np.float64)
        gt = self.matrix.sum(1) + self.unmatched
        pred = self.matrix.sum(0)
        union = gt + pred - tp
        return np.divide(tp, union, out=np.full(self.n_classes, np.nan), where=union > 0)

    def miou(self) -> float:
        """Mean IoU over classes that have one (NaN if none)."""
        values = self.iou()
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    def foreground_iou(self, foreground: int = 1) -> float:
        """IoU of one class (binary extraction benchmarks: the target, index 1)."""
        return float(self.iou()[foreground])

    def accuracy(self) -> float:
        """Overall pixel accuracy."""
        return float(np.trace(self.matrix) / self.total) if self.total else float("nan")

    def table(self, class_names: Sequence[str]) -> list[dict]:
        """One row per class: name, IoU, ground-truth pixels, predicted pixels."""
        if len(class_names) != self.n_classes:
            raise BadInputError(f"{len(class_names)} class names for {self.n_classes} classes")
        ious = self.iou()
        gt = self.matrix.sum(1) + self.unmatched
        pred = self.matrix.sum(0)
        return [{"class": name, "iou": None if np.isnan(ious[i]) else float(ious[i]),
                 "gt_pixels": int(gt[i]), "pred_pixels": int(pred[i])} for i, name in enumerate(class_names)]

    def to_dict(self, class_names: Sequence[str] | None = None) -> dict:
        names = list(class_names) if class_names is not None else [str(i) for i in range(self.n_classes)]
        miou = self.miou()
        return {"miou": None if np.isnan(miou) else miou, "accuracy": self.accuracy(),
                "per_class": self.table(names), "matrix": self.matrix.tolist(), "unmatched": self.unmatched.tolist()}


def confusion_matrix(prediction: np.ndarray, target: np.ndarray, n_classes: int,
                     ignore_index: int | None = IGNORE) -> ConfusionMatrix:
    """The confusion matrix of one prediction against its ground truth."""
    return ConfusionMatrix(n_classes, ignore_index).update(prediction, target)


def mean_iou(prediction: np.ndarray, target: np.ndarray, n_classes: int, ignore_index: int | None = IGNORE) -> float:
    return confusion_matrix(prediction, target, n_classes, ignore_index).miou()


def foreground_iou(prediction: np.ndarray, target: np.ndarray, ignore_index: int | None = IGNORE) -> float:
    """IoU of the foreground (value 1) of a binary prediction against a binary ground truth."""
    return confusion_matrix(prediction, target, 2, ignore_index).foreground_iou(1)


def format_table(class_names: Sequence[str], cm: ConfusionMatrix, title: str = "") -> str:
    """A plain-text per-class IoU table (percent) ending with the mIoU line."""
    rows = cm.table(class_names)
    width = max([len("class")] + [len(r["class"]) for r in rows])
    lines = [title] if title else []
    lines.append(f"{'class':<{width}}  {'IoU %':>7}  {'GT px':>10}  {'pred px':>10}")
    for r in rows:
        iou = "    n/a" if r["iou"] is None else f"{100 * r['iou']:7.2f}"
        lines.append(f"{r['class']:<{width}}  {iou}  {r['gt_pixels']:>10}  {r['pred_pixels']:>10}")
    miou = cm.miou()
    lines.append(f"{'mIoU':<{width}}  {'n/a' if np.isnan(miou) else f'{100 * miou:7.2f}':>7}")
    return "\n".join(lines)
