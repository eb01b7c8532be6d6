"""Named protocols: the official values (read from each repository's files), lookup and defaults,
the report line, the background index, ReferScores' default rules and the RRSIS-D parts rule."""
from __future__ import annotations

import dataclasses
import json
import math
import pickle

import numpy as np
import pytest

import fake_layouts as fl
from rs_helpers.errors import BadInputError
from rs_helpers.evaluation.datasets import OVSS_BENCHMARKS, dataset_class, get_referring_dataset
from rs_helpers.evaluation.datasets.rrsisd import polygon_rle_counts, rle_decode, segmentation_to_mask
from rs_helpers.evaluation.protocols import (
    OvssProtocol,
    ReferProtocol,
    background_index,
    default_protocol,
    describe,
    get_protocol,
    list_protocols,
)
from rs_helpers.evaluation.refer_metrics import ReferScores

# likyoo/SegEarth-OV configs/cfg_<set>.py (model.prob_thd, model.bg_idx), as in issue 14
PROB_THD = {"openearthmap": 0.1, "potsdam": 0.1, "vaihingen": 0.1, "loveda": 0.3, "uavid": 0.3, "vdd": 0.3,
            "isaid": 0.4, "udd5": 0.4, "whu-aerial": 0.6, "inria": 0.6, "wbs-si": 0.6, "whu-sat-ii": 0.7,
            "deepglobe": 0.7, "massachusetts": 0.7, "spacenet": 0.7, "chn6-cug": 0.8, "xbd-pre": 0.0}
BG_IDX = {"potsdam": 5, "vaihingen": 5, "udd5": 4}


@pytest.mark.parametrize("name", OVSS_BENCHMARKS)
def test_segearth_ov_values_per_dataset(name):
    p = get_protocol("segearth-ov", name)
    assert isinstance(p, OvssProtocol) and p.name == "segearth-ov" and p.dataset == name
    assert p.prob_thd == PROB_THD[name] and p.bg_idx == BG_IDX.get(name, 0)
    assert p.cls_token_lambda == (0.0 if name == "xbd-pre" else 0.3)
    assert (p.resize, p.long_side, p.short_crop, p.upsampler, p.logits_to_original) == \
        ("opencv-448", 448, "own-size", "simfeatup", True)
    assert p.config.startswith("configs/cfg_") and p.ignore_index == 255
    assert default_protocol(name) == p


def test_background_comes_from_the_declaration_not_only_the_word():
    for name, index, word in (("vaihingen", 5, "clutter"), ("potsdam", 5, "clutter"), ("udd5", 4, "background"),
                              ("loveda", 0, "background")):
        classes = dataset_class(name).classes
        bg = background_index(get_protocol("segearth-ov", name), classes)
        assert bg == index and classes[bg].split(",")[0] == word
    # native finds it by name only: Vaihingen has no class called background
    native = get_protocol("native", kind="ovss")
    assert background_index(native, dataset_class("vaihingen").classes) is None
    assert background_index(native, dataset_class("potsdam").classes) == 5  # "clutter,background"
    with pytest.raises(BadInputError, match="outside"):
        background_index(get_protocol("segearth-ov", "potsdam"), ["a", "b"])


def test_referring_protocols():
    rmsin, r1 = get_protocol("rmsin"), get_protocol("segearth-r1")
    assert isinstance(rmsin, ReferProtocol)
    assert (rmsin.both_empty_iou, rmsin.strict_precision, rmsin.iou_eps, rmsin.resolution, rmsin.size,
            rmsin.parts) == (0.0, False, 0.0, "square", 480, "sum-one")
    assert (r1.both_empty_iou, r1.strict_precision, r1.iou_eps, r1.ciou_eps, r1.resolution, r1.size,
            r1.parts) == (1.0, True, 1e-5, 1e-10, "long-side-padded", 1024, "union")
    native = get_protocol("native", kind="refer")
    assert (native.both_empty_iou, native.strict_precision, native.iou_eps, native.resolution) == \
        (1.0, False, 0.0, "native")
    assert default_protocol("rrsisd") is rmsin and default_protocol("RefSegRS") is rmsin
    assert default_protocol("earthreason") is r1 and default_protocol("RSReasonSeg") is r1
    assert default_protocol("jsonl") is native and default_protocol("samples", kind="refer") is native
    assert default_protocol("samples").kind == "ovss" and default_protocol("samples").name == "native"


def test_protocols_are_frozen_records():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_protocol("rmsin").size = 512
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_protocol("segearth-ov", "loveda").prob_thd = 0.5


def test_names_and_errors():
    assert list_protocols() == ["segearth-ov", "rmsin", "segearth-r1", "native"]
    assert list_protocols("ovss") == ["segearth-ov", "native"]
    assert list_protocols("refer") == ["rmsin", "segearth-r1", "native"]
    assert get_protocol("SegEarth_OV", "LoveDA").dataset == "loveda" and get_protocol("SEGEARTHR1").name == "segearth-r1"
    for call, match in [(lambda: get_protocol("lisa"), "unknown protocol"),
                        (lambda: get_protocol("segearth-ov"), "per dataset"),
                        (lambda: get_protocol("segearth-ov", "rrsisd"), "not for refer"),
                        (lambda: get_protocol("segearth-ov", "samples"), "17 benchmarks"),
                        (lambda: get_protocol("rmsin", "loveda"), "not for ovss"),
                        (lambda: get_protocol("native"), "say which"),
                        (lambda: get_protocol("native", "nope"), "unknown dataset"),
                        (lambda: list_protocols("nope"), "kind")]:
        with pytest.raises(BadInputError, match=match):
            call()


