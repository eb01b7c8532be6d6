"""The figures of notebooks 01, 02 and 03 show what their titles say: hand-built inputs, known answers."""
from __future__ import annotations

from dataclasses import replace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rs_helpers.errors import BadInputError  # noqa: E402
from rs_helpers.teaching import figures  # noqa: E402

PALETTE = [(0, 0, 0), (255, 0, 0), (0, 0, 255)]
NAMES = ["bg", "house", "water"]


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _legend_texts(fig):
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


# --------------------------------------------------------------------------- pure helpers
def test_label_changes_marks_the_differing_pixels():
    before = np.array([[0, 1, 1, 2], [0, 0, 2, 2]])
    after = np.array([[0, 1, 2, 2], [1, 0, 2, 2]])
    changed, fraction = figures.label_changes(before, after)
    assert changed.tolist() == [[False, False, True, False], [True, False, False, False]]
    assert fraction == pytest.approx(2 / 8)
    assert figures.label_changes(before, before)[1] == 0.0
    with pytest.raises(BadInputError):
        figures.label_changes(before, after[:, :3])


def test_binary_errors_codes_and_ignore():
    pred = np.array([[1, 1, 0, 0, 1]])
    gt = np.array([[1, 0, 1, 0, 255]])
    assert figures.binary_errors(pred, gt).tolist() == [[1, 2, 3, 0, 255]]
    with pytest.raises(BadInputError):
        figures.binary_errors(pred, gt[:, :4])


def test_bias_by_row_groups_rows_by_class_and_averages_windows():
    bias = np.array([[0.1, 0.2, 0.3], [0.3, 0.4, 0.5]])  # 2 windows x 3 rows
    order, mean = figures.bias_by_row(bias, [1, 0, 1])
    assert order.tolist() == [1, 0, 2]
    assert mean == pytest.approx([0.3, 0.2, 0.4])
    with pytest.raises(BadInputError):
        figures.bias_by_row(bias, [0, 1])


# --------------------------------------------------------------------------- notebook 01
def test_mask_candidates_show_every_mask_its_score_and_the_kept_one(rgb_image):
    masks = np.zeros((3,) + rgb_image.shape[:2], bool)
    masks[0, :10, :10] = masks[1, :40, :40] = masks[2, :, :64] = True
    fig = figures.plot_mask_candidates(rgb_image, masks, [0.7, 0.93, 0.81], [[5, 5]], [1], tiny_warning=False)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 3
    assert [("0.700" in t, "0.930" in t, "0.810" in t) for t in titles] == [
        (True, False, False), (False, True, False), (False, False, True)]
    assert ["kept" in t for t in titles] == [False, True, False]
    assert all(ax.get_xlabel() == "x (pixels)" and ax.get_ylabel() == "y (pixels)" for ax in fig.axes)
    assert fig._suptitle is None
    with pytest.raises(BadInputError):
        figures.plot_mask_candidates(rgb_image, masks, [0.5, 0.6], [[5, 5]])


def test_score_histograms_have_labels_and_threshold_legends():
    fig = figures.plot_score_histograms(np.linspace(0, 1, 50), np.linspace(0.5, 1, 50), tiny_warning=False)
    assert [ax.get_xlabel() for ax in fig.axes] == ["predicted IoU", "stability score"]
    assert all(ax.get_ylabel() == "number of raw masks" for ax in fig.axes)
    legends = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes]
    assert legends == [["raw masks (50)", "default threshold: keep > 0.88"],
                       ["raw masks (50)", "default threshold: keep >= 0.95"]]


def test_grid_density_has_one_legend_for_both_axes():
    fig = figures.plot_grid_density([4, 9, 16], [3, 5, 8], [0.1, 0.2, 0.4], tiny_warning=False)
    left, right = fig.axes
    assert left.get_xlabel().startswith("prompts") and left.get_ylabel() == "masks kept"
    assert right.get_ylabel() == "seconds"
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["masks kept (left axis)",
                                                                      "seconds (right axis)"]
    assert right.lines[0].get_ydata().tolist() == [0.1, 0.2, 0.4]


# --------------------------------------------------------------------------- notebook 02
def test_label_maps_beside_the_ground_truth_share_one_legend(rgb_image):
    labels = np.zeros(rgb_image.shape[:2], np.uint8)
    labels[:, 64:] = 2
    fig = figures.plot_label_maps(rgb_image, labels, {"a": labels, "b": labels}, PALETTE, NAMES,
                                  tiny_warning=True)
    assert [ax.get_title() for ax in fig.axes] == ["image", "ground truth", "a", "b"]
    assert _legend_texts(fig) == NAMES  # every class, present or not, once
    assert all(ax.get_legend() is None for ax in fig.axes)
    assert "MEANINGLESS" in fig._suptitle.get_text()
    fig = figures.plot_label_maps(rgb_image, None, {"a": labels}, PALETTE, NAMES, tiny_warning=False)
    assert len(fig.axes) == 2 and fig._suptitle is None


