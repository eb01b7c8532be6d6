"""Exercises for notebook 04 (evaluation), as function problems checked on hidden inputs
(:mod:`rs_helpers.teaching.exercises.function_problems`): IoU per class from a confusion matrix, mIoU
with an ignore index, and the dataset mIoU that benchmarks report (one confusion matrix summed over
the images). Each is written without the package's ``ConfusionMatrix`` / ``confusion_matrix`` /
``mean_iou`` (:mod:`rs_helpers.evaluation.metrics`), which give the reference answers.
"""
from __future__ import annotations

import numpy as np

from rs_helpers.teaching.exercises import Incorrect, as_array, as_number, close
from rs_helpers.teaching.exercises.array_problems import ArrayFunctionExercise

IGNORE = 255
METRICS = ("rs_helpers.evaluation.metrics:ConfusionMatrix", "rs_helpers.evaluation.metrics:confusion_matrix",
           "rs_helpers.evaluation.metrics:mean_iou", f"{__name__}:_matrix_iou", f"{__name__}:_naive_ious")

EXAMPLE_MATRIX = np.array([[50, 5, 5],
                           [10, 30, 0],
                           [5, 5, 20]])


def _matrix_iou(matrix: np.ndarray) -> np.ndarray:
    from rs_helpers.evaluation.metrics import ConfusionMatrix

    cm = ConfusionMatrix(len(matrix))
    cm.matrix = np.asarray(matrix).astype(np.int64)
    return cm.iou()


