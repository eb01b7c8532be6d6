"""The SAM 2.1 / SAM 3 tracker predictor: the same masks and scores as transformers' documented path
(processor, model, post_process_masks) on the tiny models, the image embedded once, and the
``SamPredictor`` interface that ``predict_mask`` and click simulation use."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from rs_helpers.errors import BadInputError
from rs_helpers.models.sam_tracker import load_click_segmenter
from rs_helpers.refer.click_sim import sam_predictor_fn, simulate_clicks
from rs_helpers.refer.clicks import Click
from rs_helpers.sam.from_clicks import make_predictor, mask_from_clicks, predict_mask
from rs_helpers.sam.tracker_predictor import TrackerPredictor

KINDS = ("sam2", "sam3")
CLICKS = {
    "one": ([[64.0, 48.0]], [1]),
    "three": ([[64.0, 48.0], [10.0, 90.0], [100.5, 20.25]], [1, 0, 1]),
}


@pytest.fixture(scope="module")
def segmenters():
    return {kind: load_click_segmenter(kind, profile="tiny", device="cpu") for kind in KINDS}


def _documented(seg, image, coords, labels, multimask):
    """transformers' documented path, every call on the full inputs."""
    inputs = seg.processor(images=image, input_points=[[coords]], input_labels=[[labels]], return_tensors="pt")
    with torch.no_grad():
        out = seg.model(**inputs, multimask_output=multimask)
    masks = seg.processor.post_process_masks(out.pred_masks, inputs["original_sizes"])[0][0]
    return masks.numpy(), out.iou_scores[0, 0].numpy(), out.pred_masks[0, 0].numpy()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("which", sorted(CLICKS))
@pytest.mark.parametrize("multimask", [True, False])
def test_masks_and_scores_equal_the_documented_path(segmenters, rgb_image, kind, which, multimask):
    seg = segmenters[kind]
    coords, labels = CLICKS[which]
    predictor = TrackerPredictor(seg, rgb_image)
    masks, scores, logits = predictor.predict(np.array(coords, np.float32), np.array(labels),
                                              multimask_output=multimask)
    want_masks, want_scores, want_logits = _documented(seg, rgb_image, coords, labels, multimask)
    n = 3 if multimask else 1
    assert masks.shape == (n, 96, 128) and masks.dtype == bool and scores.shape == (n,)
    np.testing.assert_allclose(logits, want_logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-6, atol=1e-6)
    assert np.array_equal(masks, want_masks)
    assert 0 < masks.mean() < 1  # the tiny model's masks are neither empty nor everything


@pytest.mark.parametrize("kind", KINDS)
def test_the_image_is_embedded_once_for_every_prediction(segmenters, rgb_image, kind, monkeypatch):
    seg = segmenters[kind]
    calls = []
    encoder = seg.model.vision_encoder
    original = encoder.forward
    monkeypatch.setattr(encoder, "forward", lambda *a, **k: calls.append(1) or original(*a, **k))
    predictor = make_predictor(seg, rgb_image)
    assert isinstance(predictor, TrackerPredictor) and predictor.original_size == (96, 128) and len(calls) == 1
    first = predict_mask(predictor, [Click(64, 48, 1)])
    second = predict_mask(predictor, [Click(64, 48, 1), Click(5, 5, 0)])
    assert len(calls) == 1
    assert first.multimask_output and len(first.scores) == 3 and first.score == max(first.scores)
    assert not second.multimask_output and len(second.scores) == 1 and second.mask.shape == (96, 128)


@pytest.mark.parametrize("kind", KINDS)
def test_click_simulation_and_mask_from_clicks_run_on_the_tracker(segmenters, rgb_image, kind):
    seg = segmenters[kind]
    yy, xx = np.mgrid[:96, :128]
    gt = (yy - 48) ** 2 + (xx - 64) ** 2 < 15 ** 2
    sim = simulate_clicks(gt, sam_predictor_fn(seg, rgb_image), n_clicks=3)
    again = simulate_clicks(gt, sam_predictor_fn(seg, rgb_image), n_clicks=3)
    assert sim.clicks[0] == Click(64, 48, 1) and sim.clicks == again.clicks and sim.ious == again.ious
    result = mask_from_clicks(seg, rgb_image, [Click(64, 48, 1)], multimask="never")
    assert result.mask.shape == (96, 128) and len(result.scores) == 1


def test_sam_1_still_gets_segment_anythings_predictor(tiny_sam, rgb_image):
    from segment_anything import SamPredictor

    assert isinstance(make_predictor(tiny_sam, rgb_image), SamPredictor)


def test_bad_images_and_clicks_are_bad_inputs(segmenters, rgb_image):
    seg = segmenters["sam2"]
    with pytest.raises(BadInputError, match="uint8"):
        TrackerPredictor(seg, rgb_image.astype(np.float32))
    with pytest.raises(BadInputError, match="H x W x 3"):
        make_predictor(seg, rgb_image[..., 0])
    predictor = TrackerPredictor(seg, rgb_image)
    with pytest.raises(BadInputError, match="N labels"):
        predictor.predict(np.zeros((2, 2)), np.ones(1))


def test_a_half_precision_model_predicts_at_the_image_size(rgb_image):
    seg = load_click_segmenter("sam3", profile="tiny", device="cpu", dtype=torch.bfloat16)
    masks, scores, logits = TrackerPredictor(seg, rgb_image).predict(np.array([[64, 48]]), np.array([1]))
    assert masks.shape == (3, 96, 128) and scores.dtype == np.float32 and logits.dtype == np.float32
