"""Selection on hand-built proposals and a hand-built probability map, with known answers."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rs_helpers.ovss.clip_dense import pixel_labels
from rs_helpers.errors import BadInputError
from rs_helpers.ovss.selection import (
    SelectionSettings,
    class_fractions,
    mean_probabilities,
    paint_order,
    select_binary,
    select_from_scores,
    select_semantic,
)


def _box(shape, y0, y1, x0, x1):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


@pytest.fixture
def scene():
    """An 8 x 8 image, 3 classes (0 background, 1 building, 2 road).

    CLIP probabilities: left half favours building (1), right half road (2), except the top-right
    2 x 2 corner which favours background (0). Masks: A = left 8 x 4 half, B = a 4 x 4 block in
    the right half straddling the corner, C = a 2 x 2 block inside A (small, on top).
    """
    shape = (8, 8)
    probs = np.zeros((3,) + shape, np.float32)
    probs[1, :, :4] = 0.7
    probs[0, :, :4] = 0.1
    probs[2, :, :4] = 0.2
    probs[2, :, 4:] = 0.6
    probs[0, :, 4:] = 0.3
    probs[1, :, 4:] = 0.1
    probs[:, 0:2, 6:8] = np.array([0.8, 0.1, 0.1])[:, None, None]
    masks = np.stack([_box(shape, 0, 8, 0, 4), _box(shape, 0, 4, 4, 8), _box(shape, 2, 4, 1, 3)])
    return masks, probs


def test_fractions_known(scene):
    masks, probs = scene
    frac = class_fractions(masks, pixel_labels(probs), 3)
    assert np.allclose(frac[0], [0, 1, 0])
    assert np.allclose(frac[1], [4 / 16, 0, 12 / 16])
    assert np.allclose(frac[2], [0, 1, 0])
    assert np.allclose(mean_probabilities(masks[:1], probs), [[0.1, 0.7, 0.2]])


def test_semantic_known_map(scene):
    masks, probs = scene
    labels = pixel_labels(probs)
    # C's class is building too; make it road to see that the small mask stays on top
    labels_c = labels.copy()
    labels_c[2:4, 1:3] = 2
    sel = select_semantic(masks, labels_c, 3)
    expected = np.full((8, 8), 2, np.uint8)  # uncovered bottom-right: CLIP says road
    expected[:, :4] = 1  # mask A: building (12 of 16... all but C's 4 pixels)
    expected[2:4, 1:3] = 2  # mask C on top: road
    expected[0:4, 4:8] = 2  # mask B: majority road, corner included
    assert sel.labels.tolist() == expected.tolist()
    assert sel.mask_classes.tolist() == [1, 2, 2]


def test_uncovered_pixels_follow_fallback(scene):
    masks, probs = scene
    labels = pixel_labels(probs)
    clip = select_semantic(masks[:1], labels, 3, SelectionSettings(fallback="clip")).labels
    assert clip[0, 7] == 0 and clip[7, 7] == 2  # CLIP's own labels where no mask is
    bg = select_semantic(masks[:1], labels, 3, SelectionSettings(fallback="background"), background_index=0).labels
    assert (bg[:, 4:] == 0).all()
    ignore = select_semantic(masks[:1], labels, 3, SelectionSettings(fallback="ignore")).labels
    assert (ignore[:, 4:] == 255).all() and (ignore[:, :4] == 1).all()
    no_bg_class = select_semantic(masks[:1], labels, 3, SelectionSettings(fallback="background")).labels
    assert (no_bg_class[:, 4:] == 255).all()


def test_painting_order_policies():
    big = _box((4, 4), 0, 4, 0, 4)
    small = _box((4, 4), 0, 2, 0, 2)
    masks = np.stack([small, big])
    labels = np.ones((4, 4), int)
    labels[0:2, 0:2] = 0
    large_first = select_semantic(masks, labels, 2).labels
    assert large_first[0, 0] == 0 and large_first[3, 3] == 1
    small_first = select_semantic(masks, labels, 2, SelectionSettings(order="small_first")).labels
    assert (small_first == 1).all()
    assert paint_order(np.array([5, 9, 5]), "large_first").tolist() == [1, 0, 2]
    assert paint_order(np.array([5, 9, 5]), "small_first").tolist() == [0, 2, 1]
    assert paint_order(np.array([1, 1, 1]), "score", np.array([0.9, 0.1, 0.5])).tolist() == [1, 2, 0]


def test_mean_prob_vote_differs_from_majority():
    probs = np.zeros((2, 1, 3), np.float32)
    probs[:, 0, 0] = (0.45, 0.55)
    probs[:, 0, 1] = (0.45, 0.55)
    probs[:, 0, 2] = (0.99, 0.01)
    masks = np.ones((1, 1, 3), bool)
    labels = pixel_labels(probs)
    assert select_semantic(masks, labels, 2).mask_classes.tolist() == [1]
    assert select_semantic(masks, labels, 2, SelectionSettings(vote="mean_prob"), probs=probs).mask_classes.tolist() == [0]
    with pytest.raises(BadInputError, match="probability"):
        select_semantic(masks, labels, 2, SelectionSettings(vote="mean_prob"))


def test_binary_known_map(scene):
    masks, probs = scene
    labels = pixel_labels(probs)
    road = select_binary(masks, labels, target=2, n_classes=3)
    expected = np.zeros((8, 8), np.uint8)
    expected[0:4, 4:8] = 1  # only B has road fraction 0.75 > 0.5; union of kept masks, nothing else
    assert road.labels.tolist() == expected.tolist()
    assert road.mask_classes.tolist() == [-1, 1, -1]
    strict = select_binary(masks, labels, target=2, n_classes=3, settings=SelectionSettings(tau=0.8))
    assert strict.labels.sum() == 0
    building = select_binary(masks, labels, target=1, n_classes=3)
    assert building.labels[:, :4].all() and not building.labels[:, 4:].any()
    with_clip = select_binary(masks, labels, target=2, n_classes=3, settings=SelectionSettings(fallback="clip"))
    assert with_clip.labels[4:, 4:].all()  # uncovered pixels that CLIP calls road
    with pytest.raises(BadInputError):
        select_binary(masks, labels, target=3, n_classes=3)


def test_no_proposals_gives_fallback(scene):
    _, probs = scene
    labels = pixel_labels(probs)
    empty = np.zeros((0, 8, 8), bool)
    assert np.array_equal(select_semantic(empty, labels, 3).labels, labels)
    assert select_binary(empty, labels, 2, 3).labels.sum() == 0


def test_select_from_scores(scene):
    masks, probs = scene
    labels = pixel_labels(probs)
    scores = np.array([[0.1, 0.1, 0.8], [0.6, 0.2, 0.2], [0.1, 0.8, 0.1]])
    sel = select_from_scores(masks, scores, labels)
    assert sel.mask_classes.tolist() == [2, 0, 1]
    assert sel.labels[0, 0] == 2 and sel.labels[2, 1] == 1 and sel.labels[0, 5] == 0
    binary = select_from_scores(masks, scores, labels, binary_target=2)
    assert binary.mask_classes.tolist() == [1, -1, -1]
    assert binary.labels[:, :4].sum() == 32 - 0 and binary.labels[:, 4:].sum() == 0


def test_bad_settings_and_shapes():
    for bad in (dict(order="random"), dict(fallback="zero"), dict(vote="sum"), dict(tau=1.0), dict(tau=-0.1)):
        with pytest.raises(BadInputError):
            SelectionSettings(**bad)
    with pytest.raises(BadInputError, match="masks must be"):
        select_semantic(np.zeros((1, 4, 4), bool), np.zeros((5, 5), int), 2)


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 6), st.integers(0, 5), st.integers(1, 6)),
                min_size=1, max_size=5), st.integers(0, 2**16))
@settings(max_examples=40, deadline=None)
def test_single_cover_pixels_take_their_masks_vote(boxes, seed):
    """Wherever exactly one mask covers a pixel, the label is that mask's majority class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, (8, 8))
    masks = np.stack([_box((8, 8), y, y + h, x, x + w) for y, h, x, w in boxes])
    sel = select_semantic(masks, labels, 3)
    counts = masks.sum(0)
    for i, m in enumerate(masks):
        only = m & (counts == 1)
        assert (sel.labels[only] == sel.mask_classes[i]).all()
        votes = np.bincount(labels[m], minlength=3)
        assert votes[sel.mask_classes[i]] == votes.max()
    assert np.array_equal(sel.labels[counts == 0], labels[counts == 0])


def test_select_from_scores_without_masks_falls_back_to_pixel_labels():
    from rs_helpers.ovss.selection import select_from_scores

    fallback = np.array([[0, 1], [1, 0]], np.uint8)
    empty = np.zeros((0, 2, 2), bool)
    for scores in (np.zeros((0, 3)), np.zeros(0)):
        multi = select_from_scores(empty, scores, fallback)
        assert (multi.labels == fallback).all() and len(multi.mask_classes) == 0
        binary = select_from_scores(empty, scores, fallback, binary_target=1)
        assert binary.labels.shape == (2, 2) and len(binary.mask_classes) == 0
