"""The CLIP-only baseline (``--method clip``): equal to the dense map under the protocol's settings,
SAM never loaded, the same output files as SAM + CLIP, tiles, and the upsampler's wiring."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from rs_helpers.cli import main
from rs_helpers.errors import BadInputError
from rs_helpers.evaluation.method_settings import clip_settings
from rs_helpers.evaluation.protocols import get_protocol
from rs_helpers.geo.rasters import read_mask
from rs_helpers.ovss.clip_dense import SEGEARTH_OV, dense_map
from rs_helpers.ovss.clip_only import ClipOnlySettings, ClipTiles, load_upsampler, segment_clip
from rs_helpers.ovss.pipeline import resize_labels, resize_rgb, work_size

CLASSES = "background;building,roof;road;water"
QUICK = ["--profile", "tiny", "--device", "cpu", "--templates", "single"]


class Bicubic(torch.nn.Module):
    """A cheap stand-in upsampler: features bicubically to the guidance's size (counts its calls)."""

    calls = 0

    def forward(self, features, guidance):
        Bicubic.calls += 1
        return F.interpolate(features, size=guidance.shape[-2:], mode="bicubic", align_corners=False)


@pytest.fixture
def no_sam(monkeypatch):
    """Any attempt to load SAM fails the test."""
    import rs_helpers.models.sam as sam_module

    def refuse(*args, **kwargs):
        raise AssertionError("SAM was loaded by the CLIP-only method")

    monkeypatch.setattr(sam_module, "load_sam", refuse)


@pytest.fixture
def png(tmp_path, rgb_image):
    path = tmp_path / "in.png"
    Image.fromarray(rgb_image).save(path)
    return path


@pytest.mark.parametrize("dataset", ["loveda", "potsdam", "xbd-pre"])
def test_equals_the_dense_map_under_the_segearth_protocol(tiny_clip, rgb_image, dataset):
    """Labels, probabilities and the threshold to bg_idx are dense_map's with the protocol's values."""
    protocol = get_protocol("segearth-ov", dataset)
    classes = "a;b;c;d;e;clutter,background" if dataset == "potsdam" else CLASSES
    settings = clip_settings(protocol, templates="single")
    assert settings.max_side is None and not settings.resize_first and settings.prob_thd == protocol.prob_thd
    assert settings.dense.resize == "opencv" and settings.dense.short_crop == "own-size"
    assert settings.dense.cls_lambda == (0.0 if dataset == "xbd-pre" else 0.3)
    up = Bicubic()
    result = segment_clip(rgb_image, classes, clip=tiny_clip, settings=settings, upsampler=up)
    dm = dense_map(tiny_clip, rgb_image, classes, replace(SEGEARTH_OV, templates="single",
                                                          cls_lambda=protocol.cls_token_lambda),
                   prob_thd=protocol.prob_thd, bg_idx=protocol.bg_idx, upsampler=up)
    assert result.labels.shape == rgb_image.shape[:2] and result.work_size == rgb_image.shape[:2]
    np.testing.assert_array_equal(result.labels, dm.labels.astype(np.uint8))
    np.testing.assert_allclose(result.dense.probs, dm.probs, atol=1e-6)
    assert result.dense.background_index == protocol.bg_idx
    assert result.proposals is None and result.selection is None and result.selector == "none"
    # the threshold, by hand: below prob_thd -> bg_idx, else the argmax
    expected = dm.probs.argmax(0)
    expected[dm.probs.max(0) < protocol.prob_thd] = protocol.bg_idx
    np.testing.assert_array_equal(result.labels, expected)


def test_a_threshold_of_one_sends_every_pixel_to_the_background(tiny_clip, rgb_image):
    settings = ClipOnlySettings(dense=replace(SEGEARTH_OV, templates="single"), prob_thd=1.0)
    result = segment_clip(rgb_image, "road;background;water", clip=tiny_clip, settings=settings)
    assert set(np.unique(result.labels)) == {1} and result.shares["background"] == pytest.approx(1.0)
    with pytest.raises(BadInputError, match="prob_thd"):
        segment_clip(rgb_image, CLASSES, clip=tiny_clip, settings=replace(settings, prob_thd=1.5))


