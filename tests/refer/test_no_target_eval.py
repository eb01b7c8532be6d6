"""The no-target answer in ``rs-seg eval refer``: an empty prediction, never a failure, scored by
each protocol's rule (IoU 0 against a target; the protocol's both-empty value against an empty one)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

import rs_helpers.evaluation.refer_eval as refer_eval
from rs_helpers.evaluation.protocols import NATIVE_REFER, RMSIN, SEGEARTH_R1
from rs_helpers.evaluation.refer_eval import evaluate_refer
from rs_helpers.evaluation.results_log import ResultsLog
from rs_helpers.geo.rasters import RasterImage
from rs_helpers.refer.vlm import VLMAnswer

NO_TARGET = '{"clicks": [], "reason": "nothing like that here"}'
BOX = '{"clicks": [{"x": 505, "y": 505, "label": 1}]}'  # pixel (50, 50) of a 100 x 100 image


@dataclass
class Sample:
    id: str
    text: str
    target: np.ndarray
    task: str = "reasoning"
    image: str = "img.png"

    def load(self):
        return RasterImage(rgb=np.zeros(self.target.shape + (3,), np.uint8)), self.target


class ByText:
    name = "by-text"

    def __init__(self, answers):
        self.answers = answers

    def ask(self, image_rgb, prompt):
        text = next(t for t in self.answers if f'"{t}"' in prompt)
        return VLMAnswer(self.answers[text], {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6})


class BoxOrFail:
    """An oracle SAM for clicked samples (the 20 x 20 box around the first click); the no-target
    samples must never reach it."""

    def __init__(self, size):
        self.original_size, self.calls = size, 0

    def predict(self, point_coords, point_labels, multimask_output):
        self.calls += 1
        x, y = point_coords[0].astype(int)
        mask = np.zeros(self.original_size, bool)
        mask[y - 10: y + 10, x - 10: x + 10] = True
        return mask[None], np.array([0.9]), None


@pytest.fixture()
def predictors(monkeypatch):
    made = []

    def make(sam, rgb):
        made.append(BoxOrFail(rgb.shape[:2]))
        return made[-1]

    monkeypatch.setattr(refer_eval, "make_predictor", make)
    return made


def _box(y0, x0, shape=(100, 100)):
    mask = np.zeros(shape, bool)
    mask[y0: y0 + 20, x0: x0 + 20] = True
    return mask


def _samples():
    return [Sample("empty-said-empty", "a", np.zeros((100, 100), bool)),   # both empty
            Sample("full-said-empty", "b", _box(0, 0)),                     # missed: IoU 0
            Sample("hit", "c", _box(40, 40))]                               # a clicked sample: IoU 1


@pytest.mark.parametrize("protocol, both_empty", [(None, 1.0), (NATIVE_REFER, 1.0), (RMSIN, 0.0),
                                                  (SEGEARTH_R1, 1.0)])
def test_no_target_is_an_empty_prediction_scored_by_the_protocol(predictors, protocol, both_empty):
    backend = ByText({"a": NO_TARGET, "b": NO_TARGET, "c": BOX})
    run = evaluate_refer(_samples(), backend, sam=None, progress=False, protocol=protocol)
    s = run.summary()
    assert s["n"] == 3 and s["failures"] == 0 and run.failures == []
    records = {r["id"]: r for r in run.records}
    for rid in ("empty-said-empty", "full-said-empty"):
        r = records[rid]
        assert r["error"] is None and r["no_target"] and r["clicks"] == [] and r["pixel_clicks"] == []
        assert r["called"] and r["loaded"] and r["answer"] == NO_TARGET and r["pred_pixels"] == 0
        assert r["intersection"] == 0 and r["union"] == r["target_pixels"]
    assert records["empty-said-empty"]["iou"] == both_empty and records["empty-said-empty"]["union"] == 0
    assert records["full-said-empty"]["iou"] == 0.0 and records["full-said-empty"]["target_pixels"] > 0
    assert records["hit"]["iou"] == pytest.approx(1.0, abs=1e-4) and not records["hit"]["no_target"]
    assert s["gIoU"] == pytest.approx((both_empty + 0.0 + 1.0) / 3, abs=1e-4)
    assert sum(p.calls for p in predictors) == 1  # SAM ran for the clicked sample only
    assert run.usage.as_dict()["calls"] == 3


def test_no_target_records_resume_to_the_same_scores(predictors, tmp_path):
    """The record keeps the resumable structure: read back from the results log, the no-target
    samples score the same, and nothing is asked again."""
    backend = ByText({"a": NO_TARGET, "b": NO_TARGET, "c": BOX})
    log = ResultsLog(tmp_path / "r.results.jsonl", {"test": 1})
    first = evaluate_refer(_samples(), backend, sam=None, progress=False, protocol=RMSIN, log=log)
    again = evaluate_refer(_samples(), ByText({}), sam=None, progress=False, protocol=RMSIN,
                           log=ResultsLog(tmp_path / "r.results.jsonl", {"test": 1}))
    assert again.summary()["failures"] == 0
    for key, value in first.summary().items():
        assert (math.isnan(value) and math.isnan(again.summary()[key])) or again.summary()[key] == value


def test_a_click_less_answer_of_another_form_is_still_a_failure(predictors):
    backend = ByText({"a": '{"clicks": []}', "b": NO_TARGET, "c": BOX})
    run = evaluate_refer(_samples(), backend, sam=None, progress=False, protocol=SEGEARTH_R1)
    assert run.summary()["failures"] == 1 and [f["id"] for f in run.failures] == ["empty-said-empty"]