def test_cls_bias_figure_shows_the_subtraction_and_where_labels_change(rgb_image):
    without = np.zeros(rgb_image.shape[:2], np.uint8)
    with_removal = without.copy()
    with_removal[:24] = 1  # a quarter of the rows change
    bias = np.array([[0.05, 0.01, 0.02, 0.03], [0.07, 0.03, 0.02, 0.05]])  # 2 windows x 4 rows
    fig = figures.plot_cls_bias(rgb_image, bias, ["bg", "house", "roof", "water"], [0, 1, 1, 2],
                                without, with_removal, PALETTE, NAMES, cls_lambda=0.3, tiny_warning=False)
    bars, mapped_without, mapped_with, changes = fig.axes
    assert [p.get_height() for p in bars.patches] == pytest.approx([0.06, 0.02, 0.02, 0.04])
    assert [t.get_text() for t in bars.get_xticklabels()] == ["bg", "house", "roof", "water"]
    assert "0.3" in bars.get_ylabel() and "2 windows" in bars.get_title()
    assert "25.0%" in changes.get_title()
    overlay = np.asarray(changes.images[-1].get_array())
    assert overlay[0, 0, 3] > 0 and overlay[-1, -1, 3] == 0
    assert _legend_texts(fig) == NAMES + ["label changed (d)"]
    assert "without" in mapped_without.get_title() and "with it" in mapped_with.get_title()


# --------------------------------------------------------------------------- notebook 03
def test_binary_overlays_colour_errors_and_show_the_ground_truth(rgb_image):
    gt = np.zeros(rgb_image.shape[:2], np.uint8)
    gt[:48] = 1
    pred = np.zeros_like(gt)
    pred[:24] = 1  # true positives on top, false negatives below them
    pred[-10:] = 1  # false positives at the bottom
    fig = figures.plot_binary_overlays(rgb_image, gt, {"tau 0.3": pred, "tau 0.5": pred}, [(0, 0, 0), (255, 255, 255)],
                                       ["background", "building"], tiny_warning=False)
    assert [ax.get_title() for ax in fig.axes] == ["image", "ground truth", "tau 0.3", "tau 0.5"]
    overlay = np.asarray(fig.axes[2].images[-1].get_array())
    green, red, blue = (np.array(figures.ERROR_COLOURS[c]) / 255 for c in (1, 2, 3))
    assert overlay[0, 0, :3] == pytest.approx(green)
    assert overlay[-1, 0, :3] == pytest.approx(red)
    assert overlay[30, 0, :3] == pytest.approx(blue)
    assert overlay[60, 0, 3] == 0  # a true negative stays clear
    assert _legend_texts(fig) == ["background (ground truth)", "building (ground truth)",
                                  "true positive", "false positive", "false negative"]


# --------------------------------------------------------------------------- what cls_bias measures
def test_cls_bias_is_what_the_removal_subtracts(tiny_clip, rgb_image):
    from rs_helpers.ovss.clip_dense import DenseSettings, cls_bias, crops, similarity_map
    from rs_helpers.ovss.vocabulary import encode_vocabulary, parse_classes

    text = encode_vocabulary(tiny_clip, parse_classes("red;green,lime;blue"), templates="single")
    sliding = DenseSettings(templates="single", long_side=256)
    bias = cls_bias(tiny_clip, rgb_image, text, sliding)
    assert bias.shape == (len(crops(tiny_clip, rgb_image, sliding).boxes), 4)  # 4 rows: lime too
    assert not np.allclose(bias, 0)
    assert np.allclose(cls_bias(tiny_clip, rgb_image, text, replace(sliding, cls_lambda=0.0)), 0)
    whole = replace(sliding, sliding_window=False)  # one window: the subtraction is one number per row
    removed = (similarity_map(tiny_clip, rgb_image, text, replace(whole, cls_lambda=0.0))
               - similarity_map(tiny_clip, rgb_image, text, whole)).numpy()
    (row_bias,) = cls_bias(tiny_clip, rgb_image, text, whole)
    assert removed == pytest.approx(np.broadcast_to(row_bias[:, None, None], removed.shape), abs=1e-5)