def test_native_protocol_resizes_first_and_scores_at_the_working_size(tiny_clip, rgb_image):
    settings = clip_settings(get_protocol("native", kind="ovss"), templates="single", max_side=64)
    assert settings.resize_first and settings.max_side == 64 and settings.dense.resize == "antialias"
    result = segment_clip(rgb_image, CLASSES, clip=tiny_clip, settings=settings)
    size = work_size(96, 128, 64)
    dm = dense_map(tiny_clip, resize_rgb(rgb_image, size), CLASSES, settings.dense, out_size=size)
    assert result.work_size == size == (48, 64)
    np.testing.assert_array_equal(result.labels, resize_labels(dm.labels.astype(np.uint8), (96, 128)))


def test_binary_map_is_the_target_pixels(tiny_clip, rgb_image):
    settings = ClipOnlySettings(dense=replace(SEGEARTH_OV, templates="single"), prob_thd=0.3)
    result = segment_clip(rgb_image, "background;building", clip=tiny_clip, binary=True, settings=settings)
    dm = dense_map(tiny_clip, rgb_image, "background;building", settings.dense, prob_thd=0.3)
    np.testing.assert_array_equal(result.labels, (dm.labels == 1).astype(np.uint8))
    assert result.class_names == ["background", "building"] and result.target == "building"
    assert [e["name"] for e in result.legend()] == ["background", "building"]


def test_the_real_tiny_simfeatup_runs_and_changes_the_map(tiny_clip, rgb_image):
    """One small window (long side 112) keeps the random SimFeatUp cheap."""
    up = load_upsampler("simfeatup", tiny_clip, profile="tiny")
    assert load_upsampler("none", tiny_clip) is None
    with pytest.raises(BadInputError, match="upsampler"):
        load_upsampler("bilinear", tiny_clip)
    settings = ClipOnlySettings(dense=replace(SEGEARTH_OV, templates="single", long_side=112))
    with_up = segment_clip(rgb_image, CLASSES, clip=tiny_clip, settings=settings, upsampler=up)
    dm = dense_map(tiny_clip, rgb_image, CLASSES, settings.dense, upsampler=up)
    np.testing.assert_allclose(with_up.dense.probs, dm.probs, atol=1e-6)
    without = segment_clip(rgb_image, CLASSES, clip=tiny_clip, settings=settings)
    assert not np.allclose(with_up.dense.probs, without.dense.probs)


def test_sam_clip_passes_the_upsampler_to_its_dense_map(tiny_sam, tiny_clip, rgb_image):
    from rs_helpers.ovss.clip_dense import DenseSettings
    from rs_helpers.ovss.pipeline import OvssSettings, segment
    from rs_helpers.sam.proposals import ProposalSettings

    settings = OvssSettings(proposals=ProposalSettings(points_per_side=2), dense=DenseSettings(templates="single"))
    before = Bicubic.calls
    result = segment(rgb_image, CLASSES, sam=tiny_sam, clip=tiny_clip, settings=settings, upsampler=Bicubic())
    assert Bicubic.calls > before
    dm = dense_map(tiny_clip, rgb_image, CLASSES, settings.dense, upsampler=Bicubic())
    np.testing.assert_allclose(result.dense.probs, dm.probs, atol=1e-6)


def test_tiles_segmenter_names_and_sums(tiny_clip, rgb_image):
    tiles = ClipTiles("building;road", clip=tiny_clip, settings=ClipOnlySettings(dense=replace(SEGEARTH_OV,
                                                                                              templates="single")))
    assert tiles.class_names == ["building", "road"] and len(tiles.palette) == 2 and tiles.proposals == 0
    labels = tiles(rgb_image[:48, :64])
    assert labels.shape == (48, 64) and labels.dtype == np.uint8 and tiles.timings["clip_dense"] > 0
    with pytest.raises(BadInputError, match="only one class"):
        ClipTiles("building", clip=tiny_clip)


