"""Click simulation: hand-computed clicks with an oracle "SAM", geometric properties, the tie rule
against a port of RITM's clicker, SAM's multimask rule in the loop, the real loop with the tiny SAM,
and ``rs-seg clicks``."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rs_helpers.refer.click_sim import (
    TIE_RULES,
    first_click,
    iou,
    next_click,
    padded_distance,
    predictor_fn,
    sam_predictor_fn,
    simulate_clicks,
)
from rs_helpers.refer.clicks import Click, read_clicks
from rs_helpers.errors import BadInputError


def rect(shape, rows, cols):
    """A boolean mask with the inclusive ranges ``rows`` x ``cols`` set."""
    mask = np.zeros(shape, bool)
    mask[rows[0]: rows[1] + 1, cols[0]: cols[1] + 1] = True
    return mask


def square_oracle(shape, pos_half: int, neg_half: int, log: list | None = None):
    """A stand-in for SAM whose answer the test controls: the union of squares of half-size
    ``pos_half`` around the positive clicks minus squares of half-size ``neg_half`` around the
    negative ones (squares keep the expected distances easy to work out by hand)."""

    def predict(points, labels):
        if log is not None:
            log.append((points.copy(), labels.copy()))
        out = np.zeros(shape, bool)
        for (x, y), label in zip(points, labels):
            if label == 1:
                out[max(0, y - pos_half): y + pos_half + 1, max(0, x - pos_half): x + pos_half + 1] = True
        for (x, y), label in zip(points, labels):
            if label == 0:
                out[max(0, y - neg_half): y + neg_half + 1, max(0, x - neg_half): x + neg_half + 1] = False
        return out

    return predict


# --------------------------------------------------------------------------- first click
def test_first_click_ties_go_to_the_first_pixel_in_row_major_order():
    # rows 2..8 (7 tall), cols 3..13 (11 wide): distance 4 on row 5 for cols 6..10 -> (6, 5)
    gt = rect((20, 20), (2, 8), (3, 13))
    click, distance = first_click(gt)
    assert click == Click(6, 5, 1)
    assert distance == 4.0


def test_outside_the_image_counts_as_background():
    # a 10 x 5 block against the left and top-bottom borders: padded, the widest interior
    # distance is 3 (column 2), reached first on row 2; unpadded it would be column 0.
    gt = rect((10, 20), (0, 9), (0, 4))
    click, distance = first_click(gt)
    assert click == Click(2, 2, 1)
    assert distance == 3.0
    assert padded_distance(gt)[0, 0] == 1.0


def test_one_pixel_mask_is_clicked_on_that_pixel():
    gt = np.zeros((12, 12), bool)
    gt[7, 3] = True
    assert first_click(gt) == (Click(3, 7, 1), 1.0)


def test_empty_or_malformed_ground_truth_is_bad_input():
    predict = square_oracle((8, 8), 1, 1)
    with pytest.raises(BadInputError, match="empty"):
        simulate_clicks(np.zeros((8, 8), bool), predict)
    with pytest.raises(BadInputError, match="2-D"):
        simulate_clicks(np.ones((2, 8, 8), bool), predict)
    with pytest.raises(BadInputError, match="n_clicks"):
        simulate_clicks(np.ones((8, 8), bool), predict, n_clicks=0)
    with pytest.raises(BadInputError, match="shape"):
        simulate_clicks(np.ones((8, 8), bool), lambda p, l: np.ones((4, 4), bool))


# --------------------------------------------------------------------------- the loop, step by step
def test_each_step_picks_the_right_region_and_polarity():
    """Two targets: A (11 x 11, rows/cols 4..14) and B (5 x 5, rows 4..8, cols 26..30).
    The oracle paints an 11 x 11 square around each positive click and erases 3 x 3 around
    each negative one.

    1. First click: the centre of A, (9, 9), 6 px from its boundary. The oracle's square is
       exactly A, so only B is missed: IoU 121 / 146.
    2. The false negative is B, deepest at its centre (28, 6), 3 px: a positive click. The
       oracle's square around it (rows 1..11, cols 23..33) overshoots B by a 3 px frame:
       IoU 146 / 242, no false negative left.
    3. The false positive frame is deepest (2 px) first at (24, 2) in row-major order: a
       negative click. The oracle erases rows 1..3, cols 23..25: IoU 146 / 233.
    """
    shape = (20, 40)
    gt = rect(shape, (4, 14), (4, 14)) | rect(shape, (4, 8), (26, 30))
    log: list = []
    sim = simulate_clicks(gt, square_oracle(shape, pos_half=5, neg_half=1, log=log), n_clicks=3,
                          keep_masks=True)
    assert sim.clicks == [Click(9, 9, 1), Click(28, 6, 1), Click(24, 2, 0)]
    assert sim.sources == ["gt", "fn", "fp"]
    assert sim.distances == [6.0, 3.0, 2.0]
    assert sim.ious == pytest.approx([121 / 146, 146 / 242, 146 / 233])
    assert sim.stop_reason == "n_clicks"
    assert len(sim.masks) == 3 and all(m.shape == shape and m.dtype == bool for m in sim.masks)
    # predict saw every click so far, in order, as int pixel (x, y) and 1/0 labels
    assert [p.tolist() for p, _ in log] == [[[9, 9]], [[9, 9], [28, 6]], [[9, 9], [28, 6], [24, 2]]]
    assert [lab.tolist() for _, lab in log] == [[1], [1, 1], [1, 1, 0]]
    assert sim.grid_clicks() == [Click(231, 474, 1), Click(718, 316, 1), Click(615, 105, 0)]


def _tie_case():
    """A 7 x 7 target (rows and cols 4..10) and a prediction shifted right by 1 px: the missed
    column 4 and the wrongly added column 11 both reach distance 1 (equal maxima)."""
    shape = (16, 16)
    return rect(shape, (4, 10), (4, 10)), rect(shape, (4, 10), (5, 11))


def test_equal_maxima_give_a_negative_click_by_default_as_ritm():
    gt, pred = _tie_case()
    # RITM: is_positive = fn_max > fp_max, so a tie clicks the false positive, first pixel (11, 4)
    assert next_click(gt, pred) == (Click(11, 4, 0), 1.0, "fp")
    assert next_click(gt, pred, tie="negative") == (Click(11, 4, 0), 1.0, "fp")
    assert ritm_next_click(gt, pred, np.ones(gt.shape, bool)) == (False, (4, 11), pytest.approx(1.0))


def test_the_old_tie_rule_gives_a_positive_click():
    gt, pred = _tie_case()
    assert next_click(gt, pred, tie="positive") == (Click(4, 4, 1), 1.0, "fn")


def test_the_tie_rule_runs_through_the_simulation():
    gt, pred = _tie_case()
    ritm = simulate_clicks(gt, lambda p, l: pred.copy(), n_clicks=2)
    old = simulate_clicks(gt, lambda p, l: pred.copy(), n_clicks=2, tie="positive")
    assert ritm.clicks == [Click(7, 7, 1), Click(11, 4, 0)] and ritm.sources == ["gt", "fp"]
    assert old.clicks == [Click(7, 7, 1), Click(4, 4, 1)] and old.sources == ["gt", "fn"]
    assert TIE_RULES == ("negative", "positive")
    for bad in ("ritm", "", None):
        with pytest.raises(BadInputError, match="tie"):
            next_click(gt, pred, tie=bad)
        with pytest.raises(BadInputError, match="tie"):
            simulate_clicks(gt, lambda p, l: pred.copy(), tie=bad)


def test_false_negatives_far_away_beat_a_thin_false_positive():
    shape = (30, 30)
    gt = rect(shape, (2, 26), (2, 26))
    pred = rect(shape, (0, 12), (2, 26))  # overshoots 2 rows at the top, misses the bottom half
    click, distance, source = next_click(gt, pred)
    assert source == "fn" and click.label == 1
    assert gt[click.y, click.x] and not pred[click.y, click.x]
    assert distance == padded_distance(gt & ~pred).max()


def test_perfect_prediction_stops_early():
    gt = rect((16, 16), (3, 9), (3, 9))
    sim = simulate_clicks(gt, lambda p, l: gt.copy(), n_clicks=6)
    assert sim.clicks == [Click(6, 6, 1)]
    assert sim.ious == [1.0] and sim.stop_reason == "perfect"


def test_stop_iou_stops_once_reached():
    shape = (20, 40)
    gt = rect(shape, (4, 14), (4, 14)) | rect(shape, (4, 8), (26, 30))
    sim = simulate_clicks(gt, square_oracle(shape, 5, 1), n_clicks=6, stop_iou=0.8)
    assert len(sim.clicks) == 1 and sim.stop_reason == "iou" and sim.final_iou >= 0.8


def test_one_pixel_target_and_a_predictor_that_ignores_it_gets_stuck():
    gt = np.zeros((12, 12), bool)
    gt[5, 5] = True
    sim = simulate_clicks(gt, lambda p, l: np.zeros((12, 12), bool), n_clicks=6)
    # the only error pixel is the one already clicked: nothing left to click on
    assert sim.clicks == [Click(5, 5, 1)] and sim.stop_reason == "stuck" and sim.ious == [0.0]


def test_one_pixel_target_with_an_overshooting_predictor_gets_a_negative_click():
    gt = np.zeros((12, 12), bool)
    gt[5, 5] = True
    sim = simulate_clicks(gt, square_oracle((12, 12), 1, 0), n_clicks=2)
    assert sim.clicks == [Click(5, 5, 1), Click(4, 4, 0)]  # the 3 x 3 ring, first pixel
    assert sim.ious == pytest.approx([1 / 9, 1 / 8])


def test_border_touching_target_and_components_are_all_visited():
    # three separate 3 x 3 blocks, one in a corner; the oracle only paints the clicked pixel
    shape = (12, 24)
    gt = rect(shape, (0, 2), (0, 2)) | rect(shape, (5, 7), (10, 12)) | rect(shape, (9, 11), (20, 22))
    sim = simulate_clicks(gt, square_oracle(shape, 1, 0), n_clicks=6)
    # 3 x 3 squares around the block centres reproduce the target exactly after three clicks
    assert sim.clicks == [Click(1, 1, 1), Click(11, 6, 1), Click(21, 10, 1)]
    assert sim.stop_reason == "perfect" and sim.ious[-1] == 1.0


def test_non_boolean_masks_are_read_as_nonzero():
    gt = rect((10, 10), (2, 6), (2, 6)).astype(np.uint8) * 255
    assert first_click(gt) == (Click(4, 4, 1), 3.0)


# --------------------------------------------------------------------------- properties
masks = arrays(np.bool_, st.tuples(st.integers(1, 24), st.integers(1, 24)))


@settings(max_examples=80, deadline=None)
@given(masks)
def test_first_click_is_inside_and_as_deep_as_any_pixel(gt):
    if not gt.any():
        return
    click, distance = first_click(gt)
    dist = padded_distance(gt)
    assert gt[click.y, click.x] and click.label == 1
    assert distance == dist.max() >= 1.0
    # first in row-major order among the maxima
    ys, xs = np.nonzero(dist == dist.max())
    assert (click.y, click.x) == (ys[0], xs[0])


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_corrective_click_lies_in_the_error_it_corrects(data):
    gt = data.draw(masks)
    pred = data.draw(arrays(np.bool_, gt.shape))
    step = next_click(gt, pred)
    if np.array_equal(gt, pred):
        assert step is None
        return
    click, distance, source = step
    fn_max = padded_distance(gt & ~pred).max()
    fp_max = padded_distance(pred & ~gt).max()
    if source == "fn":
        assert click.label == 1 and gt[click.y, click.x] and not pred[click.y, click.x]
        assert distance == fn_max > fp_max  # RITM's rule: a tie is not a positive click
    else:
        assert click.label == 0 and pred[click.y, click.x] and not gt[click.y, click.x]
        assert distance == fp_max >= fn_max
    old = next_click(gt, pred, tie="positive")
    if fn_max == fp_max:
        assert old[2] == "fn" and old[1] == fn_max
    else:
        assert old == step


# --------------------------------------------------------------------------- RITM's clicker, ported
def _ritm_distance(mask: np.ndarray) -> np.ndarray:
    """cv2.distanceTransform(mask, DIST_L2, 0) as RITM calls it (exact Euclidean distance, float32);
    scipy's exact transform where OpenCV is not installed."""
    try:
        import cv2
    except ImportError:
        from scipy.ndimage import distance_transform_edt

        return distance_transform_edt(mask).astype(np.float32)
    return cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 0)


