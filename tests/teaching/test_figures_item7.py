"""The figures of notebooks 00, 02, 05, 07 and 09 show what they claim: legends cover every class and
the unlabelled pixels, colour bars carry units, the sample grid fits a page, targets never hide
the click stars, and the per-tile stretch really leaves seams. Hand-built inputs, known answers."""
from __future__ import annotations

import itertools
from types import SimpleNamespace

import matplotlib
import matplotlib.collections

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rs_helpers import samples  # noqa: E402
from rs_helpers.errors import BadInputError  # noqa: E402
from rs_helpers.geo.rasters import stretch_to_uint8  # noqa: E402
from rs_helpers.teaching import figures, plotting, scene_figures  # noqa: E402

PALETTE = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
NAMES = ["house", "tree", "water"]


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _texts(legend):
    return [t.get_text() for t in legend.get_texts()]


def _colourbars(fig):
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def _hatched(ax):
    """The hatched collections of ``ax`` (matplotlib >= 3.8: the contour set itself; 3.7: its per-level parts)."""
    def hatch(c):
        hatches = getattr(c, "hatches", None)
        return hatches[0] if hatches else c.get_hatch()

    return [c for c in ax.collections if hatch(c) == plotting.UNLABELLED_HATCH]


def _distance(a, b):
    return float(np.linalg.norm(np.subtract(a, b, dtype=float)))


# --------------------------------------------------------------------------- legends and unlabelled pixels
def test_semantic_legend_lists_absent_classes_and_the_unlabelled_pixels():
    labels = np.array([[0, 0, 255], [0, 2, 2]], np.uint8)
    _, ax = plt.subplots()
    plotting.show_semantic(labels, PALETTE, NAMES, ax=ax)
    assert _texts(ax.get_legend()) == ["house", "tree (absent)", "water", "unlabelled"]
    drawn = ax.images[0].get_array()
    assert drawn[0, 2].tolist() == list(plotting.UNLABELLED) and drawn[0, 0].tolist() == list(PALETTE[0])
    assert _hatched(ax), "unlabelled pixels are hatched, not only grey"
    patch = ax.get_legend().legend_handles[-1]
    assert patch.get_hatch() == plotting.UNLABELLED_HATCH
    _, ax = plt.subplots()
    plotting.show_semantic(labels[1:], PALETTE, NAMES, ax=ax, absent="hide", legend_loc="below")
    assert _texts(ax.get_legend()) == ["house", "water"] and not _hatched(ax)


def test_panels_give_the_ground_truth_a_legend_and_the_prediction_every_class():
    image = np.zeros((8, 8, 3), np.uint8)
    truth = np.zeros((8, 8), np.uint8)
    truth[:2] = 255
    truth[4:] = 1
    prediction = np.zeros((8, 8), np.uint8)  # only "house": tree and water are absent
    fig = plotting.show_panels(image, truth, prediction, PALETTE, NAMES, tiny_warning=True)
    _, gt_ax, pred_ax = fig.axes
    assert _texts(gt_ax.get_legend()) == ["house", "tree", "water (absent)", "unlabelled"]
    assert _texts(pred_ax.get_legend()) == ["house", "tree (absent)", "water (absent)"]
    assert "MEANINGLESS" in fig._suptitle.get_text()


def test_the_shared_legend_of_notebook_02_names_unlabelled_pixels():
    image = np.zeros((8, 8, 3), np.uint8)
    truth = np.zeros((8, 8), np.uint8)
    truth[0] = 255
    fig = figures.plot_label_maps(image, truth, {"a": np.zeros((8, 8), np.uint8)}, PALETTE, NAMES, tiny_warning=False)
    assert [t.get_text() for legend in fig.legends for t in legend.get_texts()] == NAMES + ["unlabelled"]


# --------------------------------------------------------------------------- notebook 00
def _fake_sample(name, labels, names=NAMES, palette=PALETTE):
    rgb = np.zeros(labels.shape + (3,), np.uint8)
    return SimpleNamespace(name=name, palette=palette, class_names=names,
                           load=lambda: (SimpleNamespace(rgb=rgb), labels))


def test_sample_grid_fits_a_page_with_a_legend_under_every_ground_truth():
    with_ignore = np.zeros((10, 12), np.uint8)
    with_ignore[:3] = 255
    plain = np.full((10, 12), 2, np.uint8)
    shown = [_fake_sample(f"s{k}", with_ignore if k % 2 else plain) for k in range(5)]
    fig = scene_figures.plot_sample_grid(shown, columns=4, size=3.2)
    width, _ = fig.get_size_inches()
    assert width <= scene_figures.MAX_WIDTH
    axes = np.array(fig.axes).reshape(3, 4)  # 5 samples, 2 per row
    truths = [ax for ax in axes.flat if ax.get_title() == "ground truth"]
    assert len(truths) == 5 and [ax.get_title() for ax in axes[:, 0]] == ["s0", "s2", "s4"]
    for k, ax in enumerate(truths):
        texts = _texts(ax.get_legend())
        assert texts[:3] == (["house", "tree (absent)", "water (absent)"] if k % 2 else
                             ["house (absent)", "tree (absent)", "water"])
        assert ("unlabelled" in texts) == bool(k % 2)
    assert all(not ax.axison and not ax.images for ax in axes[2, 2:])  # the empty slot
    wide = scene_figures.plot_sample_grid(shown, columns=10, size=5)
    assert wide.get_size_inches()[0] <= scene_figures.MAX_WIDTH
    with pytest.raises(BadInputError):
        scene_figures.plot_sample_grid([])