# ---------------------------------------------------------------------------- rs-seg ovss --method clip
def test_cli_clip_method_writes_what_sam_clip_writes_without_sam(png, tmp_path, capsys, no_sam, tiny_clip):
    out = tmp_path / "clip.png"
    code = main(["ovss", str(png), "--classes", CLASSES, "--out", str(out), "--method", "clip",
                 "--upsampler", "none", "--background-threshold", "0.4", "--timings", *QUICK])
    assert code == 0
    labels = read_mask(out)
    legend = json.loads(out.with_name("clip.legend.json").read_text())
    assert legend["method"] == "clip" and legend["upsampler"] == "none" and legend["proposals"] == 0
    assert [c["name"] for c in legend["classes"]] == ["background", "building", "road", "water"]
    assert legend["settings"]["prob_thd"] == 0.4 and legend["settings"]["dense"]["resize"] == "opencv"
    text = capsys.readouterr().out
    assert "CLIP alone (no SAM)" in text and "MEANINGLESS" in text and "clip_dense" in text
    # the same map as the library call with SegEarth-OV's dense path and the threshold
    settings = ClipOnlySettings(dense=replace(SEGEARTH_OV, templates="single"), prob_thd=0.4, max_side=1024)
    expected = segment_clip(np.asarray(Image.open(png).convert("RGB")), CLASSES, clip=tiny_clip, settings=settings)
    np.testing.assert_array_equal(labels, expected.labels)


def test_cli_clip_method_default_upsampler_is_simfeatup_announced_under_tiny(tmp_path, capsys, no_sam, monkeypatch):
    import rs_helpers.profile as profile

    monkeypatch.setattr(profile, "_announced", set())  # announced once per process: again for this test
    path = tmp_path / "strip.png"  # a strip: its 448 px long side gives three short windows, cheap to upsample
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (24, 240, 3), dtype=np.uint8)).save(path)
    out = tmp_path / "strip_map.tif"
    assert main(["ovss", str(path), "--classes", "building;background", "--binary", "--out", str(out),
                 "--method", "clip", *QUICK]) == 0
    captured = capsys.readouterr()
    assert "SimFeatUp" in captured.err and "upsampler simfeatup (tiny profile: random)" in captured.out
    legend = json.loads((tmp_path / "strip_map.legend.json").read_text())
    assert legend["upsampler"] == "simfeatup (tiny profile: random)" and legend["target"] == "building"
    assert set(np.unique(read_mask(out))) <= {0, 1}


def test_cli_clip_method_on_tiles(png, tmp_path, capsys, no_sam):
    out = tmp_path / "tiled.tif"
    assert main(["ovss", str(png), "--classes", CLASSES, "--out", str(out), "--method", "clip", "--upsampler",
                 "none", "--tile", "64", "--overlap", "16", *QUICK]) == 0
    assert read_mask(out).shape == (96, 128)
    legend = json.loads((tmp_path / "tiled.legend.json").read_text())
    assert legend["method"] == "clip" and legend["tiles"] >= 4 and legend["selector"] == "none"
    assert "CLIP alone (no SAM)" in capsys.readouterr().out


def test_cli_sam_clip_with_upsampler_on_tiles(png, tmp_path, monkeypatch):
    import rs_helpers.ovss.simfeatup as simfeatup

    monkeypatch.setattr(simfeatup, "load_simfeatup", lambda *a, **k: Bicubic())
    before = Bicubic.calls
    out = tmp_path / "sam_tiled.tif"
    assert main(["ovss", str(png), "--classes", CLASSES, "--out", str(out), "--upsampler", "simfeatup",
                 "--points-per-side", "2", "--tile", "64", "--overlap", "16", *QUICK]) == 0
    assert Bicubic.calls > before
    legend = json.loads((tmp_path / "sam_tiled.legend.json").read_text())
    assert legend["method"] == "sam-clip" and legend["upsampler"].startswith("simfeatup")


@pytest.mark.parametrize("argv,match", [
    (["--method", "clip", "--sam-checkpoint", "sam.pth"], "--sam-checkpoint has no use with --method clip"),
    (["--method", "clip", "--selector", "crop"], "--selector crop has no use"),
    (["--method", "sam"], "invalid choice"),
    (["--upsampler", "bilinear"], "invalid choice"),
])
def test_cli_bad_method_options_exit_2_before_any_model(png, tmp_path, capsys, no_sam, argv, match):
    (tmp_path / "sam.pth").write_bytes(b"not used")
    code = main(["ovss", str(png), "--classes", CLASSES, "--out", str(tmp_path / "x.png"), *QUICK,
                 *[str(tmp_path / a) if a == "sam.pth" else a for a in argv]])
    assert code == 2
    captured = capsys.readouterr()
    assert match in captured.err and "tiny model in use" not in captured.err
    assert not (tmp_path / "x.png").exists()