def ritm_next_click(gt, pred, not_clicked):
    """Our port of ``Clicker._get_next_click(pred_mask, padding=True)`` in RITM
    (SamsungLabs/ritm_interactive_segmentation, isegm/inference/clicker.py), without an ignore
    label: error maps padded with one ring of zeros, distance transforms cropped back, clicked
    pixels zeroed, positive only when the false-negative maximum is strictly larger, and the first
    pixel (row-major) of the chosen maximum. Returns ``(is_positive, (y, x), max distance)``."""
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    fn = np.pad(gt & ~pred, ((1, 1), (1, 1)), "constant")
    fp = np.pad(~gt & pred, ((1, 1), (1, 1)), "constant")
    fn_dt = _ritm_distance(fn)[1:-1, 1:-1] * not_clicked
    fp_dt = _ritm_distance(fp)[1:-1, 1:-1] * not_clicked
    fn_max, fp_max = fn_dt.max(), fp_dt.max()
    positive = bool(fn_max > fp_max)
    chosen, value = (fn_dt, fn_max) if positive else (fp_dt, fp_max)
    ys, xs = np.where(chosen == value)
    return positive, (int(ys[0]), int(xs[0])), float(value)


def ritm_simulation(gt, answers, n_clicks):
    """RITM's evaluation loop (isegm/inference/evaluation.py, evaluate_sample) with our port: the
    first click is the next click for an empty prediction; then one click per prediction. Returns
    the clicks and the two maxima each was chosen between."""
    not_clicked = np.ones(gt.shape, bool)
    pred, out = np.zeros(gt.shape, bool), []
    for k in range(n_clicks):
        positive, (y, x), value = ritm_next_click(gt, pred, not_clicked)
        out.append((Click(x, y, int(positive)), value))
        not_clicked[y, x] = False
        pred = answers[k]
    return out


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_next_click_agrees_with_ritm_on_random_masks(data):
    gt = data.draw(masks)
    pred = data.draw(arrays(np.bool_, gt.shape))
    clicked = (gt ^ pred) & data.draw(arrays(np.bool_, gt.shape))  # some error pixels already clicked
    positive, (y, x), value = ritm_next_click(gt, pred, ~clicked)
    ours = next_click(gt, pred, clicked)
    if value == 0:  # no error left to click: RITM would click a meaningless pixel, we stop
        assert ours is None
        return
    click, distance, source = ours
    assert (click.x, click.y, click.label) == (x, y, int(positive))
    assert source == ("fn" if positive else "fp") and distance == pytest.approx(value, abs=1e-4)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_simulated_clicks_agree_with_ritms_loop(data):
    gt = data.draw(masks)
    if not gt.any():
        return
    n = data.draw(st.integers(1, 6))
    answers = data.draw(st.lists(arrays(np.bool_, gt.shape), min_size=6, max_size=6))
    calls = iter(answers)
    sim = simulate_clicks(gt, lambda p, l: next(calls), n_clicks=n)
    ritm = ritm_simulation(gt, answers, n)
    assert sim.clicks == [c for c, _ in ritm[: len(sim.clicks)]]
    assert sim.distances == pytest.approx([v for _, v in ritm[: len(sim.clicks)]], abs=1e-4)
    if sim.stop_reason in ("perfect", "stuck") and len(sim.clicks) < n:
        assert ritm[len(sim.clicks)][1] == 0  # we stop where RITM has no error left to click


