"""Exercises for notebook 03 (evaluation): IoU per class from a confusion matrix, mIoU with an
ignore index, and why benchmarks sum confusion matrices over a dataset."""
from __future__ import annotations

import numpy as np

from rs_helpers.teaching.exercises import Exercise, Incorrect, as_array, as_number, close

IGNORE = 255

EXAMPLE_MATRIX = np.array([[50, 5, 5],
                           [10, 30, 0],
                           [5, 5, 20]])


def _per_class(tp, gt, pred):
    return {
        "recall": tp / gt,
        "precision": tp / pred,
        "dice": 2 * tp / (gt + pred),
        "half": tp / (gt + pred),
        "inverse": (gt + pred - tp) / tp,
    }


class PerClassIoU(Exercise):
    name = "q1"
    title = "IoU per class from a confusion matrix"
    task = ("`cm` is the confusion matrix of a 3-class prediction: `cm[g, p]` counts the pixels of true class g "
            "predicted as p. Compute the **IoU of each class**, TP / (TP + FP + FN), as an array of 3 "
            "fractions (0 to 1).")
    setup = '''import numpy as np

from rs_helpers.teaching.exercises.nb03 import EXAMPLE_MATRIX

cm = EXAMPLE_MATRIX.copy()
print(cm)'''
    hint_text = ("TP of class c is `cm[c, c]` (the diagonal, `np.diag(cm)`). Row c sums to all true-c pixels "
                 "(TP + FN), column c to all predicted-c pixels (TP + FP). The union counts TP once.")
    solution_code = '''tp = np.diag(cm)
union = cm.sum(axis=1) + cm.sum(axis=0) - tp
answer = tp / union'''

    def __init__(self, matrix: np.ndarray | None = None):
        self.matrix = np.asarray(EXAMPLE_MATRIX if matrix is None else matrix)

    def expected(self) -> np.ndarray:
        from rs_helpers.evaluation.metrics import ConfusionMatrix

        cm = ConfusionMatrix(len(self.matrix))
        cm.matrix = self.matrix.astype(np.int64)
        return cm.iou()

    def verify(self, answer):
        k = len(self.matrix)
        values = as_array(answer, f"an array of {k} IoUs")
        if values.dtype.kind not in "iuf" or values.shape != (k,):
            raise Incorrect(f"want one IoU per class: an array of shape ({k},), got {values.shape}.")
        values = values.astype(float)
        want = self.expected()
        if np.allclose(values, want, atol=1e-3):
            return "per-class IoU: " + ", ".join(f"{v:.3f}" for v in want)
        if np.allclose(values, 100 * want, atol=0.1):
            raise Incorrect("these are percentages: give fractions between 0 and 1.")
        tp = np.diag(self.matrix).astype(float)
        gt, pred = self.matrix.sum(1).astype(float), self.matrix.sum(0).astype(float)
        named = _per_class(tp, gt, pred)
        messages = {
            "inverse": "that is union over intersection (values above 1): IoU is intersection / union.",
            "dice": "that is the Dice score (F1), 2 TP / (2 TP + FP + FN); IoU is TP / (TP + FP + FN).",
            "half": "the union counts TP twice: row sum + column sum includes the diagonal twice, subtract TP once.",
            "recall": "that is recall, TP / (TP + FN): the union also holds the false positives (the column sum).",
            "precision": "that is precision, TP / (TP + FP): the union also holds the false negatives (the row sum).",
        }
        for key, message in messages.items():
            if np.allclose(values, named[key], atol=1e-3):
                raise Incorrect(message)
        raise Incorrect("not TP / (TP + FP + FN) per class: TP = diagonal, TP + FN = row sum, TP + FP = column sum.")