def _same(a: np.ndarray, b: np.ndarray, tol: float = 1e-6) -> bool:
    """Equal within ``tol``, NaN where the other is NaN."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
        return False
    finite = ~np.isnan(a)
    return bool(np.allclose(a[finite], b[finite], atol=tol, rtol=0))


def _per_class(tp, gt, pred):
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "recall": tp / gt,
            "precision": tp / pred,
            "dice": 2 * tp / (gt + pred),
            "half": tp / (gt + pred),
            "inverse": (gt + pred - tp) / tp,
        }


def _random_matrix(rng, k: int, scale: int, absent: int | None = None) -> np.ndarray:
    matrix = rng.integers(0, scale, (k, k)) + np.diag(rng.integers(scale, 4 * scale, k))
    if absent is not None:  # a class in neither the ground truth nor the prediction
        matrix[absent, :] = 0
        matrix[:, absent] = 0
    return matrix


class PerClassIoU(ArrayFunctionExercise):
    name = "q1"
    title = "IoU per class from a confusion matrix"
    function_name = "per_class_iou"
    forbidden = METRICS
    task = ("A confusion matrix `cm` of K classes counts pixels: `cm[g, p]` is the number of pixels of true class g "
            "predicted as p. Write `per_class_iou(cm)` returning the **IoU of each class**, TP / (TP + FP + FN), as "
            "an array of K fractions (0 to 1); a class that occurs in neither the ground truth nor the prediction "
            "has no IoU: give it NaN. Write it with NumPy, **without** the package's `ConfusionMatrix` (the check "
            "refuses it). Then set `answer = per_class_iou`: the check calls it on matrices of its own, with 2 to "
            "5 classes and an absent class.")
    setup = '''import numpy as np

from rs_helpers.teaching.exercises.nb04 import EXAMPLE_MATRIX

cm = EXAMPLE_MATRIX.copy()
print(cm)'''
    hint_text = ("Read TP, FP and FN of class c off the matrix: TP is on the diagonal; the other entries of row c "
                 "and of column c are the misses and the false alarms. Which is which?")
    hints = (hint_text, "Row c sums to every true-c pixel (TP + FN), column c to every predicted-c pixel (TP + FP), "
                        "so their sum counts TP twice. `np.divide(..., out=np.full(k, np.nan), where=union > 0)` "
                        "leaves NaN where the union is empty.")
    solution_code = '''# per_class_iou(cm) -> K IoUs (NaN for an absent class); then answer = per_class_iou
def per_class_iou(cm):
    cm = np.asarray(cm, dtype=float)
    tp = np.diag(cm)
    union = cm.sum(axis=1) + cm.sum(axis=0) - tp
    return np.divide(tp, union, out=np.full(len(cm), np.nan), where=union > 0)

print(per_class_iou(cm).round(3))
answer = per_class_iou'''

    def cases(self):
        rng = np.random.default_rng(130)
        return [(_random_matrix(rng, 4, 20),), (_random_matrix(rng, 5, 50, absent=3),),
                (np.array([[90, 10], [30, 70]]),), (_random_matrix(rng, 3, 2000),)]

    def expected(self, matrix):
        return _matrix_iou(matrix)

    def compare(self, got, want, args):
        (matrix,) = args
        k = len(matrix)
        where = f"for {self.describe(args)}"
        values = as_array(got, f"an array of {k} IoUs")
        if values.dtype.kind not in "iuf" or values.shape != (k,):
            raise Incorrect(f"{where}: want one IoU per class, an array of shape ({k},), got {values.shape}.")
        values = values.astype(float)
        if _same(values, want, 1e-6):
            return
        if _same(values, 100 * want, 1e-4):
            raise Incorrect(f"{where}: these are percentages; give fractions between 0 and 1.")
        if np.isnan(want).any() and _same(values, np.nan_to_num(want), 1e-6):
            raise Incorrect(f"{where}: a class in neither the ground truth nor the prediction has no IoU: give it "
                            "NaN, not 0 (a 0 would count as a failure in the mean).")
        tp = np.diag(matrix).astype(float)
        gt, pred = matrix.sum(1).astype(float), matrix.sum(0).astype(float)
        named = _per_class(tp, gt, pred)
        messages = {
            "inverse": "that is union over intersection (values above 1): IoU is intersection / union.",
            "dice": "that is the Dice score (F1), 2 TP / (2 TP + FP + FN); IoU is TP / (TP + FP + FN).",
            "half": "the union counts TP twice: row sum + column sum includes the diagonal twice, subtract TP once.",
            "recall": "that is recall, TP / (TP + FN): the union also holds the false positives (the column sum).",
            "precision": "that is precision, TP / (TP + FP): the union also holds the false negatives (the row sum).",
        }
        finite = ~np.isnan(want)
        for key, message in messages.items():
            if np.allclose(values[finite], named[key][finite], atol=1e-6, rtol=0):
                raise Incorrect(f"{where}: {message}")
        raise Incorrect(f"{where}: not TP / (TP + FP + FN) per class (TP = diagonal, TP + FN = row sum, TP + FP = "
                        "column sum).")


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


def _random_pair(rng, shape, k: int, ignored: float, present: int | None = None):
    """A noisy prediction of a blocky ground truth with classes 0..present-1 and ``ignored`` 255s."""
    present = k if present is None else present
    coarse = rng.integers(0, present, (shape[0] // 3 + 1, shape[1] // 3 + 1))
    gt = np.kron(coarse, np.ones((3, 3), int))[:shape[0], :shape[1]].astype(np.uint8)
    pred = gt.copy()
    flip = rng.random(shape) < 0.3
    pred[flip] = rng.integers(0, present, int(flip.sum()))
    gt[rng.random(shape) < ignored] = IGNORE
    return pred, gt


class MeanIoUWithIgnore(ArrayFunctionExercise):
    name = "q2"
    title = "mIoU with an ignore index"
    function_name = "miou"
    forbidden = METRICS
    task = ("`pred` and `gt` are a prediction and its ground truth (H x W class indices 0..n_classes-1); "
            "ground-truth pixels equal to **255 are unlabelled** and must not count at all, whatever was predicted "
            "there. Write `miou(pred, gt, n_classes)` returning the **mIoU** (a fraction): the mean IoU over the "
            "classes that occur in the ground truth or the prediction (a class in neither has no IoU and is left "
            "out of the mean, as in mmsegmentation). Write it **without** the package's `mean_iou`, "
            "`confusion_matrix` or `ConfusionMatrix`. Then set `answer = miou`: the check calls it on maps of its "
            "own, with unlabelled pixels and an absent class.")
    setup = '''import numpy as np

from rs_helpers.teaching.exercises.nb04 import example_pair

pred, gt, class_names = example_pair()
print("ground truth:\\n", gt, "\\nprediction:\\n", pred)'''
    hint_text = ("Decide first which pixels take part at all (the labelled ones), then work class by class: the "
                 "pixels of class c in the prediction and in the ground truth are two regions; IoU compares them.")
    hints = (hint_text, "Count only where `gt != 255`: class c's intersection is where both maps say c (`&`), its "
                        "union where either does (`|`). A class with an empty union gets NaN, which `np.nanmean` "
                        "leaves out of the mean.")
    solution_code = '''# miou(pred, gt, n_classes) -> the mIoU; then answer = miou
def miou(pred, gt, n_classes):
    valid = gt != 255
    ious = []
    for c in range(n_classes):
        p, g = (pred == c) & valid, (gt == c) & valid
        union = (p | g).sum()
        ious.append((p & g).sum() / union if union else np.nan)
    return float(np.nanmean(ious))

print(f"mIoU {miou(pred, gt, len(class_names)):.4f}")
answer = miou'''

    def cases(self):
        rng = np.random.default_rng(131)
        return [_random_pair(rng, (12, 15), 5, 0.15, present=4) + (5,),  # class 4 in neither map
                _random_pair(rng, (9, 9), 4, 0.1) + (4,),
                _random_pair(rng, (20, 16), 3, 0.0) + (3,),
                _random_pair(rng, (10, 14), 6, 0.3, present=5) + (6,)]

    def expected(self, pred, gt, n_classes):
        from rs_helpers.evaluation.metrics import mean_iou

        return mean_iou(pred, gt, n_classes, IGNORE)

    def compare(self, got, want, args):
        pred, gt, k = args
        where = f"for {self.describe(args)}"
        if isinstance(got, np.ndarray) and got.size > 1:
            raise Incorrect(f"{where} it returned an array of shape {got.shape}: return one number, the mean over "
                            "the classes.")
        value = as_number(got, "one number, the mIoU")
        if close(value, want, 1e-6):
            return
        with_ignore = _naive_ious(pred, gt, k, ignore=True)
        no_ignore = _naive_ious(pred, gt, k, ignore=False)
        valid = gt != IGNORE
        candidates = [
            (100 * want, "that is a percentage: give a fraction between 0 and 1."),
            (float(np.nan_to_num(with_ignore).mean()),
             "a class that occurs in neither map has no IoU: leave it out of the mean (`np.nanmean`), do not count "
             "it as 0."),
            (float(np.nanmean(no_ignore)),
             "you counted the unlabelled pixels (255): predictions there became false positives. Leave out every "
             "pixel whose ground truth is 255."),
            (float(np.nan_to_num(no_ignore).mean()),
             "two slips: the unlabelled pixels (255) must be left out, and a class in neither map has no IoU (leave "
             "it out of the mean)."),
            (float((pred[valid] == gt[valid]).mean()), "that is pixel accuracy, not the mean IoU."),
            (float((pred == gt).mean()), "that is pixel accuracy (over all pixels), not the mean IoU."),
        ]
        for candidate, message in candidates:
            if close(value, candidate, 1e-6) and not close(candidate, want, 1e-6):
                raise Incorrect(f"{where} it returned {value:.4f}: {message}")
        raise Incorrect(f"{where} it returned {value:.4f}; want {want:.4f}: per class intersection / union over the "
                        "labelled pixels, then the mean over the classes that have an IoU.")


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


class DatasetMeanIoU(ArrayFunctionExercise):
    name = "q3"
    title = "mIoU of a dataset"
    function_name = "dataset_miou"
    forbidden = METRICS
    task = ("`pairs` is a list of (prediction, ground truth) images, of any sizes, with classes 0..n_classes-1 and "
            "255 for unlabelled ground-truth pixels. Write `dataset_miou(pairs, n_classes)` returning the **dataset "
            "mIoU the way benchmarks compute it**: the per-class counts are summed over *all images first*, then "
            "each class's IoU is taken from the totals, and the mean runs over the classes that have one. Write it "
            "**without** the package's `ConfusionMatrix`, `confusion_matrix` or `mean_iou`. Then set `answer = "
            "dataset_miou`: the check calls it on data sets of its own, with images of different sizes and a class "
            "that only one image holds.")
    setup = '''import numpy as np

from rs_helpers.teaching.exercises.nb04 import example_dataset

pairs = example_dataset()
for pred, gt in pairs:
    print("gt:\\n", gt, "\\npred:\\n", pred)'''
    hint_text = ("Keep running totals per class across the loop over images: what must be added up so that the "
                 "IoU can be computed once, at the end?")
    hints = (hint_text, "Two arrays of length n_classes, the intersections and the unions, grow image by image "
                        "(the labelled pixels only); divide them after the loop. Dividing per image and averaging "
                        "is exactly what benchmarks avoid.")
    solution_code = '''# dataset_miou(pairs, n_classes) -> the dataset mIoU; then answer = dataset_miou
def dataset_miou(pairs, n_classes):
    inter, union = np.zeros(n_classes), np.zeros(n_classes)
    for pred, gt in pairs:
        valid = gt != 255
        for c in range(n_classes):
            p, g = (pred == c) & valid, (gt == c) & valid
            inter[c] += (p & g).sum()
            union[c] += (p | g).sum()
    ious = np.divide(inter, union, out=np.full(n_classes, np.nan), where=union > 0)
    return float(np.nanmean(ious))

print(f"dataset mIoU {dataset_miou(pairs, 2):.4f}")
answer = dataset_miou'''

    def cases(self):
        rng = np.random.default_rng(132)
        small = _random_pair(rng, (4, 5), 3, 0.0, present=3)
        large = _random_pair(rng, (18, 20), 3, 0.1, present=2)  # no class 2 here
        medium = _random_pair(rng, (9, 12), 3, 0.2, present=3)
        sparse_gt = np.zeros((6, 6), np.uint8)
        sparse_gt[2, 3] = 1  # one building pixel, missed
        dense_gt = np.zeros((10, 10), np.uint8)
        dense_gt[:, 4:] = 1
        dense_pred = dense_gt.copy()
        dense_pred[:2, 4:] = 0
        return [([small, large, medium], 3), ([(np.zeros((6, 6), np.uint8), sparse_gt), (dense_pred, dense_gt)], 2),
                ([large], 3), ([medium, small], 4)]

    def describe(self, args):
        pairs, k = args
        sizes = ", ".join("x".join(map(str, gt.shape)) for _, gt in pairs)
        return f"`dataset_miou(<{len(pairs)} pairs: {sizes}>, {k})`"

    def expected(self, pairs, n_classes):
        from rs_helpers.evaluation.metrics import ConfusionMatrix

        cm = ConfusionMatrix(n_classes)
        for pred, gt in pairs:
            cm.update(pred, gt)
        return cm.miou()

    def compare(self, got, want, args):
        from rs_helpers.evaluation.metrics import mean_iou

        pairs, k = args
        where = f"for {self.describe(args)}"
        value = as_number(got, "one number, the dataset mIoU")
        if close(value, want, 1e-6):
            return
        per_image = [mean_iou(p, g, k) for p, g in pairs]
        per_class = np.array([_naive_ious(p, g, k, ignore=True) for p, g in pairs])
        with np.errstate(all="ignore"):
            class_means = np.nanmean(per_class, axis=0)
        valid = [g != IGNORE for _, g in pairs]
        correct = sum(int((p[v] == g[v]).sum()) for (p, g), v in zip(pairs, valid))
        candidates = [
            (100 * want, "that is a percentage: give a fraction between 0 and 1."),
            (float(np.mean(per_image)), "that is the mean of the per-image mIoUs: an image with a few pixels of a "
                                        "class then weighs as much as one full of it. Sum the counts over the "
                                        "data set first, then divide."),
            (float(np.nanmean(class_means)), "that averages each class's per-image IoUs: sum the intersections and "
                                             "the unions over the images first, then divide once."),
            (correct / max(sum(int(v.sum()) for v in valid), 1), "that is pixel accuracy, not the mean IoU."),
            (float(np.nanmean(np.nansum(per_class, axis=0) / len(pairs))), "sum the counts, not the IoUs."),
        ]
        for candidate, message in candidates:
            if close(value, candidate, 1e-6) and not close(candidate, want, 1e-6):
                raise Incorrect(f"{where} it returned {value:.4f}: {message}")
        raise Incorrect(f"{where} it returned {value:.4f}; want {want:.4f}: accumulate each class's intersection and "
                        "union over all images, then IoU per class and their mean.")


q1 = PerClassIoU()
q2 = MeanIoUWithIgnore()
q3 = DatasetMeanIoU()
EXERCISES = [q1, q2, q3]