# --------------------------------------------------------------------------- SAM's masks in the loop
class RecordingPredictor:
    """Stands in for SamPredictor: records ``multimask_output``; paints a 3 x 3 square per positive
    click (three identical candidates, or one)."""

    def __init__(self, shape):
        self.original_size, self.calls = shape, []

    def predict(self, point_coords, point_labels, multimask_output):
        self.calls.append((len(point_coords), multimask_output))
        mask = np.zeros(self.original_size, bool)
        for (x, y), label in zip(point_coords.astype(int), point_labels):
            if label:
                mask[max(0, y - 1): y + 2, max(0, x - 1): x + 2] = True
        n = 3 if multimask_output else 1
        return np.stack([mask] * n), np.linspace(0.5, 0.9, n), None


@pytest.mark.parametrize("multimask, expect", [
    ("auto", [(1, True), (2, False), (3, False)]), (None, [(1, True), (2, False), (3, False)]),
    ("always", [(1, True), (2, True), (3, True)]), (True, [(1, True), (2, True), (3, True)]),
    ("never", [(1, False), (2, False), (3, False)]), (False, [(1, False), (2, False), (3, False)]),
])
def test_the_simulation_asks_sam_for_one_mask_from_two_clicks_on(multimask, expect):
    shape = (12, 30)
    gt = rect(shape, (1, 3), (1, 3)) | rect(shape, (6, 8), (12, 14)) | rect(shape, (1, 3), (24, 26))
    fake = RecordingPredictor(shape)
    kwargs = {} if multimask is None else {"multimask": multimask}
    sim = simulate_clicks(gt, predictor_fn(fake, **kwargs), n_clicks=3)
    assert sim.stop_reason == "perfect" and len(sim.clicks) == 3
    assert fake.calls == expect
    with pytest.raises(BadInputError, match="multimask"):
        predictor_fn(fake, multimask="sometimes")


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_simulation_invariants_with_an_arbitrary_predictor(data):
    gt = data.draw(masks)
    if not gt.any():
        return
    n = data.draw(st.integers(1, 6))
    answers = data.draw(st.lists(arrays(np.bool_, gt.shape), min_size=6, max_size=6))
    calls = iter(answers)
    sim = simulate_clicks(gt, lambda p, l: next(calls), n_clicks=n)
    assert 1 <= len(sim.clicks) <= n
    assert len(sim.ious) == len(sim.clicks) == len(sim.distances) == len(sim.sources)
    assert len({(c.x, c.y) for c in sim.clicks}) == len(sim.clicks)  # no pixel clicked twice
    assert sim.ious == [iou(a, gt) for a in answers[: len(sim.ious)]]
    assert sim.stop_reason in ("n_clicks", "perfect", "stuck")
    if sim.stop_reason == "n_clicks":
        assert len(sim.clicks) == n