def example_pair() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(prediction, ground_truth, class_names)`` of a 6 x 8 image; the ground truth has 4 unlabelled
    pixels (255) and class water occurs in neither map."""
    gt = np.array([[0, 0, 0, 1, 1, 1, 2, 2],
                   [0, 0, 0, 1, 1, 1, 2, 2],
                   [0, 0, 255, 255, 1, 1, 2, 2],
                   [0, 0, 255, 255, 1, 1, 2, 2],
                   [0, 0, 0, 0, 0, 0, 2, 2],
                   [0, 0, 0, 0, 0, 0, 2, 2]], np.uint8)
    pred = np.array([[0, 0, 1, 1, 1, 1, 2, 2],
                     [0, 0, 0, 1, 1, 1, 2, 0],
                     [0, 0, 1, 1, 1, 0, 2, 2],
                     [0, 2, 1, 1, 1, 1, 2, 2],
                     [0, 0, 0, 0, 0, 1, 2, 2],
                     [0, 0, 0, 0, 0, 0, 0, 2]], np.uint8)
    return pred, gt, ["background", "building", "road", "water"]


def _naive_ious(pred: np.ndarray, gt: np.ndarray, k: int, ignore: bool) -> np.ndarray:
    keep = gt != IGNORE if ignore else np.ones(gt.shape, bool)
    out = np.full(k, np.nan)
    for c in range(k):
        p, g = (pred == c) & keep, (gt == c) & keep
        union = (p | g).sum()
        if union:
            out[c] = (p & g).sum() / union
    return out


class MeanIoUWithIgnore(Exercise):
    name = "q2"
    title = "mIoU with an ignore index"
    task = ("`pred` and `gt` are a prediction and its ground truth over the 4 classes of `class_names`; "
            "ground-truth pixels equal to **255 are unlabelled** and must not count at all. Compute the "
            "**mIoU** (a fraction): the mean IoU over the classes that occur in the ground truth or the "
            "prediction (a class in neither has no IoU and is left out of the mean, as in mmsegmentation).")
    setup = '''import numpy as np

from rs_helpers.teaching.exercises.nb03 import example_pair

pred, gt, class_names = example_pair()
print("ground truth:\\n", gt, "\\nprediction:\\n", pred)'''
    hint_text = ("Keep only `valid = gt != 255`, then for each class c: intersection = `((pred == c) & (gt == c))` "
                 "and union = `((pred == c) | (gt == c))`, both counted over valid pixels. A class whose union is 0 "
                 "gets NaN; `np.nanmean` leaves it out. (`rs_helpers.evaluation.metrics.mean_iou` does all this.)")
    solution_code = '''valid = gt != 255
ious = []
for c in range(len(class_names)):
    p, g = (pred == c) & valid, (gt == c) & valid
    union = (p | g).sum()
    ious.append((p & g).sum() / union if union else np.nan)
answer = float(np.nanmean(ious))'''

    def __init__(self, pred: np.ndarray | None = None, gt: np.ndarray | None = None, n_classes: int | None = None):
        if pred is None:
            pred, gt, names = example_pair()
            n_classes = len(names)
        self.pred, self.gt, self.k = np.asarray(pred), np.asarray(gt), int(n_classes)

    def expected(self) -> float:
        from rs_helpers.evaluation.metrics import mean_iou

        return mean_iou(self.pred, self.gt, self.k, IGNORE)

    def verify(self, answer):
        value = as_number(answer, "one number, the mIoU")
        want = self.expected()
        if close(value, want, 1e-3):
            return f"mIoU {want:.4f}."
        with_ignore = _naive_ious(self.pred, self.gt, self.k, ignore=True)
        no_ignore = _naive_ious(self.pred, self.gt, self.k, ignore=False)
        valid = self.gt != IGNORE
        candidates = [
            (100 * want, "that is a percentage: give a fraction between 0 and 1."),
            (float(np.nan_to_num(with_ignore).mean()),
             "a class that occurs in neither map has no IoU: leave it out of the mean (`np.nanmean`), do not count it as 0."),
            (float(np.nanmean(no_ignore)),
             "you counted the unlabelled pixels (255): predictions there became false positives. Leave out every "
             "pixel whose ground truth is 255."),
            (float(np.nan_to_num(no_ignore).mean()),
             "two slips: the unlabelled pixels (255) must be left out, and a class in neither map has no IoU "
             "(leave it out of the mean)."),
            (float((self.pred[valid] == self.gt[valid]).mean()), "that is pixel accuracy, not the mean IoU."),
            (float((self.pred == self.gt).mean()), "that is pixel accuracy (over all pixels), not the mean IoU."),
        ]
        for candidate, message in candidates:
            if close(value, candidate, 1e-3):
                raise Incorrect(message)
        raise Incorrect("not the mIoU: per class intersection / union over the labelled pixels, then the mean "
                        "over the classes that have an IoU.")


def example_dataset() -> list[tuple[np.ndarray, np.ndarray]]:
    """Two (prediction, ground truth) pairs of 4 x 4 pixels, classes 0 (background) and 1 (building):
    the first image has a single building pixel, which the prediction misses."""
    gt_a = np.zeros((4, 4), np.uint8)
    gt_a[1, 2] = 1
    pred_a = np.zeros((4, 4), np.uint8)
    gt_b = np.zeros((4, 4), np.uint8)
    gt_b[:, 2:] = 1
    pred_b = gt_b.copy()
    pred_b[0, 2:] = 0
    return [(pred_a, gt_a), (pred_b, gt_b)]


class DatasetMeanIoU(Exercise):
    name = "q3"
    title = "mIoU of a dataset"
    task = ("`pairs` holds two (prediction, ground truth) images with classes 0 (background) and 1 (building). "
            "Compute the **dataset mIoU the way benchmarks do**: sum the confusion matrices (or the per-class "
            "intersections and unions) over all images first, then take IoU per class and the mean over classes.")
    setup = '''import numpy as np

from rs_helpers.teaching.exercises.nb03 import example_dataset
from rs_helpers.evaluation import ConfusionMatrix

pairs = example_dataset()
for pred, gt in pairs:
    print("gt:\\n", gt, "\\npred:\\n", pred)'''
    hint_text = ("`cm = ConfusionMatrix(2)`, then `cm.update(pred, gt)` for every pair, then `cm.miou()`. By hand: "
                 "add up each class's intersection and union over the images, divide at the end.")
    solution_code = '''cm = ConfusionMatrix(2)
for pred, gt in pairs:
    cm.update(pred, gt)
answer = cm.miou()'''

    def __init__(self, pairs: list[tuple[np.ndarray, np.ndarray]] | None = None, n_classes: int = 2):
        self.pairs = example_dataset() if pairs is None else pairs
        self.k = n_classes

    def expected(self) -> float:
        from rs_helpers.evaluation.metrics import ConfusionMatrix

        cm = ConfusionMatrix(self.k)
        for pred, gt in self.pairs:
            cm.update(pred, gt)
        return cm.miou()

    def verify(self, answer):
        from rs_helpers.evaluation.metrics import mean_iou

        value = as_number(answer, "one number, the dataset mIoU")
        want = self.expected()
        if close(value, want, 1e-3):
            return f"dataset mIoU {want:.4f} (the mean of per-image mIoUs would differ)."
        per_image = [mean_iou(p, g, self.k) for p, g in self.pairs]
        total = sum(int((p == g).sum()) for p, g in self.pairs)
        pixels = sum(g.size for _, g in self.pairs)
        candidates = [
            (100 * want, "that is a percentage: give a fraction between 0 and 1."),
            (float(np.mean(per_image)), "that is the mean of the per-image mIoUs: an image with a few pixels of a "
                                        "class then weighs as much as one full of it. Sum the counts over the "
                                        "dataset first, then divide."),
            (total / pixels, "that is pixel accuracy, not the mean IoU."),
        ]
        for candidate, message in candidates:
            if close(value, candidate, 1e-3):
                raise Incorrect(message)
        raise Incorrect("not the dataset mIoU: accumulate one confusion matrix over both images, then IoU per "
                        "class and their mean.")


q1 = PerClassIoU()
q2 = MeanIoUWithIgnore()
q3 = DatasetMeanIoU()
EXERCISES = [q1, q2, q3]
