"""The notebook explorers: one image embedding, cached decoder outputs, the same masks as the
generators, and clicks from sliders or a model answer. The tiny SAM's masks are meaningless;
what is tested is the bookkeeping and that the explorer computes what the generators do."""
from __future__ import annotations

import numpy as np
import pytest

from rs_helpers.refer.clicks import Click
from rs_helpers.errors import BadInputError
from rs_helpers.sam.fast_proposals import generate_fast, mask_match
from rs_helpers.models.sam import build_tiny_sam
from rs_helpers.sam.proposals import ProposalSettings, generate_reference
from rs_helpers.sam.timings import estimate_remaining, format_seconds
from rs_helpers.teaching.widgets import (
    TINY_TITLE,
    ClickExplorerState,
    GridExplorerState,
    click_explorer,
    grid_explorer,
)

# loose thresholds: many (random) masks to compare
LOOSE = dict(pred_iou_thresh=0.01, stability_score_thresh=0.5, box_nms_thresh=1.0)


@pytest.fixture(scope="module")
def sam():
    return build_tiny_sam().eval()


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    img = np.zeros((64, 80, 3), np.uint8)
    img[:32, :40] = (200, 30, 30)
    img[32:, 40:] = (30, 200, 30)
    img[20:44, 25:55] = (240, 240, 240)
    return np.clip(img.astype(int) + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8)


def _count_forward(module):
    calls = []
    handle = module.register_forward_hook(lambda *_: calls.append(1))
    return calls, handle


def test_encoder_once_and_thresholds_do_not_rerun_the_decoder(sam, image):
    encoder_calls, h1 = _count_forward(sam.image_encoder)
    decoder_calls, h2 = _count_forward(sam.mask_decoder.iou_prediction_head)
    try:
        state = GridExplorerState(sam, image)
        state.proposals(4, **LOOSE)
        after_first = len(decoder_calls)
        state.proposals(4, pred_iou_thresh=0.5, stability_score_thresh=0.8, box_nms_thresh=0.7)
        state.proposals(4, pred_iou_thresh=0.2, stability_score_thresh=0.6, box_nms_thresh=0.5)
        assert len(decoder_calls) == after_first > 0, "a new threshold must not rerun the decoder"
        assert state.decoder_runs == 1
        state.proposals(6, **LOOSE)  # a new density: the decoder again, not the encoder
        assert state.decoder_runs == 2 and len(decoder_calls) > after_first
        state.proposals(4, **LOOSE)  # still cached
        assert state.decoder_runs == 2
    finally:
        h1.remove()
        h2.remove()
    assert len(encoder_calls) == 1 and state.encoder_calls == 1


@pytest.mark.parametrize("n, thresholds", [(6, LOOSE), (5, dict(pred_iou_thresh=0.3, stability_score_thresh=0.7,
                                                                 box_nms_thresh=0.7)), (4, {})])
def test_same_masks_as_the_generators(sam, image, n, thresholds):
    state = GridExplorerState(sam, image)
    ours = state.proposals(n, **thresholds)
    settings = ProposalSettings(points_per_side=n, **thresholds)
    fast = generate_fast(sam, image, settings)
    assert mask_match(ours.masks, fast.masks, 0.95) == (1.0, 1.0) and len(ours) == len(fast)
    reference = generate_reference(sam, image, settings)
    a, b = mask_match(reference.masks, ours.masks, 0.95)
    assert a >= 0.95 and b >= 0.95
    if thresholds is LOOSE:
        assert len(reference) >= 5, "a real comparison"


def test_iou_floor_keeps_results_and_refuses_lower_thresholds(sam, image):
    strict = dict(LOOSE, pred_iou_thresh=0.3)
    state = GridExplorerState(sam, image)
    plain = state.proposals(5, **strict)
    floored = GridExplorerState(sam, image, iou_floor=0.2)
    assert mask_match(floored.proposals(5, **strict).masks, plain.masks) == (1.0, 1.0)
    assert len(floored.raw(5)[2]) <= len(state.raw(5)[2])
    with pytest.raises(BadInputError):
        floored.proposals(5, pred_iou_thresh=0.0)


def test_cache_is_bounded_and_estimates_grow_with_the_grid(sam, image):
    state = GridExplorerState(sam, image, max_grids=2)
    for n in (2, 3, 4):
        state.raw(n)
    assert list(state._raw) == [3, 4]
    assert state.encoder_seconds > 0
    assert state.expected_seconds(32) > state.expected_seconds(8) > state.expected_seconds(8, with_encoder=False)
    with pytest.raises(BadInputError):
        state.raw(0)


def test_bad_image(sam):
    with pytest.raises(BadInputError):
        GridExplorerState(sam, np.zeros((8, 8), np.uint8))


# --------------------------------------------------------------------------- clicks
def _record_predict(state):
    asked = []
    original = state.predictor.predict

    def predict(**kwargs):
        asked.append((kwargs["point_coords"].copy(), kwargs["point_labels"].copy()))
        return original(**kwargs)

    state.predictor.predict = predict
    return asked