# --------------------------------------------------------------------------- the tiny SAM
def test_tiny_sam_runs_the_real_loop_deterministically(tiny_sam, rgb_image):
    yy, xx = np.mgrid[:96, :128]
    gt = (yy - 48) ** 2 + (xx - 64) ** 2 < 15 ** 2  # the bright disc
    runs = [simulate_clicks(gt, sam_predictor_fn(tiny_sam, rgb_image), n_clicks=3, keep_masks=True)
            for _ in range(2)]
    first, second = runs
    assert first.clicks == second.clicks and first.ious == second.ious
    assert first.clicks[0] == Click(64, 48, 1)  # the disc's centre
    assert 1 <= len(first.clicks) <= 3
    assert all(0 <= c.x < 128 and 0 <= c.y < 96 for c in first.clicks)
    assert all(m.shape == gt.shape for m in first.masks)


# --------------------------------------------------------------------------- rs-seg clicks
def _write_pair(tmp_path, rgb, mask):
    from PIL import Image

    image = tmp_path / "image.png"
    Image.fromarray(rgb).save(image)
    mask_path = tmp_path / "mask.png"
    Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path)
    return image, mask_path


def test_clicks_command_writes_pixel_clicks_and_prints_ious(tmp_path, rgb_image, capsys):
    from rs_helpers.cli import main

    yy, xx = np.mgrid[:96, :128]
    gt = (yy - 48) ** 2 + (xx - 64) ** 2 < 15 ** 2
    image, mask = _write_pair(tmp_path, rgb_image, gt)
    out = tmp_path / "clicks.json"
    assert main(["clicks", str(image), str(mask), "--n", "3", "--out", str(out), "--profile", "tiny",
                 "--device", "cpu"]) == 0
    clicks = read_clicks(out, 128, 96)
    assert clicks[0] == Click(64, 48, 1) and 1 <= len(clicks) <= 3
    text = capsys.readouterr().out
    assert "IoU" in text and "(64, 48)" in text
    written = json.loads(out.read_text())  # the clicks and the segmenter that chose them
    assert written["segmenter"] == "sam" and written["segmenter_model"] == "tiny"
    assert [(c["x"], c["y"], c["label"]) for c in written["clicks"]] == [(c.x, c.y, c.label) for c in clicks]


