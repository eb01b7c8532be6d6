"""``rs-seg refer`` end to end under the tiny profile: the OpenAI backend against a local
Chat Completions server, the replay backend, and the local Qwen backend (tiny, with an adapter).
Tiny SAM masks are meaningless; these tests check the plumbing, files and exit codes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from rs_helpers.cli import main
from rs_helpers.refer.clicks import Click, read_clicks
from rs_helpers.geo.rasters import read_mask
from rs_helpers.refer.pipeline import ask_for_clicks, refer
from rs_helpers.errors import BadInputError, NoClicksError
from rs_helpers.refer.vlm_replay import ReplayBackend
from rs_helpers.refer.vlm import VLMAnswer

from test_vlm_openai import GOOD, FakeOpenAI, completion


@pytest.fixture()
def image_png(tmp_path, rgb_image):
    from PIL import Image

    path = tmp_path / "scene.png"
    Image.fromarray(rgb_image).save(path)
    return path


@pytest.fixture()
def image_tif(tmp_path, rgb_image):
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", driver="GTiff", width=128, height=96, count=3, dtype="uint8",
                       crs="EPSG:32616", transform=from_origin(500000, 3700000, 0.5, 0.5)) as dst:
        dst.write(np.moveaxis(rgb_image, -1, 0))
    return path


@pytest.fixture()
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAI() as fake:
        yield fake


def test_refer_openai_writes_png_and_clicks(server, image_png, tmp_path, capsys):
    out, clicks_out = tmp_path / "mask.png", tmp_path / "clicks.json"
    code = main(["refer", str(image_png), "--text", "the bright disc", "--vlm", "openai:gpt-5",
                 "--base-url", server.url, "--profile", "tiny", "--device", "cpu", "--sam", "vit_b",
                 "--out", str(out), "--clicks-out", str(clicks_out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    mask = read_mask(out)
    assert mask.shape == (96, 128) and set(np.unique(mask)) <= {0, 255}
    # GOOD = (500, 400, +), (100, 900, -) on the grid -> pixels of a 128 x 96 image
    assert read_clicks(clicks_out, 128, 96) == [Click(64, 38, 1), Click(13, 86, 0)]
    assert "( 500,  400) -> (64, 38)  positive" in printed.out
    assert "tokens: 11 prompt + 7 completion" in printed.out
    assert "meaningless" in printed.err
    assert "the bright disc" in server.requests[0]["messages"][-1]["content"][-1]["text"]


def test_refer_geotiff_keeps_the_crs(server, image_tif, tmp_path):
    out = tmp_path / "mask.tif"
    assert main(["refer", str(image_tif), "--text", "x", "--base-url", server.url,
                 "--device", "cpu", "--single-mask", "--out", str(out)]) == 0
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32616 and src.transform == from_origin(500000, 3700000, 0.5, 0.5)


def test_refer_geotiff_writes_a_polygon_in_wgs84(server, image_tif, tmp_path):
    import json

    out, polygons = tmp_path / "mask.tif", tmp_path / "mask.geojson"
    assert main(["refer", str(image_tif), "--text", "the bright disc", "--base-url", server.url, "--device", "cpu",
                 "--out", str(out), "--geojson", str(polygons), "--to-wgs84"]) == 0
    mask = read_mask(out) > 0
    features = json.loads(polygons.read_text())["features"]
    assert bool(mask.any()) == bool(features)
    for feature in features:
        assert feature["properties"]["class"] == "the bright disc"
        for x, y in feature["geometry"]["coordinates"][0]:
            assert -88.0 < x < -86.9 and 33.4 < y < 33.5  # UTM 16N (500000, 3700000) is near 87 W, 33.4 N


def test_refer_no_clicks_exits_4_with_the_raw_answer(server, image_png, tmp_path, capsys):
    server.replies = [(200, completion("Sorry, I cannot find that in the image."), 0)]
    out = tmp_path / "mask.png"
    code = main(["refer", str(image_png), "--text", "a dragon", "--base-url", server.url,
                 "--device", "cpu", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 4
    assert "no usable clicks" in err and "raw answer:\nSorry, I cannot find that in the image." in err
    assert not out.exists()


def test_refer_without_a_key_exits_3(monkeypatch, image_png, tmp_path, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code = main(["refer", str(image_png), "--text", "x", "--out", str(tmp_path / "m.png")])
    assert code == 3 and "OPENAI_API_KEY" in capsys.readouterr().err


def test_refer_server_down_exits_1(monkeypatch, image_png, tmp_path, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setattr("openai._base_client.INITIAL_RETRY_DELAY", 0.001)  # the client's own backoff
    with FakeOpenAI() as fake:
        url = fake.url
    code = main(["refer", str(image_png), "--text", "x", "--base-url", url, "--out", str(tmp_path / "m.png")])
    assert code == 1 and "cannot reach" in capsys.readouterr().err


def test_refer_passes_token_limit_and_reasoning_effort_to_openai(server, image_png, tmp_path):
    code = main(["refer", str(image_png), "--text", "x", "--base-url", server.url, "--profile", "tiny",
                 "--device", "cpu", "--sam", "vit_b", "--out", str(tmp_path / "m.png"),
                 "--max-new-tokens", "4000", "--reasoning-effort", "low"])
    assert code == 0
    assert server.requests[0]["max_completion_tokens"] == 4000 and server.requests[0]["reasoning_effort"] == "low"
    assert "temperature" not in server.requests[0]  # GPT-5 accepts only its default


def test_refer_cut_off_answer_says_to_raise_the_limit(server, image_png, tmp_path, capsys):
    reply = completion("")  # GPT-5 spent every completion token on reasoning
    reply["choices"][0]["finish_reason"] = "length"
    server.replies = [(200, reply, 0)]
    code = main(["refer", str(image_png), "--text", "x", "--base-url", server.url, "--profile", "tiny",
                 "--out", str(tmp_path / "m.png"), "--max-new-tokens", "50"])
    err = capsys.readouterr().err
    assert code == 4
    assert "finish_reason=length" in err and "--max-new-tokens" in err and "--reasoning-effort" in err


@pytest.mark.parametrize("extra, message", [
    (["--out", "m.png", "--vlm", "qwen:x", "--reasoning-effort", "low"], "--reasoning-effort is for openai"),
    (["--out", "m.png", "--max-new-tokens", "0"], "at least 1"),
    (["--out", "m.png", "--vlm", "replay", "--max-new-tokens", "9"], "for qwen: and openai:"),
    (["--out", "m.jpg"], ".png, .tif"), (["--out", "m.png", "--n-clicks", "0"], "n-clicks"),
    (["--out", "m.png", "--vlm", "claude:x"], "unknown VLM"),
    (["--out", "m.png", "--bands", "a,b"], "bands"),
    (["--out", "m.png", "--adapter", "/nope"], "adapter"),
])
def test_refer_bad_inputs_exit_2(image_png, extra, message, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    assert main(["refer", str(image_png), "--text", "x"] + extra) == 2
    assert message in capsys.readouterr().err


def test_refer_replay_backend(tmp_path, image_png, capsys):
    stored = tmp_path / "answers.json"
    stored.write_text(json.dumps({"label": "test answers", "answers": [
        {"text": "the bright disc", "image_size": [128, 96], "answer": GOOD}]}))
    out = tmp_path / "m.png"
    assert main(["refer", str(image_png), "--text", "the bright disc", "--vlm", f"replay:{stored}",
                 "--device", "cpu", "--out", str(out)]) == 0
    assert "replay:answers.json clicks" in capsys.readouterr().out


# --------------------------------------------------------------------------- the pipeline function
class Scripted:
    name = "scripted"

    def __init__(self, text):
        self.text = text

    def ask(self, image_rgb, prompt):
        return VLMAnswer(self.text, {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})


def test_refer_function_keeps_every_stage(tiny_sam, rgb_image):
    result = refer(rgb_image, "the disc", Scripted(f"```json\n{GOOD}\n```"), sam=tiny_sam, n_clicks=1)
    assert result.clicks == [Click(500, 400, 1)] and result.pixel_clicks == [Click(64, 38, 1)]
    assert result.mask.shape == (96, 128) and result.mask.dtype == bool
    assert '"the disc"' in result.prompt and result.usage["total_tokens"] == 3
    assert result.answer.startswith("```json") and {"vlm_s", "sam_predict_s"} <= set(result.timings)


def test_only_negative_clicks_give_an_empty_mask(tiny_sam, rgb_image):
    result = refer(rgb_image, "x", Scripted('{"clicks": [{"x": 10, "y": 10, "label": 0}]}'), sam=tiny_sam)
    assert not result.mask.any() and result.score == 0.0


def test_ask_for_clicks_raises_no_clicks_with_the_answer(rgb_image):
    with pytest.raises(NoClicksError) as info:
        ask_for_clicks(rgb_image, "x", Scripted('{"clicks": []}'))
    assert info.value.raw_answer == '{"clicks": []}' and info.value.exit_code == 4


def test_replay_picks_the_entry_by_text_and_image_size(rgb_image):
    backend = ReplayBackend([
        {"text": "the water", "image_size": [10, 10], "answer": "A"},
        {"text": "the water", "image_size": [128, 96], "answer": "B"},
        {"text": "the water body", "image_size": [128, 96], "answer": "C"},
    ])
    from rs_helpers.refer.prompts import build_prompt

    assert backend.ask(rgb_image, build_prompt("the water")).text == "B"
    assert backend.ask(rgb_image, build_prompt("the water body")).text == "C"
    with pytest.raises(Exception, match="no stored answer"):
        backend.ask(rgb_image, build_prompt("a road"))


# --------------------------------------------------------------------------- local Qwen (tiny)
def test_refer_qwen_tiny_with_adapter(tmp_path, image_png, capsys):
    """The tiny Qwen answers gibberish (or nothing): documented outcome exit 4 + raw answer.
    The adapter folder is a real (untrained) LoRA adapter saved here."""
    pytest.importorskip("rs_helpers.refer.vlm_qwen")
    from peft import LoraConfig, get_peft_model

    from rs_helpers.models.qwen import load_qwen

    qwen = load_qwen(profile="tiny", device="cpu")
    lora = get_peft_model(qwen.model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    adapter = tmp_path / "adapter"
    lora.save_pretrained(adapter)
    code = main(["refer", str(image_png), "--text", "the disc", "--vlm", "qwen:Qwen/Qwen3-VL-2B-Instruct",
                 "--adapter", str(adapter), "--max-new-tokens", "8", "--profile", "tiny", "--device", "cpu",
                 "--out", str(tmp_path / "m.png")])
    err = capsys.readouterr().err
    if code == 0:  # a random model could, rarely, write something that parses
        assert (tmp_path / "m.png").exists()
    else:
        assert code == 4 and "raw answer:" in err and "qwen:tiny-qwen3-vl+adapter" in err


# --------------------------------------------------------------------------- the no-target answer
NO_TARGET = '{"clicks": [], "reason": "there is no airport here"}'


class MustNotBeCalled:
    """A predictor (or SAM) for a test where SAM must not run: any use fails the test."""

    original_size = (96, 128)

    def predict(self, *args, **kwargs):
        raise AssertionError("SAM was asked to predict for a no-target answer")

    def set_image(self, *args, **kwargs):
        raise AssertionError("SAM was asked to embed for a no-target answer")


def test_the_no_target_answer_gives_an_empty_mask_without_sam(rgb_image, monkeypatch):
    import rs_helpers.refer.pipeline as pipeline

    result = refer(rgb_image, "the airport", Scripted(NO_TARGET), predictor=MustNotBeCalled())
    assert result.mask.shape == (96, 128) and result.mask.dtype == bool and not result.mask.any()
    assert result.clicks == [] and result.pixel_clicks == [] and result.score == 0.0
    assert result.no_target and result.reason == "there is no airport here" and result.answer == NO_TARGET
    assert result.usage["total_tokens"] == 3 and set(result.timings) == {"vlm_s"}
    monkeypatch.setattr(pipeline, "make_predictor", lambda *a: (_ for _ in ()).throw(AssertionError("embedded")))
    assert not refer(rgb_image, "the airport", Scripted(NO_TARGET), sam=MustNotBeCalled()).mask.any()
    clicks, answer, _, _ = ask_for_clicks(rgb_image, "the airport", Scripted(NO_TARGET))
    assert clicks == [] and answer == NO_TARGET
    with pytest.raises(ValueError, match="sam= or predictor="):  # checked before the model is asked
        refer(rgb_image, "x", Scripted(NO_TARGET))


class RecordingPredictor:
    original_size = (96, 128)

    def __init__(self):
        self.multimask = []

    def predict(self, point_coords, point_labels, multimask_output):
        self.multimask.append(multimask_output)
        n = 3 if multimask_output else 1
        return np.ones((n, 96, 128), bool), np.linspace(0.5, 0.9, n), None


@pytest.mark.parametrize("answer, multimask, expect", [
    ('{"clicks": [{"x": 500, "y": 400, "label": 1}]}', "auto", True),
    (GOOD, "auto", False), (GOOD, "always", True), (GOOD, True, True), (GOOD, "never", False),
    ('{"clicks": [{"x": 500, "y": 400, "label": 1}]}', "never", False),
])
def test_refer_asks_sam_for_one_mask_from_two_clicks_on(rgb_image, answer, multimask, expect):
    predictor = RecordingPredictor()
    refer(rgb_image, "the disc", Scripted(answer), predictor=predictor, multimask=multimask)
    assert predictor.multimask == [expect]
    predictor = RecordingPredictor()
    refer(rgb_image, "the disc", Scripted(answer), predictor=predictor)  # the default is auto
    assert predictor.multimask == [answer != GOOD]
    with pytest.raises(BadInputError, match="multimask"):
        refer(rgb_image, "the disc", Scripted(answer), predictor=predictor, multimask="sometimes")


def _replay_file(tmp_path, answer):
    stored = tmp_path / "answers.json"
    stored.write_text(json.dumps({"label": "test", "answers": [{"text": "the airport", "answer": answer}]}))
    return f"replay:{stored}"


def test_refer_command_writes_an_empty_mask_for_no_target(tmp_path, image_tif, capsys, monkeypatch):
    import rs_helpers.models.sam as sam_module

    monkeypatch.setattr(sam_module, "load_sam", lambda *a, **k: (_ for _ in ()).throw(AssertionError("SAM loaded")))
    out, clicks_out, polygons = tmp_path / "mask.tif", tmp_path / "clicks.json", tmp_path / "mask.geojson"
    code = main(["refer", str(image_tif), "--text", "the airport", "--vlm", _replay_file(tmp_path, NO_TARGET),
                 "--profile", "tiny", "--device", "cpu", "--out", str(out), "--clicks-out", str(clicks_out),
                 "--geojson", str(polygons)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    mask = read_mask(out)
    assert mask.shape == (96, 128) and not mask.any()
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32616
    assert json.loads(clicks_out.read_text()) == []
    assert json.loads(polygons.read_text())["features"] == []
    assert "no target (there is no airport here)" in printed.out and "SAM not run" in printed.out
    assert "mask: empty (no target)" in printed.out and "SAM skipped" in printed.out


def test_refer_command_other_empty_answers_still_exit_4(tmp_path, image_png, capsys):
    out = tmp_path / "mask.png"
    code = main(["refer", str(image_png), "--text", "the airport", "--vlm", _replay_file(tmp_path, '{"clicks": []}'),
                 "--profile", "tiny", "--device", "cpu", "--out", str(out)])
    assert code == 4 and not out.exists() and "raw answer" in capsys.readouterr().err


@pytest.mark.parametrize("options, expect", [([], "auto"), (["--multimask", "always"], "always"),
                                             (["--multimask", "never"], "never"), (["--single-mask"], "never")])
def test_refer_command_multimask_option(tmp_path, image_png, monkeypatch, options, expect):
    import rs_helpers.sam.from_clicks as from_clicks

    seen = []
    real = from_clicks.predict_mask
    monkeypatch.setattr(from_clicks, "predict_mask", lambda p, c, multimask: seen.append(multimask) or real(p, c, multimask))
    assert main(["refer", str(image_png), "--text", "the airport", "--vlm", _replay_file(tmp_path, GOOD),
                 "--profile", "tiny", "--device", "cpu", "--sam", "vit_b", "--out", str(tmp_path / "m.png"),
                 *options]) == 0
    assert seen == [expect]