@pytest.mark.parametrize("palette", [samples.DUBAI_PALETTE, samples.CHESAPEAKE_PALETTE, samples.BINARY_PALETTE],
                         ids=["dubai", "chesapeake", "binary"])
def test_sample_palettes_keep_every_colour_and_unlabelled_apart(palette):
    colours = list(palette) + [plotting.UNLABELLED]
    for a, b in itertools.combinations(colours, 2):
        assert _distance(a, b) >= 60, (a, b)


def test_dubai_water_is_blue_and_building_and_land_differ():
    colour = dict(zip(samples.DUBAI_CLASSES, samples.DUBAI_PALETTE))
    red, green, blue = colour["water"]
    assert blue > red and blue > green
    assert _distance(colour["building"], colour["land"]) >= 120


# --------------------------------------------------------------------------- notebook 05
def test_target_is_gold_and_leaves_the_click_stars_visible():
    image = np.zeros((20, 20, 3), np.uint8)
    target = np.zeros((20, 20), bool)
    target[5:15, 5:15] = True
    mask = np.roll(target, 2, axis=1)
    fig = figures.plot_clicks_on_target(image, target, mask, [(10, 10), (1, 1)], [1, 0], mask_title="SAM",
                                        tiny_warning=True)
    left, right = fig.axes
    fill = left.images[1].get_array()[10, 10]
    positive = np.array(matplotlib.colors.to_rgb("green"))
    assert _distance(fill[:3], plotting.TARGET_GOLD / np.array(255.0)) < 1e-6
    assert _distance(fill[:3], positive) > 0.8  # far from the positive star's green (RGB in 0..1)
    for ax in (left, right):
        stars = [c for c in ax.collections if isinstance(c, matplotlib.collections.PathCollection)
                 and len(c.get_offsets()) and len(c.get_facecolor())]  # scatter markers, not contour parts (3.7)
        faces = [tuple(np.round(c.get_facecolor()[0][:3], 3)) for c in stars]
        assert (0.0, 0.502, 0.0) in faces and (1.0, 0.0, 0.0) in faces
    assert _texts(fig.legends[0]) == ["target (gold)", "SAM mask (blue)", "positive click", "negative click"]
    assert right.get_title() == "SAM" and "MEANINGLESS" in fig._suptitle.get_text()


# --------------------------------------------------------------------------- notebook 07
def test_distance_maps_have_colour_bars_in_pixels():
    gt = np.zeros((30, 30), bool)
    gt[5:25, 5:25] = True
    pred = np.zeros_like(gt)
    pred[5:25, 5:15] = True
    pred[0:3, 0:3] = True
    fig = plotting.plot_distance_maps(gt, pred)
    bars = _colourbars(fig)
    assert len(bars) == 3
    assert all("pixels" in bar.get_ylabel() for bar in bars)
    one = plotting.plot_distance_maps(gt)
    assert len(_colourbars(one)) == 1 and "max 10.0 px" in one.axes[0].get_title()


# --------------------------------------------------------------------------- notebook 09
def _ramp(size=100):
    """A smooth left-to-right ramp of 16-bit values: no edge anywhere."""
    return np.tile(np.arange(size, dtype=np.uint16) * 20 + 100, (size, 1))


def test_per_tile_stretch_leaves_seams_a_global_stretch_does_not():
    band = _ramp()
    scene = stretch_to_uint8(band)
    per_tile = scene_figures.per_tile_stretch(band, 50)
    difference = np.abs(scene.astype(int) - per_tile.astype(int))
    assert difference[:, 49].min() > 50 and difference[:, 50].min() > 50  # both sides of the seam
    assert scene_figures.tile_borders(100, 100, 50) == ([50], [50])
    seam, rest = scene_figures.seam_steps(per_tile, 50)
    # per tile: white to black across the column border (~255), nothing across the row border (the
    # ramp runs along the columns): a mean of ~128 against a few grey levels elsewhere
    assert seam > 120 and rest < 10
    seam, rest = scene_figures.seam_steps(scene, 50)
    assert seam == pytest.approx(rest, abs=1.5)  # one stretch: no seam


def test_tiles_with_the_same_values_stretch_alike():
    band = np.tile(np.arange(25, dtype=np.uint16) * 40, (100, 4))  # every 50 px tile holds the same values
    assert np.array_equal(scene_figures.per_tile_stretch(band, 50), stretch_to_uint8(band))
    with pytest.raises(BadInputError):
        scene_figures.per_tile_stretch(band[None], 50)
    with pytest.raises(BadInputError):
        scene_figures.seam_steps(band[None], 50)


def test_stretch_figure_shows_the_borders_and_the_difference_with_a_colour_bar():
    band = _ramp()
    fig = scene_figures.plot_stretch_comparison(band, np.dstack([stretch_to_uint8(band)] * 3), tile=50, size=2)
    bars = _colourbars(fig)
    assert len(bars) == 1 and "grey levels" in bars[0].get_ylabel()
    naive, scene, per_tile, difference = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert "(b) one stretch" in scene.get_title() and "(c) stretched per 50 px tile (4 tiles)" in per_tile.get_title()
    assert list(per_tile.get_xticks()) == [50] and list(per_tile.get_yticks()) == [50]
    shown = difference.images[0].get_array()
    assert shown[:, 49:51].min() > 50 and len(difference.lines) == 2  # the seam and the two dashed borders
    with pytest.raises(BadInputError):
        scene_figures.plot_stretch_comparison(band, band[:50], tile=50)
