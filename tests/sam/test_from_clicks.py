"""SAM from clicks: every click goes in at once; the best of three masks for one click, one mask
for two or more by default (segment-anything's advice), best of three always on request."""
from __future__ import annotations

import numpy as np
import pytest

from rs_helpers.refer.clicks import Click
from rs_helpers.errors import BadInputError
from rs_helpers.sam.from_clicks import (
    MULTIMASK_MODES,
    clicks_to_arrays,
    mask_from_clicks,
    multimask_mode,
    predict_mask,
    use_multimask,
)


class OraclePredictor:
    """Stands in for SamPredictor: three masks with scores the test chooses; records the call."""

    def __init__(self, size=(40, 60), scores=(0.2, 0.9, 0.5)):
        self.original_size = size
        self.scores = np.array(scores, np.float32)
        self.calls = []

    def predict(self, point_coords, point_labels, multimask_output):
        self.calls.append((point_coords.copy(), point_labels.copy(), multimask_output))
        n = 3 if multimask_output else 1
        masks = np.zeros((n,) + self.original_size, bool)
        for i in range(n):
            masks[i, : 5 * (i + 1)] = True  # mask i covers 5*(i+1) rows
        return masks, self.scores[:n], None


def test_all_clicks_at_once_and_the_best_mask():
    predictor = OraclePredictor()
    clicks = [Click(10, 5, 1), Click(50, 30, 0), Click(3, 39, 1)]
    out = predict_mask(predictor, clicks, multimask="always")
    assert len(predictor.calls) == 1
    coords, labels, multi = predictor.calls[0]
    assert coords.tolist() == [[10, 5], [50, 30], [3, 39]] and labels.tolist() == [1, 0, 1] and multi is True
    assert out.score == pytest.approx(0.9) and out.mask.sum() == 10 * 60  # mask 1 won
    assert out.scores == pytest.approx([0.2, 0.9, 0.5]) and out.multimask_output


def test_one_click_keeps_the_best_of_three_by_default():
    predictor = OraclePredictor()
    out = predict_mask(predictor, [Click(10, 5, 1)])
    assert predictor.calls[0][2] is True and out.score == pytest.approx(0.9) and out.multimask_output


@pytest.mark.parametrize("clicks", [[Click(10, 5, 1), Click(50, 30, 0)], [Click(10, 5, 1), Click(20, 5, 1)],
                                    [Click(i, i, i % 2) for i in range(1, 7)]])
def test_two_or_more_clicks_ask_for_a_single_mask_by_default(clicks):
    predictor = OraclePredictor()
    out = predict_mask(predictor, clicks)
    assert [call[2] for call in predictor.calls] == [False]  # segment-anything: one mask for several prompts
    assert out.mask.sum() == 5 * 60 and out.scores == pytest.approx([0.2]) and not out.multimask_output
    always = OraclePredictor()
    assert predict_mask(always, clicks, multimask="always").mask.sum() == 10 * 60
    assert predict_mask(always, clicks, multimask=True).multimask_output
    assert [call[2] for call in always.calls] == [True, True]


def test_multimask_rules():
    assert MULTIMASK_MODES == ("auto", "always", "never")
    assert [multimask_mode(v) for v in (None, True, False, "AUTO ", "always", "never")] == \
        ["auto", "always", "never", "auto", "always", "never"]
    assert [use_multimask("auto", n) for n in (0, 1, 2, 6)] == [True, True, False, False]
    assert all(use_multimask("always", n) for n in (1, 2, 6))
    assert not any(use_multimask("never", n) for n in (1, 2, 6))
    for bad in ("sometimes", "", 3, "1"):
        with pytest.raises(BadInputError, match="multimask"):
            multimask_mode(bad)
    with pytest.raises(BadInputError, match="multimask"):
        predict_mask(OraclePredictor(), [Click(1, 1, 1)], multimask="sometimes")


def test_single_mask_mode():
    predictor = OraclePredictor()
    out = predict_mask(predictor, [Click(1, 1, 1)], multimask=False)
    assert predictor.calls[0][2] is False and out.mask.sum() == 5 * 60


def test_negative_clicks_alone_give_an_empty_mask():
    predictor = OraclePredictor()
    out = predict_mask(predictor, [Click(1, 1, 0)])
    assert not out.mask.any() and out.mask.shape == (40, 60) and predictor.calls == []


@pytest.mark.parametrize("clicks", [[], [Click(60, 0, 1)], [Click(0, 40, 1)], [Click(-1, 0, 1)], [Click(0, 0, 2)]])
def test_bad_clicks(clicks):
    with pytest.raises(BadInputError):
        predict_mask(OraclePredictor(), clicks)


def test_arrays_for_sam():
    coords, labels = clicks_to_arrays([Click(3, 4, 1), Click(5, 6, 0)])
    assert coords.dtype == np.float32 and coords.shape == (2, 2) and labels.tolist() == [1, 0]


def test_tiny_sam_runs(tiny_sam, rgb_image):
    out = mask_from_clicks(tiny_sam, rgb_image, [Click(64, 48, 1), Click(10, 10, 0)], multimask="always")
    assert out.mask.shape == (96, 128) and out.mask.dtype == bool and len(out.scores) == 3
    assert out.score == max(out.scores)
    single = mask_from_clicks(tiny_sam, rgb_image, [Click(64, 48, 1), Click(10, 10, 0)])
    assert single.mask.shape == (96, 128) and len(single.scores) == 1 and not single.multimask_output
    with pytest.raises(BadInputError):
        mask_from_clicks(tiny_sam, rgb_image[..., 0], [Click(1, 1, 1)])
