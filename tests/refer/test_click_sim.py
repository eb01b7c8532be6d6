"""Click simulation: hand-computed clicks with an oracle "SAM", geometric properties, the real
loop with the tiny SAM, and ``rs-seg clicks``."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rs_helpers.refer.click_sim import (
    first_click,
    iou,
    next_click,
    padded_distance,
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


def test_equal_maxima_give_a_positive_click():
    # A 7 x 7 target and a 7 x 7 oracle square around the first click, shifted by 1 px: the
    # false-negative strip and the false-positive strip both reach distance 1.
    shape = (16, 16)
    gt = rect(shape, (4, 10), (4, 10))
    pred = rect(shape, (4, 10), (5, 11))
    click, distance, source = next_click(gt, pred)
    assert (click, distance, source) == (Click(4, 4, 1), 1.0, "fn")


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
        assert distance == fn_max >= fp_max
    else:
        assert click.label == 0 and pred[click.y, click.x] and not gt[click.y, click.x]
        assert distance == fp_max > fn_max


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
    assert isinstance(json.loads(out.read_text()), list)


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
    assert len(fig2.axes) == 3 and "max 2.0" in fig2.axes[2].get_title()
    plt.close("all")
    with pytest.raises(BadInputError, match="keep_masks"):
        plot_click_simulation(image, gt, simulate_clicks(gt, square_oracle(shape, 5, 1), n_clicks=1))
