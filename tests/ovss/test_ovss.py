"""The OVSS pipeline with tiny models and pluggable (hand-built) proposal generators."""
from __future__ import annotations

import numpy as np
import pytest

from rs_helpers.ovss.clip_dense import DenseSettings
from rs_helpers.errors import BadInputError
from rs_helpers.geo.rasters import RasterImage
from rs_helpers.ovss.pipeline import (
    PROPOSAL_GENERATORS,
    OvssSettings,
    default_palette,
    register_generator,
    segment,
    resize_labels,
    work_size,
)
from rs_helpers.sam.proposals import ProposalCache, ProposalSettings, Proposals, mask_boxes
from rs_helpers.ovss.selection import SelectionSettings
from rs_helpers.ovss.vocabulary import TextCache

FAST = OvssSettings(proposals=ProposalSettings(points_per_side=2), dense=DenseSettings(templates="single"))


class HandGenerator:
    """Proposals known in advance: the whole image as one mask, plus its left half."""

    __name__ = "hand"

    def __init__(self):
        self.calls = []

    def __call__(self, sam, image_rgb, settings):
        self.calls.append((image_rgb.shape, settings))
        h, w = image_rgb.shape[:2]
        masks = np.zeros((2, h, w), bool)
        masks[0] = True
        masks[1, :, : w // 2] = True
        return Proposals(masks, np.ones(2), np.ones(2), mask_boxes(masks))


def test_tiny_end_to_end(tiny_sam, tiny_clip, rgb_image):
    result = segment(rgb_image, "building,roof;road;water", sam=tiny_sam, clip=tiny_clip, settings=FAST)
    assert result.labels.shape == rgb_image.shape[:2] and result.labels.dtype == np.uint8
    assert result.class_names == ["building", "road", "water"]
    assert result.palette == default_palette(3)
    assert set(np.unique(result.labels)) <= {0, 1, 2}
    assert sum(result.shares.values()) == pytest.approx(1.0)
    for stage in ("resize", "proposals", "clip_text", "clip_dense", "selection", "upsample", "total"):
        assert stage in result.timings
    assert result.memory["peak_rss_mib"] > 0
    assert result.work_size == rgb_image.shape[:2]
    assert result.dense.probs.shape == (3,) + rgb_image.shape[:2]
    legend = result.legend()
    assert [e["name"] for e in legend] == result.class_names and legend[0]["synonyms"] == ["building", "roof"]


def test_hand_generator_known_answer(tiny_sam, tiny_clip, rgb_image):
    """One mask covers everything: the whole map is that mask's majority class, except the
    left half, which the second (smaller, on top) mask paints with its own majority."""
    gen = HandGenerator()
    result = segment(rgb_image, "a;b;c", sam=tiny_sam, clip=tiny_clip, settings=FAST, generator=gen)
    assert len(gen.calls) == 1 and gen.calls[0][1] == FAST.proposals
    clip_labels = result.dense.labels
    whole = np.bincount(clip_labels.ravel(), minlength=3).argmax()
    left = np.bincount(clip_labels[:, :64].ravel(), minlength=3).argmax()
    assert (result.labels[:, 64:] == whole).all()
    assert (result.labels[:, :64] == left).all()


def test_proposal_cache_reused_across_vocabularies(tiny_sam, tiny_clip, rgb_image):
    gen = HandGenerator()
    cache = ProposalCache()
    for classes in ("a;b", "a;b;c", "water;land"):
        segment(rgb_image, classes, sam=tiny_sam, clip=tiny_clip, settings=FAST, generator=gen, proposal_cache=cache)
    assert len(gen.calls) == 1 and cache.hits == 2


def test_text_cache_reused(tiny_sam, tiny_clip, rgb_image):
    texts = TextCache()
    gen = HandGenerator()
    for tau in (0.3, 0.7):
        s = OvssSettings(proposals=FAST.proposals, dense=FAST.dense, selection=SelectionSettings(tau=tau))
        segment(rgb_image, "background;building", binary=True, sam=tiny_sam, clip=tiny_clip, settings=s,
                generator=gen, text_cache=texts)
    assert texts.misses == 1 and texts.hits >= 1


def test_large_images_work_at_reduced_resolution(tiny_sam, tiny_clip):
    img = np.zeros((300, 200, 3), np.uint8)
    img[:, 100:] = 200
    gen = HandGenerator()
    s = OvssSettings(proposals=FAST.proposals, dense=FAST.dense, max_side=100)
    result = segment(img, "a;b", sam=tiny_sam, clip=tiny_clip, settings=s, generator=gen)
    assert gen.calls[0][0] == (100, 67, 3)
    assert result.work_size == (100, 67) and result.work_labels.shape == (100, 67)
    assert result.labels.shape == (300, 200)


def test_binary_mode(tiny_sam, tiny_clip, rgb_image):
    result = segment(rgb_image, "building", binary=True, sam=tiny_sam, clip=tiny_clip, settings=FAST)
    assert result.class_names == ["background", "building"] and result.target == "building"
    assert result.vocabulary.names == ["background", "building"]
    assert result.palette == [(0, 0, 0), (255, 255, 255)]
    assert set(np.unique(result.labels)) <= {0, 1}
    picked = segment(rgb_image, "background;building;road", binary=True, target="road", sam=tiny_sam,
                     clip=tiny_clip, settings=FAST)
    assert picked.class_names == ["background", "road"]


def test_crop_selector_path(tiny_sam, tiny_clip, rgb_image):
    s = OvssSettings(proposals=FAST.proposals, dense=FAST.dense, selector="crop")
    result = segment(RasterImage(rgb=rgb_image), "a;b;c", sam=tiny_sam, clip=tiny_clip, settings=s,
                     generator=HandGenerator())
    assert "clip_crops" in result.timings and result.selector == "crop"
    assert len(result.selection.mask_classes) == 2
    binary = segment(rgb_image, "a;b", binary=True, target="b", sam=tiny_sam, clip=tiny_clip, settings=s,
                     generator=HandGenerator())
    assert set(np.unique(binary.labels)) <= {0, 1}


def test_registered_generator_by_name(tiny_sam, tiny_clip, rgb_image):
    gen = HandGenerator()
    register_generator("hand-test", gen)
    try:
        segment(rgb_image, "a;b", sam=tiny_sam, clip=tiny_clip, settings=FAST, generator="hand-test")
    finally:
        PROPOSAL_GENERATORS.pop("hand-test")
    assert len(gen.calls) == 1


def test_generator_timings_are_merged(tiny_sam, tiny_clip, rgb_image):
    def timed(sam, image_rgb, settings):
        proposals = HandGenerator()(sam, image_rgb, settings)
        proposals.stages = {"encoder": {"seconds": 0.5, "peak_mib": 10.0},
                            "decoder": {"seconds": 0.25, "peak_mib": 20.0}}
        return proposals

    result = segment(rgb_image, "a;b", sam=tiny_sam, clip=tiny_clip, settings=FAST, generator=timed)
    assert result.timings["proposals.encoder"] == 0.5 and result.timings["proposals.decoder"] == 0.25
    assert result.memory["proposals.decoder peak_mib"] == 20.0


def test_fast_generator_is_the_default_and_reports_its_stages(tiny_sam, tiny_clip, rgb_image):
    from rs_helpers.ovss.pipeline import DEFAULT_GENERATOR

    assert DEFAULT_GENERATOR == "fast"
    result = segment(rgb_image, "a;b", sam=tiny_sam, clip=tiny_clip, settings=FAST)
    for stage in ("sam encoder", "sam decoder", "filtering"):
        assert result.timings[f"proposals.{stage}"] >= 0
        assert result.memory[f"proposals.{stage} peak_mib"] > 0
    reference = segment(rgb_image, "a;b", sam=tiny_sam, clip=tiny_clip, settings=FAST, generator="reference")
    assert len(reference.proposals) == len(result.proposals)


@pytest.mark.parametrize("kwargs,match", [
    (dict(classes=""), "empty"),
    (dict(classes="road;road"), "appears"),
    (dict(classes="building"), "one class"),
    (dict(classes="background;building;road", binary=True), "target"),
    (dict(classes="building;road", binary=True, target="water"), "not one of"),
    (dict(classes="a;b", generator="nope"), "generator"),
    (dict(classes="a;b", settings=OvssSettings(selector="vote")), "selector"),
    (dict(classes="a;b;c", palette=[(1, 2, 3)]), "palette"),
    (dict(classes="a;b", settings=OvssSettings(max_side=-1)), "max_side"),
])
def test_bad_inputs(tiny_sam, tiny_clip, rgb_image, kwargs, match):
    kwargs.setdefault("settings", FAST)
    classes = kwargs.pop("classes")
    with pytest.raises(BadInputError, match=match):
        segment(rgb_image, classes, sam=tiny_sam, clip=tiny_clip, **kwargs)


def test_bad_image(tiny_sam, tiny_clip):
    with pytest.raises(BadInputError, match="uint8"):
        segment(np.zeros((8, 8), np.uint8), "a;b", sam=tiny_sam, clip=tiny_clip)


def test_resolution_helpers():
    assert work_size(4000, 4000, 1024) == (1024, 1024)
    assert work_size(500, 300, 1024) == (500, 300)
    assert work_size(500, 300, None) == (500, 300)
    labels = np.array([[0, 1], [2, 3]], np.uint8)
    up = resize_labels(labels, (4, 6))
    assert up.tolist() == [[0, 0, 0, 1, 1, 1]] * 2 + [[2, 2, 2, 3, 3, 3]] * 2
    assert resize_labels(labels, (2, 2)) is labels
    assert resize_labels(up, (2, 2)).tolist() == labels.tolist()
    assert len(set(default_palette(40))) == 40
