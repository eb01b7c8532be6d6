"""``--segmenter sam|sam2|sam3`` through the command line, tiny models end to end: refer (one image and a
batch, the segmenter loaded once), clicks with SAM 3's tracker in the loop, lora-data and eval refer
recording the segmenter (a resumed eval refuses another one), the options of another segmenter
refused before any model loads, and weights that cannot be had as exit 3."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("transformers")

from rs_helpers.cli import main
from rs_helpers.geo.rasters import read_mask
from rs_helpers.lora.data import read_jsonl
from rs_helpers.refer.clicks import read_clicks

REPO = Path(__file__).resolve().parents[2]
SAMPLE_IMAGE = str(REPO / "data/samples/dubai_cc0/dubai_tile1_part009.jpg")
SAMPLE_TEXT = "the largest water body in the image"
TINY = ["--profile", "tiny", "--device", "cpu"]
LABELS = {"sam": "segmenter: SAM tiny", "sam2": "segmenter: SAM 2.1 tiny-sam2",
          "sam3": "segmenter: SAM 3 tracker tiny-sam3-tracker"}


def _refer(out, *extra):
    return ["refer", SAMPLE_IMAGE, "--text", SAMPLE_TEXT, "--vlm", "replay", "--out", str(out), *TINY, *extra]


@pytest.mark.parametrize("segmenter", ["sam", "sam2", "sam3"])
def test_refer_with_each_segmenter(segmenter, tmp_path, capsys):
    out = tmp_path / "mask.png"
    code = main(_refer(out, "--segmenter", segmenter, *(["--sam", "vit_b"] if segmenter == "sam" else [])))
    printed = capsys.readouterr()
    assert code == 0, printed.err
    mask = read_mask(out)
    assert mask.shape == (644, 797) and set(np.unique(mask)) <= {0, 255}
    assert LABELS[segmenter] in printed.out and "meaningless" in printed.err


def test_a_batch_loads_the_segmenter_once(tmp_path, monkeypatch, capsys):
    import rs_helpers.models.sam_tracker as tracker

    sys.path.insert(0, str(REPO / "tests" / "refer"))
    from test_vlm_openai import FakeOpenAI

    loads = []
    real = tracker.load_click_segmenter
    monkeypatch.setattr(tracker, "load_click_segmenter", lambda *a, **k: loads.append(a) or real(*a, **k))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(folder / f"s{i}.png")
    with FakeOpenAI() as server:
        code = main(["refer", str(folder), "--text", "the bright disc", "--base-url", server.url, *TINY,
                     "--segmenter", "sam3", "--out", str(tmp_path / "masks")])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["s0.png", "s1.png"]
    assert loads == [("sam3", None)]


def test_clicks_with_sam3_in_the_loop_name_it_in_the_file(tmp_path, rgb_image, capsys):
    image, mask, out = tmp_path / "image.png", tmp_path / "mask.png", tmp_path / "clicks.json"
    Image.fromarray(rgb_image).save(image)
    yy, xx = np.mgrid[:96, :128]
    Image.fromarray((((yy - 48) ** 2 + (xx - 64) ** 2 < 15 ** 2) * 255).astype(np.uint8)).save(mask)
    assert main(["clicks", str(image), str(mask), "--n", "3", "--out", str(out), *TINY, "--segmenter", "sam3"]) == 0
    saved = json.loads(out.read_text())
    assert saved["segmenter"] == "sam3" and saved["segmenter_model"] == "tiny-sam3-tracker"
    clicks = read_clicks(out, 128, 96)
    assert clicks[0].x == 64 and clicks[0].y == 48 and 1 <= len(clicks) <= 3
    assert LABELS["sam3"] in capsys.readouterr().out


def test_lora_data_records_the_segmenter_on_every_line(tmp_path, capsys):
    out, folder = tmp_path / "train.jsonl", tmp_path / "saved"
    base = ["lora-data", "--dataset", "samples", "--limit", "2", "--n-clicks", "2", *TINY]
    assert main(base + ["--out", str(out), "--segmenter", "sam2"]) == 0
    lines = read_jsonl(out)
    assert len(lines) == 2 and {(e["segmenter"], e["segmenter_model"]) for e in lines} == {("sam2", "tiny-sam2")}
    assert "segmenter: SAM 2.1 tiny-sam2 (recorded on every line)" in capsys.readouterr().out
    assert main(base + ["--out", str(tmp_path / "sam.jsonl"), "--sam", "vit_b"]) == 0
    assert {e["segmenter"] for e in read_jsonl(tmp_path / "sam.jsonl")} == {"sam"}
    # a saved model folder is recorded by its absolute path, under the tiny profile too
    from rs_helpers.models.sam_tracker import load_click_segmenter

    tiny = load_click_segmenter("sam2", profile="tiny", device="cpu")
    tiny.model.save_pretrained(folder)
    tiny.processor.save_pretrained(folder)
    assert main(base + ["--out", str(tmp_path / "f.jsonl"), "--segmenter", "sam2", "--sam2-model", str(folder)]) == 0
    assert {e["segmenter_model"] for e in read_jsonl(tmp_path / "f.jsonl")} == {str(folder.resolve())}


def test_eval_refer_with_sam2_names_it_and_a_rerun_with_another_segmenter_is_refused(tmp_path, capsys):
    out = tmp_path / "eval.json"
    base = ["eval", "refer", "--dataset", "samples", "--vlm", "replay", "--limit", "2", *TINY, "--out", str(out)]
    assert main(base + ["--segmenter", "sam2"]) == 0
    printed = capsys.readouterr()
    assert "SAM 2.1 facebook/sam2.1-hiera-large (tiny)" in printed.out
    report = json.loads(out.read_text())
    assert report["segmenter"] == "sam2" and report["segmenter_model"] == "tiny-sam2"
    settings = json.loads(Path(str(out)[:-5] + ".results.jsonl").read_text().splitlines()[0])["settings"]
    assert settings["segmenter"] == "sam2" and "sam" not in settings
    assert main(base + ["--segmenter", "sam2"]) == 0  # the same settings resume
    assert "resuming: 2 samples" in capsys.readouterr().err
    for other in (["--segmenter", "sam3"], ["--segmenter", "sam"]):
        assert main(base + other) == 2
        err = capsys.readouterr().err
        assert "other settings" in err and "tiny model in use" not in err and "Traceback" not in err
    assert main(base + ["--segmenter", "sam3", "--fresh"]) == 0


@pytest.mark.parametrize("extra,message", [
    (["--segmenter", "sam3", "--sam2-model", "small"], "--sam2-model has no use with --segmenter sam3"),
    (["--segmenter", "sam2", "--sam3-model", "facebook/sam3"], "--sam3-model has no use with --segmenter sam2"),
    (["--segmenter", "sam2", "--sam-checkpoint", "x.pth"], "--sam-checkpoint has no use with --segmenter sam2"),
    (["--segmenter", "sam3", "--sam", "vit_l"], "--sam has no use with --segmenter sam3"),
    (["--sam2-model", "large"], "--sam2-model has no use with --segmenter sam"),
])
@pytest.mark.parametrize("command", ["refer", "clicks", "lora-data", "eval"])
def test_the_options_of_another_segmenter_exit_2_before_any_model(command, extra, message, tmp_path, capsys):
    out = tmp_path / "out.json"
    argv = {"refer": _refer(tmp_path / "m.png"),
            "clicks": ["clicks", SAMPLE_IMAGE, SAMPLE_IMAGE, "--out", str(out), *TINY],
            "lora-data": ["lora-data", "--dataset", "samples", "--out", str(tmp_path / "t.jsonl"), *TINY],
            "eval": ["eval", "refer", "--vlm", "replay", "--out", str(out), *TINY]}[command]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "tiny model in use" not in err
    assert list(tmp_path.iterdir()) == []


def _no_weights(monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_the_gated_sam3_without_a_token_is_exit_3_naming_the_licence(tmp_path, monkeypatch, capsys):
    _no_weights(monkeypatch, tmp_path)
    assert main(_refer(tmp_path / "m.png", "--profile", "full", "--segmenter", "sam3")) == 3
    err = capsys.readouterr().err
    assert "accept its licence on https://huggingface.co/facebook/sam3" in err and "no Hugging Face token" in err
    assert "Traceback" not in err and not (tmp_path / "m.png").exists()


def test_sam2_offline_without_the_cache_is_exit_3(tmp_path, monkeypatch, capsys):
    _no_weights(monkeypatch, tmp_path)
    assert main(_refer(tmp_path / "m.png", "--profile", "full", "--segmenter", "sam2", "--sam2-model", "small")) == 3
    err = capsys.readouterr().err
    assert "SAM 2.1 weights facebook/sam2.1-hiera-small (offline and not in the cache)" in err
    assert "Traceback" not in err and not (tmp_path / "m.png").exists()