def test_clicks_command_tie_and_multimask_options(tmp_path, rgb_image, capsys):
    from rs_helpers.cli import main

    yy, xx = np.mgrid[:96, :128]
    image, mask = _write_pair(tmp_path, rgb_image, (yy - 48) ** 2 + (xx - 64) ** 2 < 15 ** 2)
    out = tmp_path / "clicks.json"
    base = ["clicks", str(image), str(mask), "--n", "2", "--profile", "tiny", "--device", "cpu"]
    assert main(base + ["--out", str(out)]) == 0
    assert "rules: tie negative, SAM multimask auto" in capsys.readouterr().out
    assert main(base + ["--out", str(tmp_path / "c2.json"), "--tie", "positive", "--multimask", "always"]) == 0
    assert "rules: tie positive, SAM multimask always" in capsys.readouterr().out
    assert main(base + ["--out", str(tmp_path / "c3.json"), "--single-mask"]) == 0
    assert "SAM multimask never" in capsys.readouterr().out
    for bad in (["--tie", "ritm"], ["--multimask", "sometimes"], ["--single-mask", "--multimask", "auto"]):
        assert main(base + ["--out", str(tmp_path / "c4.json"), *bad]) == 2
    assert not (tmp_path / "c4.json").exists()


def test_clicks_command_rejects_bad_masks(tmp_path, rgb_image, capsys):
    from rs_helpers.cli import main

    image, empty = _write_pair(tmp_path, rgb_image, np.zeros((96, 128), bool))
    out = tmp_path / "clicks.json"
    assert main(["clicks", str(image), str(empty), "--out", str(out), "--profile", "tiny"]) == 2
    assert "empty" in capsys.readouterr().err
    small = tmp_path / "small.png"
    from PIL import Image

    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(small)
    assert main(["clicks", str(image), str(small), "--out", str(out), "--profile", "tiny"]) == 2
    assert "size" in capsys.readouterr().err
    assert not out.exists()


