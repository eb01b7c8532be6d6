"""gIoU, cIoU and P@t on hand-built cases."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rs_helpers.errors import BadInputError
from rs_helpers.evaluation.refer_metrics import ReferScores, intersection_union, iou


def box(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_iou_known_values():
    a, b = box(10, 10, 0, 10, 0, 5), box(10, 10, 0, 10, 3, 8)  # 50 px each, overlap 20
    assert intersection_union(a, b) == (20, 80)
    assert iou(a, b) == pytest.approx(0.25)
    assert iou(a, a) == 1.0 and iou(a, ~a) == 0.0
    empty = np.zeros((10, 10), bool)
    assert iou(empty, empty) == 1.0 and iou(empty, empty, empty_iou=0.0) == 0.0
    with pytest.raises(BadInputError):
        iou(a, np.zeros((5, 5), bool))


def test_giou_ciou_precision_by_hand():
    scores = ReferScores()
    # sample 1: small target, perfect (I=4, U=4, IoU 1)
    t1 = box(20, 20, 0, 2, 0, 2)
    scores.add(t1, t1)
    # sample 2: large target (100 px), prediction covers 60 of it and nothing else: IoU 0.6
    t2 = box(20, 20, 0, 10, 0, 10)
    p2 = box(20, 20, 0, 6, 0, 10)
    assert scores.add(p2, t2) == pytest.approx(0.6)
    # sample 3: a failure (no clicks) on a 50 px target: IoU 0, union 50
    assert scores.add_failure(box(20, 20, 0, 5, 0, 10)) == 0.0
    s = scores.summary()
    assert s["n"] == 3 and s["failures"] == 1
    assert s["gIoU"] == pytest.approx((1 + 0.6 + 0) / 3)
    assert s["cIoU"] == pytest.approx((4 + 60 + 0) / (4 + 100 + 50))
    assert s["P@0.5"] == pytest.approx(2 / 3) and s["P@0.6"] == pytest.approx(2 / 3)  # IoU >= t counts
    assert s["P@0.7"] == s["P@0.8"] == s["P@0.9"] == pytest.approx(1 / 3)


def test_ciou_weighs_large_targets_more_than_giou():
    scores = ReferScores()
    big = box(100, 100, 0, 100, 0, 100)
    scores.add(big, big)  # IoU 1 on 10,000 px
    small = box(100, 100, 0, 1, 0, 1)
    scores.add(np.zeros_like(small), small)  # IoU 0 on 1 px
    assert scores.giou() == pytest.approx(0.5)
    assert scores.ciou() == pytest.approx(10000 / 10001)


def test_empty_scores_are_nan():
    s = ReferScores().summary()
    assert s["n"] == 0 and math.isnan(s["gIoU"]) and math.isnan(s["cIoU"]) and math.isnan(s["P@0.5"])
