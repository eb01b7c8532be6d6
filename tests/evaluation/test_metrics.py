"""Confusion matrix, IoU, mIoU and foreground IoU on hand-built cases with known answers."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rs_helpers.errors import BadInputError
from rs_helpers.evaluation.metrics import (
    ConfusionMatrix,
    confusion_matrix,
    foreground_iou,
    format_table,
    mean_iou,
)


def test_known_three_class_case():
    gt = np.array([[0, 0, 1, 1],
                   [0, 0, 1, 1],
                   [2, 2, 255, 255]])
    pred = np.array([[0, 1, 1, 1],
                     [0, 0, 1, 2],
                     [2, 0, 0, 1]])
    cm = confusion_matrix(pred, gt, 3)
    # class 0: TP 3, FP 1 (a 2 predicted 0), FN 1 -> 3/5; class 1: TP 3, FP 1, FN 1 -> 3/5;
    # class 2: TP 1, FP 1, FN 1 -> 1/3; the two ignored pixels do not count
    assert cm.matrix.tolist() == [[3, 1, 0], [0, 3, 1], [1, 0, 1]]
    assert np.allclose(cm.iou(), [3 / 5, 3 / 5, 1 / 3])
    assert cm.miou() == pytest.approx((3 / 5 + 3 / 5 + 1 / 3) / 3)
    assert cm.accuracy() == pytest.approx(7 / 10)
    assert cm.total == 10


def test_absent_class_is_nan_and_left_out_of_the_mean():
    gt = np.array([0, 0, 1, 1])
    pred = np.array([0, 0, 1, 1])
    cm = confusion_matrix(pred, gt, 3)
    assert np.isnan(cm.iou()[2])
    assert cm.miou() == 1.0
    table = cm.table(["a", "b", "c"])
    assert table[2] == {"class": "c", "iou": None, "gt_pixels": 0, "pred_pixels": 0}


def test_predictions_outside_the_classes_count_as_misses():
    gt = np.array([0, 0, 1, 1])
    pred = np.array([0, 255, 1, 1])  # an 'ignore' prediction on a class-0 pixel
    cm = confusion_matrix(pred, gt, 2)
    assert cm.unmatched.tolist() == [1, 0]
    assert np.allclose(cm.iou(), [1 / 2, 1.0])


def test_accumulation_equals_one_big_image():
    rng = np.random.default_rng(0)
    a_gt, a_pred = rng.integers(0, 4, (10, 10)), rng.integers(0, 4, (10, 10))
    b_gt, b_pred = rng.integers(0, 4, (6, 10)), rng.integers(0, 4, (6, 10))
    cm = ConfusionMatrix(4)
    cm.update(a_pred, a_gt).update(b_pred, b_gt)
    whole = confusion_matrix(np.vstack([a_pred, b_pred]), np.vstack([a_gt, b_gt]), 4)
    assert np.array_equal(cm.matrix, whole.matrix)
    other = confusion_matrix(b_pred, b_gt, 4)
    summed = confusion_matrix(a_pred, a_gt, 4)
    summed += other
    assert np.array_equal(summed.matrix, whole.matrix)
    # mIoU of the accumulated matrix is not the mean of per-image mIoUs
    assert cm.miou() != pytest.approx((mean_iou(a_pred, a_gt, 4) + mean_iou(b_pred, b_gt, 4)) / 2)


def test_foreground_iou_binary():
    gt = np.array([[0, 1, 1, 0], [0, 1, 1, 255]])
    pred = np.array([[1, 1, 0, 0], [0, 1, 1, 1]])
    # foreground: TP 3, FP 1, FN 1 (the ignored pixel does not count) -> 3/5
    assert foreground_iou(pred, gt) == pytest.approx(3 / 5)
    assert confusion_matrix(pred, gt, 2).foreground_iou() == pytest.approx(3 / 5)


def test_bad_inputs():
    with pytest.raises(BadInputError, match="shape"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 2)
    with pytest.raises(BadInputError):
        ConfusionMatrix(0)
    cm = ConfusionMatrix(2)
    with pytest.raises(BadInputError):
        cm += ConfusionMatrix(3)
    with pytest.raises(BadInputError, match="names"):
        cm.table(["only one"])
    assert np.isnan(cm.miou()) and np.isnan(cm.accuracy())


def test_format_table_and_dict():
    cm = confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 2)
    text = format_table(["background", "building"], cm, title="demo")
    assert text.splitlines()[0] == "demo"
    assert "building" in text and text.splitlines()[-1].startswith("mIoU")
    assert "50.00" in text  # building: TP 1, FP 1 -> 50 %
    d = cm.to_dict(["background", "building"])
    assert d["miou"] == pytest.approx(0.5) and d["matrix"] == [[1, 1], [0, 1]]


@given(arrays(np.int64, st.tuples(st.integers(1, 8), st.integers(1, 8)), elements=st.integers(0, 3)))
@settings(max_examples=50, deadline=None)
def test_perfect_prediction_scores_one(gt):
    assert mean_iou(gt, gt, 4) == 1.0
    assert confusion_matrix(gt, gt, 4).accuracy() == 1.0


@given(arrays(np.int64, (6, 6), elements=st.integers(0, 2)), arrays(np.int64, (6, 6), elements=st.integers(0, 2)))
@settings(max_examples=50, deadline=None)
def test_iou_bounds_and_symmetry(a, b):
    iou_ab = confusion_matrix(a, b, 3).iou()
    iou_ba = confusion_matrix(b, a, 3).iou()
    assert np.allclose(iou_ab, iou_ba, equal_nan=True)
    finite = iou_ab[np.isfinite(iou_ab)]
    assert np.all((finite >= 0) & (finite <= 1))