def test_pictures_of_the_simulation():
    import matplotlib.pyplot as plt

    from rs_helpers.teaching.plotting import plot_click_simulation, plot_distance_maps

    shape = (20, 40)
    gt = rect(shape, (4, 14), (4, 14)) | rect(shape, (4, 8), (26, 30))
    sim = simulate_clicks(gt, square_oracle(shape, 5, 1), n_clicks=3, keep_masks=True)
    image = np.zeros(shape + (3,), np.uint8)
    fig = plot_click_simulation(image, gt, sim, ncols=2, title="TINY: meaningless")
    assert len(fig.axes) == 4 and "IoU 0.83" in fig.axes[0].get_title()
    assert fig._suptitle.get_text() == "TINY: meaningless"
    fig2 = plot_distance_maps(gt, sim.masks[1])
    maps = [ax for ax in fig2.axes if ax.get_label() != "<colorbar>"]
    bars = [ax for ax in fig2.axes if ax.get_label() == "<colorbar>"]
    assert len(maps) == len(bars) == 3 and "max 2.0" in maps[2].get_title()
    assert all("pixels" in bar.get_ylabel() for bar in bars)  # each distance map has its colour bar
    plt.close("all")
    with pytest.raises(BadInputError, match="keep_masks"):
        plot_click_simulation(image, gt, simulate_clicks(gt, square_oracle(shape, 5, 1), n_clicks=1))
