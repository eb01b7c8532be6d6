"""Every protocol's metrics equal a port of the official evaluator, on random masks and on the edge
cases (empty ground truth, empty prediction, both empty, IoU exactly on a threshold, all-ignore
images, values outside the class range).

The ports below are written here from reading the official code (each names its file); they keep
the official arithmetic (torch.histc counts, float32 where the original is float32, its epsilons)
so that a difference in rules shows up as a failing test.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rs_helpers.evaluation.metrics import ConfusionMatrix
from rs_helpers.evaluation.protocols import get_protocol
from rs_helpers.evaluation.refer_metrics import ReferScores, intersection_union, to_protocol_resolution
from rs_helpers.evaluation.scoring import label_from_probabilities

FAST = settings(max_examples=40, deadline=None, database=None, derandomize=True)
RMSIN, SEGEARTH_R1 = get_protocol("rmsin"), get_protocol("segearth-r1")
NATIVE = get_protocol("native", kind="refer")
KEYS = ["gIoU", "cIoU", "P@0.5", "P@0.6", "P@0.7", "P@0.8", "P@0.9"]


# --------------------------------------------------------------------------- ports: open vocabulary
def mmseg_intersect_and_union(pred, label, num_classes, ignore_index=255):
    """open-mmlab/mmsegmentation mmseg/evaluation/metrics/iou_metric.py IoUMetric.intersect_and_union."""
    pred = torch.as_tensor(np.asarray(pred, np.int64))
    label = torch.as_tensor(np.asarray(label, np.int64)).to(pred)
    mask = label != ignore_index
    pred, label = pred[mask], label[mask]
    intersect = pred[pred == label]
    area_intersect = torch.histc(intersect.float(), bins=num_classes, min=0, max=num_classes - 1)
    area_pred = torch.histc(pred.float(), bins=num_classes, min=0, max=num_classes - 1)
    area_label = torch.histc(label.float(), bins=num_classes, min=0, max=num_classes - 1)
    return area_intersect, area_pred + area_label - area_intersect, area_pred, area_label


def mmseg_iou(pairs, num_classes, ignore_index=255) -> np.ndarray:
    """IoUMetric.compute_metrics + total_area_to_metrics (metric 'mIoU'): per-class IoU, NaN where 0/0."""
    results = list(zip(*[mmseg_intersect_and_union(p, g, num_classes, ignore_index) for p, g in pairs]))
    total_intersect, total_union = sum(results[0]), sum(results[1])
    return (total_intersect / total_union).numpy()


def mmseg_miou(pairs, num_classes) -> float:
    iou = mmseg_iou(pairs, num_classes)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")  # np.nanmean of all-NaN is NaN


def segearth_ov_postprocess(probs, prob_thd, bg_idx):
    """likyoo/SegEarth-OV segearth_segmentor.py postprocess_result (after the softmax and synonym max)."""
    seg_logits = torch.as_tensor(probs)
    seg_pred = seg_logits.argmax(0, keepdim=True)
    seg_pred[seg_logits.max(0, keepdim=True)[0] < prob_thd] = bg_idx
    return seg_pred[0].numpy()


def ours_iou(pairs, num_classes) -> np.ndarray:
    cm = ConfusionMatrix(num_classes, 255)
    for p, g in pairs:
        cm.update(p, g)
    return cm.iou()


# --------------------------------------------------------------------------- ports: referring
def rmsin_loop(samples):
    """Lsan2401/RMSIN test.py evaluate() with computeIoU, on (prediction, target) already at 480 x 480."""
    cum_i, cum_u, ious = 0, 0, []
    thresholds = [.5, .6, .7, .8, .9]
    correct = np.zeros(len(thresholds), dtype=np.int32)
    for pred, target in samples:
        i = np.sum(np.logical_and(pred, target))
        u = np.sum(np.logical_or(pred, target))
        this_iou = 0.0 if u == 0 else i * 1.0 / u
        ious.append(this_iou)
        cum_i += i
        cum_u += u
        for n, t in enumerate(thresholds):
            correct[n] += (this_iou >= t)
    with np.errstate(invalid="ignore", divide="ignore"):
        overall = np.float64(cum_i) / np.float64(cum_u)
    out = {"gIoU": float(np.mean(np.array(ious))), "cIoU": float(overall)}
    out.update({f"P@{t}": correct[n] / len(samples) for n, t in enumerate(thresholds)})
    return out


def refsegrs_loop(samples):
    """zhu-xlab/rrsis train.py evaluate() (RefSegRS's own code): IoU 0 if I == 0 or U == 0, P@t >= t;
    the returned overall IoU (its print subtracts 1 point, which is not reproduced)."""
    cum_i = cum_u = 0
    ious = []
    for pred, target in samples:
        pred_t, gt_t = torch.as_tensor(pred.astype(np.int64)), torch.as_tensor(target.astype(np.int64))
        inter = torch.sum(torch.mul(pred_t, gt_t))
        union = torch.sum(torch.add(pred_t, gt_t)) - inter
        ious.append(0 if inter == 0 or union == 0 else float(inter) / float(union))
        cum_i, cum_u = cum_i + int(inter), cum_u + int(union)
    out = {"gIoU": float(np.mean(ious)), "cIoU": cum_i / cum_u if cum_u else float("nan")}
    out.update({f"P@{t}": float(np.mean([v >= t for v in ious])) for t in (.5, .6, .7, .8, .9)})
    return out


def intersection_and_union_gpu(output, target, k, ignore_index=255):
    """dvlab-research/LISA utils/utils.py intersectionAndUnionGPU (also copied into SegEarth-R1's
    eval.py); on CPU, where torch.histc needs floats, the 0/1 values are cast to float32."""
    output = output.reshape(-1).clone()
    target = target.reshape(-1)
    output[target == ignore_index] = ignore_index
    intersection = output[output == target]
    area_intersection = torch.histc(intersection.float(), bins=k, min=0, max=k - 1)
    area_output = torch.histc(output.float(), bins=k, min=0, max=k - 1)
    area_target = torch.histc(target.float(), bins=k, min=0, max=k - 1)
    return area_intersection, area_output + area_target - area_intersection, area_target


def segearth_r1_loop(samples):
    """earth-insights/SegEarth-R1 segearth_r1/eval_and_test/eval.py: compute_metric (one prediction per
    sample) with its AverageMeters, then ciou = I.sum / (U.sum + 1e-10), giou = acc_iou.avg, Pr@t."""
    thresholds = [0.5, 0.6, 0.7, 0.8, 0.9]
    inter_sum, union_sum, acc_sum, count = 0, 0, 0, 0
    hits = {t: 0.0 for t in thresholds}
    for pred, target in samples:
        intersection, union, _ = intersection_and_union_gpu(torch.as_tensor(pred.astype(np.int32)),
                                                            torch.as_tensor(target.astype(np.int32)), 2)
        intersection, union = intersection.numpy(), union.numpy()
        acc_iou = intersection / (union + 1e-5)
        acc_iou[union == 0] = 1.0
        inter_sum, union_sum, acc_sum, count = inter_sum + intersection, union_sum + union, acc_sum + acc_iou, count + 1
        for t in thresholds:
            hits[t] += 1.0 if acc_iou[1] > t else 0.0
    out = {"gIoU": float((acc_sum / count)[1]), "cIoU": float((inter_sum / (union_sum + 1e-10))[1])}
    out.update({f"P@{t}": hits[t] / count for t in thresholds})
    return out


def lisa_validate(samples):
    """dvlab-research/LISA train_ds.py validate(): acc_iou += I / (U + 1e-5), += 1 where U == 0;
    giou = acc_iou_meter.avg[1], ciou = I.sum / (U.sum + 1e-10) [1] (LISA reports no P@t)."""
    inter_sum, union_sum, acc_sum, n = 0, 0, 0, 0
    for pred, target in samples:
        intersection, union, _ = intersection_and_union_gpu(torch.as_tensor(pred.astype(np.int32)),
                                                            torch.as_tensor(target.astype(np.int32)), 2)
        acc_iou = intersection / (union + 1e-5)
        acc_iou[union == 0] += 1.0
        inter_sum, union_sum = inter_sum + intersection.numpy(), union_sum + union.numpy()
        acc_sum, n = acc_sum + acc_iou.numpy(), n + 1
    return {"gIoU": float((acc_sum / n)[1]), "cIoU": float((inter_sum / (union_sum + 1e-10))[1])}


def ours(samples, protocol, frame=False) -> dict:
    scores = ReferScores.for_protocol(protocol)
    for pred, target in samples:
        if frame:
            pred, target = to_protocol_resolution(pred, target, protocol)
        scores.add_counts(*intersection_union(pred, target))
    s = scores.summary()
    return {k: s[k if not k.startswith("P@") else f"P@{float(k[2:]):.1f}"] for k in s if k in KEYS}


def assert_same(a: dict, b: dict, keys=KEYS, tol=1e-6):
    for key in keys:
        k_b = key if key in b else f"P@{float(key[2:])}"
        x, y = a[key], b[k_b]
        assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, abs=tol), (key, x, y)


# --------------------------------------------------------------------------- strategies
def mask_pairs(max_side=12, max_n=5):
    def build(shape):
        masks = hnp.arrays(bool, shape)
        return st.lists(st.tuples(masks, masks), min_size=1, max_size=max_n)
    return st.tuples(st.integers(1, max_side), st.integers(1, max_side)).flatmap(build)


def block(h, w, n, on=None):
    """An h x w mask whose first ``n`` pixels (row-major) are set, inside ``on`` if given."""
    out = np.zeros(h * w, bool)
    idx = np.flatnonzero(on.ravel()) if on is not None else np.arange(h * w)
    out[idx[:n]] = True
    return out.reshape(h, w)


def edge_samples(h, w):
    """Empty target, empty prediction, both empty, and IoU exactly 0.5, 0.6, 0.7, 0.8, 0.9 (10 x 10 target)."""
    target = block(h, w, 100)
    samples = [(block(h, w, 30), np.zeros((h, w), bool)), (np.zeros((h, w), bool), target),
               (np.zeros((h, w), bool), np.zeros((h, w), bool))]
    samples += [(block(h, w, k, on=target), target) for k in (50, 60, 70, 80, 90)]
    return samples


# --------------------------------------------------------------------------- referring tests
@FAST
@given(mask_pairs())
def test_rmsin_rules_equal_rmsin_loop_on_random_masks(samples):
    assert_same(ours(samples, RMSIN), rmsin_loop(samples))
    assert_same(ours(samples, RMSIN), refsegrs_loop(samples))


@FAST
@given(mask_pairs())
def test_segearth_r1_rules_equal_its_eval_and_lisa_on_random_masks(samples):
    assert_same(ours(samples, SEGEARTH_R1), segearth_r1_loop(samples))
    assert_same(ours(samples, SEGEARTH_R1), lisa_validate(samples), keys=["gIoU", "cIoU"])


@pytest.mark.parametrize("protocol,port", [(RMSIN, rmsin_loop), (RMSIN, refsegrs_loop),
                                           (SEGEARTH_R1, segearth_r1_loop)])
def test_edge_cases_equal_the_official_loops(protocol, port):
    samples = edge_samples(24, 24)
    assert_same(ours(samples, protocol), port(samples))
    for one in samples:  # one at a time too: each edge case on its own
        assert_same(ours([one], protocol), port([one]))


def test_edge_case_values_are_the_documented_rules():
    samples = edge_samples(24, 24)
    native, rmsin, r1 = (ReferScores.for_protocol(p) for p in (NATIVE, RMSIN, SEGEARTH_R1))
    for pred, target in samples:
        for s in (native, rmsin, r1):
            s.add(pred, target)
    assert native.ious[:3] == [0.0, 0.0, 1.0] and rmsin.ious[2] == 0.0 and r1.ious[2] == 1.0
    assert native.ious[3:] == [0.5, 0.6, 0.7, 0.8, 0.9] == rmsin.ious[3:]
    assert all(v < t for v, t in zip(r1.ious[3:], (0.5, 0.6, 0.7, 0.8, 0.9)))  # I / (U + 1e-5)
    assert native.precision_at(0.7) == pytest.approx(4 / 8)  # >=: both empty (1), 0.7, 0.8, 0.9
    assert rmsin.precision_at(0.7) == pytest.approx(3 / 8)  # >=: 0.7, 0.8, 0.9 (both empty scores 0)
    assert r1.precision_at(0.7) == pytest.approx(3 / 8)  # >: both empty (1), 0.8-, 0.9- (0.7- is not > 0.7)
    # strictness alone: IoU exactly 0.5 counts under >= and not under >
    exact = ReferScores(strict=True)
    exact.add_counts(50, 100)
    assert exact.precision_at(0.5) == 0.0 and ReferScores().add_counts(50, 100) == 0.5


def test_all_empty_samples_ciou_follows_each_evaluator():
    empty = [(np.zeros((4, 4), bool), np.zeros((4, 4), bool))] * 3
    assert math.isnan(ours(empty, RMSIN)["cIoU"]) and math.isnan(rmsin_loop(empty)["cIoU"])
    assert ours(empty, SEGEARTH_R1)["cIoU"] == segearth_r1_loop(empty)["cIoU"] == 0.0
    assert ours(empty, SEGEARTH_R1)["gIoU"] == segearth_r1_loop(empty)["gIoU"] == pytest.approx(1.0)
    assert ours(empty, NATIVE)["cIoU"] == 1.0  # today's behaviour, unchanged


# --------------------------------------------------------------------------- scoring resolutions
def rmsin_resize(mask, size=480):
    """RMSIN transforms.py Resize: torchvision F.resize(target, (h, w), interpolation=Image.NEAREST) on the
    PIL target (data/dataset_refer_bert.py builds it with mode "P")."""
    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as F

    pil = Image.fromarray(mask.astype(np.uint8), mode="P")
    return np.asarray(F.resize(pil, [size, size], interpolation=InterpolationMode.NEAREST)) > 0


def cv2_nearest(mask, width, height):
    """cv2.resize(..., interpolation=cv2.INTER_NEAREST): OpenCV itself when installed, else its resizeNN
    rule (source index floor(x * (1 / (dst / src))), clamped)."""
    try:
        import cv2
        return cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    except ImportError:
        src_h, src_w = mask.shape
        ifx, ify = 1.0 / (width / src_w), 1.0 / (height / src_h)
        xs = [min(int(math.floor(x * ifx)), src_w - 1) for x in range(width)]
        ys = [min(int(math.floor(y * ify)), src_h - 1) for y in range(height)]
        return mask.astype(np.uint8)[np.ix_(ys, xs)]


def segearth_r1_preprocess_mask(mask, image_size=1024):
    """SegEarth-R1 segearth_r1/eval_and_test/eval_dataset/RS_val_dataset.py preprocess_mask (one mask)."""
    hh, ww = mask.shape[:2]
    if ww > hh:
        new_w, new_h = image_size, int(hh * (image_size / ww))
    else:
        new_h, new_w = image_size, int(ww * (image_size / hh))
    resized = cv2_nearest(mask, new_w, new_h)
    pad_h, pad_w = image_size - new_h, image_size - new_w
    top, left = pad_h // 2, pad_w // 2
    out = np.zeros((image_size, image_size), np.uint8)  # cv2.copyMakeBorder(..., BORDER_CONSTANT, value=0)
    out[top:top + new_h, left:left + new_w] = resized
    return out > 0


@settings(max_examples=15, deadline=None, database=None, derandomize=True)
@given(mask_pairs(max_side=40, max_n=2))
def test_scoring_resolutions_equal_the_official_resizes(samples):
    for pred, target in samples:
        p, t = to_protocol_resolution(pred, target, RMSIN)
        np.testing.assert_array_equal(t, rmsin_resize(target))
        np.testing.assert_array_equal(p, rmsin_resize(pred))
        p, t = to_protocol_resolution(pred, target, SEGEARTH_R1)
        np.testing.assert_array_equal(t, segearth_r1_preprocess_mask(target))
        np.testing.assert_array_equal(p, segearth_r1_preprocess_mask(pred))
    ported = [(rmsin_resize(p), rmsin_resize(t)) for p, t in samples]
    assert_same(ours(samples, RMSIN, frame=True), rmsin_loop(ported))
    ported = [(segearth_r1_preprocess_mask(p), segearth_r1_preprocess_mask(t)) for p, t in samples]
    assert_same(ours(samples, SEGEARTH_R1, frame=True), segearth_r1_loop(ported))


@pytest.mark.parametrize("shape", [(800, 800), (600, 1000), (1000, 601), (37, 5), (1, 3)])
def test_long_side_frame_on_odd_shapes(shape):
    rng = np.random.default_rng(sum(shape))
    mask = rng.random(shape) > 0.5
    _, t = to_protocol_resolution(mask, mask, SEGEARTH_R1)
    np.testing.assert_array_equal(t, segearth_r1_preprocess_mask(mask))


# --------------------------------------------------------------------------- open-vocabulary tests
def label_maps(k, max_side=10, max_n=4):
    """(prediction, ground truth) pairs: ground truth in 0..K-1 or 255; predictions also outside the range."""
    gt_values = st.one_of(st.integers(0, k - 1), st.just(255))
    pred_values = st.one_of(st.integers(0, k - 1), st.sampled_from([k, k + 3, 200, 255, -1]))

    def build(shape):
        return st.lists(st.tuples(hnp.arrays(np.int64, shape, elements=pred_values),
                                  hnp.arrays(np.int64, shape, elements=gt_values)), min_size=1, max_size=max_n)
    return st.tuples(st.integers(1, max_side), st.integers(1, max_side)).flatmap(build)


def _nan_equal(a, b):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=0, atol=1e-6, equal_nan=True)


@FAST
@given(st.integers(2, 8).flatmap(lambda k: st.tuples(st.just(k), label_maps(k))))
def test_confusion_matrix_equals_mmseg_iou_metric(case):
    k, pairs = case
    _nan_equal(ours_iou(pairs, k), mmseg_iou(pairs, k))
    cm = ConfusionMatrix(k, 255)
    for p, g in pairs:
        cm.update(p, g)
    _nan_equal(cm.miou(), mmseg_miou(pairs, k))
    if k == 2:  # binary sets report the foreground class of the same table
        _nan_equal(cm.foreground_iou(1), mmseg_iou(pairs, 2)[1])


def test_ovss_edge_cases_equal_mmseg():
    k, h, w = 4, 6, 6
    all_ignore = (np.zeros((h, w), np.int64), np.full((h, w), 255))
    empty_pred_class = (np.zeros((h, w), np.int64), np.tile(np.arange(w) % k, (h, 1)))  # only class 0 predicted
    outside = (np.full((h, w), 255), np.ones((h, w), np.int64))  # every prediction outside the class range
    for pairs in ([all_ignore], [all_ignore, empty_pred_class], [outside], [outside, empty_pred_class]):
        _nan_equal(ours_iou(pairs, k), mmseg_iou(pairs, k))
    assert np.isnan(ours_iou([all_ignore], k)).all()
    assert math.isnan(ConfusionMatrix(k).update(*all_ignore).miou()) and math.isnan(mmseg_miou([all_ignore], k))


def test_ground_truth_outside_the_class_range_is_the_one_known_difference():
    """mmseg counts a prediction on a ground-truth value outside 0..K-1 (not 255) as a false positive;
    ConfusionMatrix drops the pixel. Scored ground truth never holds such values: every codec maps
    unlisted raw values to 255 before scoring (see tests/commands/test_score.py for LoveDA)."""
    pred, gt = np.zeros((2, 2), np.int64), np.array([[0, 7], [0, 0]])
    assert mmseg_iou([(pred, gt)], 3)[0] == pytest.approx(3 / 4)
    assert ours_iou([(pred, gt)], 3)[0] == 1.0
    assert ours_iou([(pred, np.where(gt >= 3, 255, gt))], 3)[0] == mmseg_iou([(pred, np.where(gt >= 3, 255, gt))], 3)[0]


@FAST
@given(st.integers(1, 9), st.integers(1, 9), st.integers(0, 2 ** 31 - 1))
def test_threshold_to_background_equals_segearth_ov_postprocess(h, w, seed):
    from rs_helpers.evaluation.datasets import dataset_class

    rng = np.random.default_rng(seed)
    for name in ("potsdam", "udd5", "loveda", "xbd-pre"):
        classes = dataset_class(name).classes
        protocol = get_protocol("segearth-ov", name)
        logits = rng.normal(size=(len(classes), h, w)) * 3
        probs = torch.as_tensor(logits).softmax(0).numpy()
        np.testing.assert_array_equal(label_from_probabilities(probs, protocol, classes),
                                      segearth_ov_postprocess(probs, protocol.prob_thd, protocol.bg_idx))
