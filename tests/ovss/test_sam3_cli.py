"""``--method sam3`` on the command line: ``rs-seg ovss`` (an image, binary, tiles) and ``rs-seg eval ovss``
(the SegEarth-OV3 protocol, its class names and reported numbers), never loading SAM 1 or CLIP, and
the gated model's error as one line with exit 3. Tiny model, small images."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "Sam3Model"):  # pragma: no cover - the floor (5.4) has it
    pytest.skip("this transformers has no Sam3Model", allow_module_level=True)

import fake_layouts as fl
from rs_helpers.cli import main
from rs_helpers.geo.rasters import read_mask

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = ["--profile", "tiny", "--device", "cpu"]


@pytest.fixture
def png(tmp_path, rgb_image):
    path = tmp_path / "in.png"
    Image.fromarray(rgb_image).save(path)
    return path


@pytest.fixture
def no_sam_no_clip(monkeypatch):
    """SAM 1 and CLIP must not be loaded by the SAM 3 method."""
    import rs_helpers.models.clip as clip
    import rs_helpers.models.sam as sam

    def refuse(*args, **kwargs):
        raise AssertionError("SAM 1 or CLIP loaded for --method sam3")

    monkeypatch.setattr(sam, "load_sam", refuse)
    monkeypatch.setattr(clip, "load_clip", refuse)
    monkeypatch.setattr(clip, "check_clip", refuse)


def test_ovss_sam3_writes_map_and_legend_without_sam_or_clip(png, tmp_path, capsys, no_sam_no_clip):
    out = tmp_path / "labels.png"
    code = main(["ovss", str(png), "--classes", "building,roof;road;background", "--out", str(out), "--method", "sam3",
                 "--sam3-heads", "instance,semantic", "--sam3-confidence", "0.3", "--sam3-prob-thd", "0.2",
                 "--timings", *TINY])
    assert code == 0
    labels = read_mask(out)
    assert labels.shape == (96, 128) and set(np.unique(labels)) <= {0, 1, 2}
    legend = json.loads(out.with_name("labels.legend.json").read_text())
    assert legend["method"] == "sam3" and legend["sam3_model"] == "tiny-sam3" and legend["selector"] == "sam3"
    assert [c["name"] for c in legend["classes"]] == ["building", "road", "background"]
    assert legend["settings"]["heads"] == ["instance", "semantic"]
    assert legend["settings"]["confidence_threshold"] == 0.3 and legend["settings"]["prob_thd"] == 0.2
    text = capsys.readouterr().out
    assert "SAM 3 alone" in text and "timings (s): sam3_text" in text


def test_ovss_sam3_binary_tiled_geotiff(png, tmp_path, no_sam_no_clip):
    out = tmp_path / "map.tif"
    code = main(["ovss", str(png), "--classes", "background;building", "--binary", "--out", str(out), "--method", "sam3",
                 "--tile", "64", "--overlap", "8", "--sam3-window", "0", "--geojson", str(tmp_path / "m.geojson"),
                 *TINY])
    assert code == 0
    labels = read_mask(out)
    assert labels.shape == (96, 128) and set(np.unique(labels)) <= {0, 1}
    legend = json.loads((tmp_path / "map.legend.json").read_text())
    assert legend["method"] == "sam3" and legend["tiles"] > 1 and legend["settings"]["slide_crop"] == 0
    assert [c["name"] for c in legend["classes"]] == ["background", "building"]
    assert (tmp_path / "m.geojson").is_file()


@pytest.mark.parametrize("extra", [["--upsampler", "none"], ["--selector", "crop"]])
def test_ovss_sam3_refuses_options_of_the_other_methods(png, tmp_path, extra):
    code = main(["ovss", str(png), "--classes", "a;b", "--out", str(tmp_path / "m.png"), "--method", "sam3",
                 *extra, *TINY])
    assert code == 2 and not (tmp_path / "m.png").exists()


def test_sam3_options_need_method_sam3(png, tmp_path):
    assert main(["ovss", str(png), "--classes", "a;b", "--out", str(tmp_path / "m.png"), "--sam3-confidence", "0.2",
                 *TINY]) == 2


def test_gated_sam3_is_exit_3_with_one_line(png, tmp_path, capsys, monkeypatch):
    import rs_helpers.models.sam3 as sam3
    from rs_helpers.errors import WeightsUnavailableError

    def gated(*args, **kwargs):
        raise WeightsUnavailableError(sam3.sam3_unavailable("facebook/sam3", "no Hugging Face token found"))

    monkeypatch.setattr(sam3, "load_sam3", gated)
    code = main(["ovss", str(png), "--classes", "a;b", "--out", str(tmp_path / "m.png"), "--method", "sam3", *TINY])
    err = capsys.readouterr().err
    assert code == 3 and "Traceback" not in err
    lines = [line for line in err.splitlines() if "facebook/sam3" in line and "licence" in line]
    assert len(lines) == 1 and "hf auth login" in lines[0]
    assert not (tmp_path / "m.png").exists()


def test_eval_sam3_on_samples_prints_the_protocol_line(tmp_path, capsys, no_sam_no_clip):
    out = tmp_path / "r.json"
    code = main(["eval", "ovss", "--method", "sam3", "--dataset", "samples", "--limit", "1", "--out", str(out),
                 "--no-progress", "--sam3-window", "0", *TINY])
    assert code == 0
    text = capsys.readouterr().out
    assert "protocol native (SAM 3" in text and "method sam3 (SAM 3 alone" in text
    assert "SegEarth-OV3" in text.splitlines()[[i for i, l in enumerate(text.splitlines()) if l.startswith("group")][0]]
    summary = json.loads(out.read_text())
    assert summary["settings"]["method"] == "sam3" and summary["settings"]["slide_crop"] == 0
    assert summary["reported"] == {"SegEarth-OV3": None}


def test_eval_sam3_loveda_uses_segearth_ov3_settings_and_names(tmp_path, capsys, no_sam_no_clip, monkeypatch):
    import rs_helpers.ovss.sam3_fusion as fusion

    fake = fl.make_loveda(tmp_path)
    prompted = []
    real = fusion.segment_sam3

    def spy(image, classes, **kwargs):
        prompted.append((list(classes), kwargs["settings"]))
        return real(image, classes, **kwargs)

    monkeypatch.setattr(fusion, "segment_sam3", spy)
    out = tmp_path / "r.json"
    args = ["eval", "ovss", "--dataset", "loveda", "--root", str(fake.root), "--method", "sam3", "--out", str(out),
            "--no-progress", *TINY]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "protocol segearth-ov3 (loveda" in text and "confidence > 0.5, prob_thd 0.5" in text
    assert "building,roof,house -> building,house" in text and "forest -> forest,tree" in text
    row = next(line for line in text.splitlines() if line.startswith("loveda"))
    assert row.rstrip().endswith("47.4")
    classes, settings = prompted[0]
    assert "building,house" in classes and "forest,tree" in classes
    assert settings.confidence_threshold == 0.5 and settings.prob_thd == 0.5
    recorded = json.loads(out.read_text())["settings"]
    assert recorded["protocol"] == "segearth-ov3" and recorded["prob_thd"] == 0.5
    # the same settings resume (nothing computed again); another threshold is refused
    assert main(args) == 0
    assert "read back from the results file" in capsys.readouterr().out
    assert main(args + ["--sam3-prob-thd", "0.2"]) == 2


def test_eval_sam3_refuses_clip_protocol(tmp_path):
    fake = fl.make_loveda(tmp_path)
    assert main(["eval", "ovss", "--dataset", "loveda", "--root", str(fake.root), "--method", "sam3", "--protocol",
                 "segearth-ov", "--out", str(tmp_path / "r.json"), *TINY]) == 2
    assert main(["eval", "ovss", "--dataset", "samples", "--method", "sam3", "--protocol", "segearth-ov3",
                 "--out", str(tmp_path / "r.json"), *TINY]) == 2