def test_click_state_embeds_once_and_follows_the_clicks(sam, image):
    calls, handle = _count_forward(sam.image_encoder)
    try:
        state = ClickExplorerState(sam, image)
        asked = _record_predict(state)
        first = state.current()
        assert state.clicks == [Click(40, 32, 1)] and first.mask.shape == image.shape[:2]
        state.current()  # unchanged clicks: SAM is not asked again
        assert len(asked) == 1
        state.add(10, 50, 0)
        assert len(asked) == 2
        coords, labels = asked[-1]
        np.testing.assert_array_equal(coords, [[40, 32], [10, 50]])
        np.testing.assert_array_equal(labels, [1, 0])
        state.set_text('{"clicks": [{"x": 0, "y": 1000, "label": 1}, {"x": 1000, "y": 0, "label": 0}]}')
        assert state.clicks == [Click(0, 63, 1), Click(79, 0, 0)]
        np.testing.assert_array_equal(asked[-1][1], [1, 0])
        assert state.clear() is None and state.clicks == []
    finally:
        handle.remove()
    assert len(calls) == 1


def test_bad_text_and_bad_clicks_give_messages_not_errors(sam, image):
    state = ClickExplorerState(sam, image, clicks=[Click(5, 5, 1)])
    before = state.current()
    result = state.set_text("I cannot find it.")
    assert "no click points" in state.message and result is before and state.clicks == [Click(5, 5, 1)]
    state.set_text('{"clicks": [{"x": 1200, "y": 10, "label": 1}]}')
    assert "outside" in state.message
    state.add(500, 5, 1)
    assert "outside" in state.message and len(state.clicks) == 1
    state.add(6, 6, 1)
    assert state.message == "" and len(state.clicks) == 2
    state.clear()
    empty = state.add(6, 6, 0)  # negatives only: nothing to segment
    assert not empty.mask.any() and empty.scores == []


# --------------------------------------------------------------------------- widgets
@pytest.fixture
def displays(monkeypatch):
    """What is displayed, each with whether an ``Output`` widget was capturing at that moment."""
    widgets = pytest.importorskip("ipywidgets")
    shown, capturing = [], []
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: shown.append((a[0], bool(capturing))))
    monkeypatch.setattr(widgets.Output, "__enter__", lambda self: capturing.append(self))
    monkeypatch.setattr(widgets.Output, "__exit__", lambda self, *exc: capturing.pop() and None)
    return shown


def _is_png(obj) -> bool:
    from IPython.display import Image

    return isinstance(obj, Image) and obj.data.startswith(b"\x89PNG\r\n\x1a\n")


def test_widgets_draw_their_defaults_and_react(sam, image, displays):
    box = grid_explorer(sam, image, points_per_side=3, **LOOSE, max_points_per_side=6)
    assert box.state.decoder_runs == 1
    # the default view: one PNG image as an ordinary output, not captured by the Output widget
    # (a headless client would wait for its reply: see rs_helpers.teaching.notebook)
    assert len(displays) == 1 and _is_png(displays[0][0]) and not displays[0][1]
    assert TINY_TITLE in box.children[0].value
    sliders = box.children[1].children
    sliders[1].value = 0.4  # a threshold: filtered again, no decoder run
    assert box.state.decoder_runs == 1 and len(displays) == 2
    assert _is_png(displays[1][0]) and displays[1][1], "a live view goes into the box's output area"
    sliders[0].value = 4
    assert box.state.decoder_runs == 2 and box.state.encoder_calls == 1

    box = click_explorer(sam, image)
    assert _is_png(displays[3][0]) and not displays[3][1]
    state = box.state
    text, use = box.children[3].children
    text.value = "no clicks here"
    assert "no click points" in state.message
    label, add, clear = box.children[2].children
    label.value = 0
    add.click()
    assert state.clicks[-1].label == 0 and len(state.clicks) == 2
    clear.click()
    assert state.clicks == [] and all(_is_png(obj) and live for obj, live in displays[4:])


def test_interactive_view_runs_the_defaults_first_outside_the_output_area(displays):
    import ipywidgets as widgets

    from rs_helpers.teaching.notebook import interactive_view

    calls = []

    def explore(name: str, tau: float, fixed_value: int):
        calls.append((name, tau, fixed_value))
        from IPython.display import display

        display(f"{name} {tau}")

    tau = widgets.FloatSlider(value=0.5, min=0.1, max=0.9)
    box = interactive_view(explore, name=widgets.Text(value="road"), tau=tau, fixed_value=7)
    assert calls == [("road", 0.5, 7)] and displays == [("road 0.5", False)]
    assert [type(c).__name__ for c in box.children] == ["Text", "FloatSlider", "Output"]
    tau.value = 0.25
    assert calls[-1] == ("road", 0.25, 7) and displays[-1] == ("road 0.25", True)


def test_estimate_remaining():
    assert estimate_remaining(12.0, 1, 4, "tile") == "expected about 36 s for the remaining 3 tiles (12 s per tile)"
    assert "remaining 1 sample " in estimate_remaining(5.0, 2, 3, "sample")
    assert estimate_remaining(3.0, 2, 2).startswith("nothing left")
    assert estimate_remaining(0.0, 0, 5).startswith("no estimate")
    assert [format_seconds(s) for s in (0.03, 4.2, 42, 600, 9000)] == ["30 ms", "4.2 s", "42 s", "10.0 min", "2.5 h"]
