"""Plot helpers draw what they promise and return the axes they drew on."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rs_helpers.teaching import plotting  # noqa: E402


def test_colorize_uses_palette_and_ignore_colour():
    labels = np.array([[0, 1], [255, 1]], np.uint8)
    rgb = plotting.colorize(labels, [(10, 20, 30), (40, 50, 60)])
    assert rgb[0, 0].tolist() == [10, 20, 30] and rgb[0, 1].tolist() == [40, 50, 60]
    assert rgb[1, 0].tolist() == [0, 0, 0]


def test_points_are_green_and_red_stars():
    _, ax = plt.subplots()
    out = plotting.show_points(np.array([[1, 2], [3, 4], [5, 6]]), [1, 0, 1], ax=ax)
    assert out is ax
    colours = [tuple(np.round(c.get_facecolor()[0][:3], 3)) for c in ax.collections]
    assert (0.0, 0.502, 0.0) in colours and (1.0, 0.0, 0.0) in colours
    assert [len(c.get_offsets()) for c in ax.collections] == [2, 1]
    plt.close("all")


def test_mask_overlay_is_translucent_with_contour():
    _, ax = plt.subplots()
    mask = np.zeros((10, 10), bool)
    mask[2:5, 2:5] = True
    assert plotting.show_mask(mask, ax=ax) is ax
    overlay = ax.images[0].get_array()
    assert overlay[3, 3, 3] == 0.5 and overlay[0, 0, 3] == 0
    assert len(ax.collections) >= 1  # the contour
    plt.close("all")


def test_box_semantic_proposals_and_panels(rgb_image):
    _, ax = plt.subplots()
    assert plotting.show_box((1, 2, 30, 40), ax=ax) is ax
    assert ax.patches[0].get_width() == 29
    labels = np.zeros(rgb_image.shape[:2], np.uint8)
    labels[:10] = 1
    ax2 = plotting.show_semantic(labels, [(0, 0, 0), (255, 0, 0)], ["bg", "house"])
    assert [t.get_text() for t in ax2.get_legend().get_texts()] == ["bg", "house"]
    ax3 = plotting.show_proposals(rgb_image, np.stack([labels == 1, labels == 0]))
    assert len(ax3.images) == 2
    fig = plotting.show_panels(rgb_image, labels, labels, [(0, 0, 0), (255, 0, 0)], ["bg", "house"])
    assert len(fig.axes) == 3
    plt.close("all")


def test_panels_announce_the_tiny_profile(rgb_image, monkeypatch):
    labels = np.zeros(rgb_image.shape[:2], np.uint8)
    monkeypatch.setenv("RS_HELPERS_PROFILE", "tiny")
    fig = plotting.show_panels(rgb_image, labels, labels, [(0, 0, 0)], ["bg"])
    assert "MEANINGLESS" in fig._suptitle.get_text()
    monkeypatch.setenv("RS_HELPERS_PROFILE", "full")
    fig = plotting.show_panels(rgb_image, labels, labels, [(0, 0, 0)], ["bg"], suptitle="real")
    assert fig._suptitle.get_text() == "real"
    plt.close("all")