def test_describe_is_one_line_of_settings():
    line = describe(get_protocol("segearth-ov", "vaihingen"), dataset_class("vaihingen").classes)
    assert "\n" not in line and "prob_thd 0.1 -> bg_idx 5 (clutter)" in line and "cfg_vaihingen.py" in line
    assert "upsampler simfeatup" in line and "long side 448" in line
    xbd = describe(get_protocol("segearth-ov", "xbd-pre"))
    assert "cls_token_lambda 0," in xbd and "prob_thd 0 ->" in xbd
    assert "no probability threshold" in describe(get_protocol("native", kind="ovss"))
    rmsin = describe(get_protocol("rmsin"))
    assert "both empty -> IoU 0" in rmsin and "IoU >= k" in rmsin and "480 x 480" in rmsin and "\n" not in rmsin
    r1 = describe(get_protocol("segearth-r1"))
    assert "IoU > k" in r1 and "I/(U+1e-05)" in r1 and "1024" in r1
    assert "native resolution" in describe(get_protocol("native", kind="refer"))


def test_refer_scores_default_is_todays_behaviour():
    default, native = ReferScores(), ReferScores.for_protocol(get_protocol("native", kind="refer"))
    for s in (default, native):
        for inter, union in [(50, 100), (0, 0), (3, 7), (0, 12)]:
            s.add_counts(inter, union)
    assert default.summary() == native.summary()
    assert default.ious == [0.5, 1.0, 3 / 7, 0.0]
    assert default.precision_at(0.5) == 0.5 and default.ciou() == 53 / 119
    assert ReferScores().add_counts(0, 0) == 1.0 and ReferScores(empty_iou=0.0).add_counts(0, 0) == 0.0
    empty = ReferScores()
    empty.add_counts(0, 0)
    assert empty.ciou() == 1.0  # all samples both empty: 1 as before
    assert math.isnan(ReferScores().giou())


# --------------------------------------------------------------------------- RRSIS-D parts
def rmsin_get_mask(polygons, height, width):
    """Lsan2401/RMSIN refer/refer.py getMask (mask.decode of frPyObjects, np.sum(m, axis=2), uint8) and
    data/dataset_refer_bert.py (annot[ref_mask == 1] = 1); pycocotools' rasteriser is our tested port."""
    m = np.stack([rle_decode({"size": [height, width], "counts": polygon_rle_counts(p, height, width)})
                  for p in polygons], axis=2).astype(np.uint8)
    m = np.sum(m, axis=2).astype(np.uint8)
    annot = np.zeros(m.shape)
    annot[m == 1] = 1
    return annot.astype(bool)


OVERLAPPING = [[2.0, 2.0, 12.0, 2.0, 12.0, 12.0, 2.0, 12.0], [7.0, 7.0, 15.0, 7.0, 15.0, 15.0, 7.0, 15.0]]


def test_parts_rule_sum_one_is_rmsins_and_union_stays_the_default():
    union = segmentation_to_mask(OVERLAPPING, 16, 16)
    summed = segmentation_to_mask(OVERLAPPING, 16, 16, parts="sum-one")
    np.testing.assert_array_equal(summed, rmsin_get_mask(OVERLAPPING, 16, 16))
    overlap = segmentation_to_mask(OVERLAPPING[:1], 16, 16) & segmentation_to_mask(OVERLAPPING[1:], 16, 16)
    assert overlap.any() and not (summed & overlap).any()
    np.testing.assert_array_equal(union, summed | overlap)
    rles = [{"size": [16, 16], "counts": polygon_rle_counts(p, 16, 16)} for p in OVERLAPPING]  # a list of RLEs
    np.testing.assert_array_equal(segmentation_to_mask(rles, 16, 16, parts="sum-one"), summed)
    with pytest.raises(BadInputError, match="parts"):
        segmentation_to_mask(OVERLAPPING, 16, 16, parts="max")


def test_rrsisd_loader_takes_the_parts_rule(tmp_path):
    fake = fl.make_rrsisd(tmp_path)
    root = fake["root"]
    inst = json.loads((root / "rrsisd/instances.json").read_text())
    inst["annotations"][2]["segmentation"] = OVERLAPPING  # the test ref
    (root / "rrsisd/instances.json").write_text(json.dumps(inst))
    default = get_referring_dataset("rrsisd", root=root, split="test")
    assert default.parts == "union"
    np.testing.assert_array_equal(default[0].load_mask(), segmentation_to_mask(OVERLAPPING, 16, 16))
    from rs_helpers.evaluation.datasets.rrsisd import RRSISD

    summed = RRSISD(root=root, split="test", parts="sum-one")
    np.testing.assert_array_equal(summed[0].load_mask(), rmsin_get_mask(OVERLAPPING, 16, 16))
    np.testing.assert_array_equal(default.set_parts(get_protocol("rmsin").parts)[0].load_mask(),
                                  summed[0].load_mask())
    with pytest.raises(BadInputError):
        RRSISD(root=root, split="test", parts="nope")
    assert pickle.loads(pickle.dumps(summed[0])).parts == "sum-one"
