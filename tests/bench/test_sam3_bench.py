"""The SAM 3 benchmark (rs-seg bench --method sam3) on the tiny model; no timed assertions.

Known answers: at one prompt per grounding pass (the CPU default) ours equals the SegEarth-OV3
loop to the bit; batched it gives the same class scores within float32 rounding and the same
labels wherever the classes are not tied. The per-prompt path runs the whole model for every
prompt and view, the SegEarth-OV3 loop the vision once per view, ours the vision once per view
and each prompt's text once."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "Sam3Model"):  # pragma: no cover - the floor (5.4) has it
    pytest.skip(f"transformers {transformers.__version__} has no Sam3Model", allow_module_level=True)

from rs_helpers import cli
from rs_helpers.bench.sam3 import (
    BENCH_CLASSES,
    PATHS,
    TIE,
    Sam3BenchConfig,
    _compare,
    bench_vocabulary,
    format_sam3_report,
    run_sam3_bench,
    timed_run,
)
from rs_helpers.errors import BadInputError
from rs_helpers.ovss.sam3_fusion import Sam3Settings, windows_for

pytestmark = pytest.mark.usefixtures("one_thread")

LAST_LINE = re.compile(r"^sam3: ours \d+\.\d\dx faster than the SegEarth-OV3 loop \(\d+ classes, prompt batch \d+, "
                       r"maps equal: (yes|no), max score diff \d\.\d\de[+-]\d\d\)$")


@pytest.fixture(scope="module")
def sam3():
    from rs_helpers.models.sam3 import load_sam3

    return load_sam3(profile="tiny", device="cpu")


def _rgb(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _margin(scores):
    top2 = torch.topk(scores, 2, dim=0).values
    return (top2[0] - top2[1]).numpy()


@pytest.mark.parametrize("shape,slide", [((96, 120), None), ((300, 280), 160)])
def test_batched_grounding_gives_every_path_s_scores_and_labels(sam3, shape, slide):
    rgb = _rgb(*shape, seed=shape[0])
    settings = Sam3Settings(slide_crop=slide, slide_stride=128 if slide else None, prompt_batch=3)
    classes = bench_vocabulary(5)
    runs = {path: timed_run(path, sam3, rgb, classes, settings) for path in PATHS}
    ours_scores, ours_labels = runs["ours"][1:]
    assert ours_scores.shape == (5, *shape) and ours_labels.shape == shape
    for path in ("per_prompt", "segearth"):
        scores, labels = runs[path][1:]
        assert torch.allclose(scores, ours_scores, atol=1e-5, rtol=0), path
        clear = _margin(scores) > TIE
        assert clear.mean() > 0.99
        assert np.array_equal(labels[clear], ours_labels[clear]), path  # equal wherever classes are not tied
        check = _compare(ours_scores, ours_labels, scores, labels)
        assert check["differ_beyond_ties"] == 0 and check["max_score_diff"] < 1e-5
        assert check["labels_equal"] == np.array_equal(labels, ours_labels)
    for run, _, _ in runs.values():
        assert run["seconds"] > 0 and "labels" in run["stages"]
    assert {"sam3_text", "sam3_vision", "sam3_decoder", "sam3_fusion"} <= set(runs["ours"][0]["stages"])


@pytest.mark.parametrize("shape,slide", [((96, 120), None), ((300, 280), 160)])
def test_one_prompt_at_a_time_equals_the_segearth_loop_to_the_bit(sam3, shape, slide):
    """The CPU default: the same kernels as the loop, so every float32 score and label agrees."""
    rgb = _rgb(*shape, seed=shape[0] + 1)
    settings = Sam3Settings(slide_crop=slide, slide_stride=128 if slide else None)
    classes = bench_vocabulary(16)
    _, ours_scores, ours_labels = timed_run("ours", sam3, rgb, classes, settings)
    _, loop_scores, loop_labels = timed_run("segearth", sam3, rgb, classes, settings)
    assert torch.equal(ours_scores, loop_scores) and np.array_equal(ours_labels, loop_labels)
    check = _compare(ours_scores, ours_labels, loop_scores, loop_labels)
    assert check["labels_equal"] and check["pixels_differ"] == 0 and check["max_score_diff"] == 0.0


def test_compare_counts_label_differences_and_near_ties():
    ref = torch.tensor([[[0.5, 0.9]], [[0.5, 0.1]]])  # pixel 0 tied, pixel 1 clear
    check = _compare(ref + 0.25, np.array([[1, 0]], np.uint8), ref, np.array([[0, 0]], np.uint8))
    assert check == {"labels_equal": False, "pixels_differ": 1, "pixels": 2, "differ_beyond_ties": 0,
                     "max_score_diff": 0.25}
    check = _compare(ref, np.array([[0, 1]], np.uint8), ref, np.array([[0, 0]], np.uint8))
    assert check["differ_beyond_ties"] == 1 and check["max_score_diff"] == 0.0


def _calls(module):
    calls = []
    return calls, module.register_forward_hook(lambda *args: calls.append(1))


def test_per_prompt_reruns_the_whole_model_segearth_the_text_and_ours_neither(sam3):
    rgb = _rgb(300, 280, seed=5)
    settings = Sam3Settings(slide_crop=160, slide_stride=128, prompt_batch=2)
    views, prompts = len(windows_for(300, 280, settings, sam3.input_size)), 3
    expected = {"per_prompt": (views * prompts, views * prompts), "segearth": (views, views * prompts),
                "ours": (views, prompts)}
    for path, (vision_calls, text_calls) in expected.items():
        vision, h1 = _calls(sam3.model.vision_encoder)
        text, h2 = _calls(sam3.model.text_encoder)
        try:
            timed_run(path, sam3, rgb, bench_vocabulary(prompts), settings)
        finally:
            h1.remove()
            h2.remove()
        assert (len(vision), len(text)) == (vision_calls, text_calls), path
    assert views == 6  # 3 rows x 2 columns of 160 px windows


def test_report_has_the_fields_and_the_last_line(sam3):
    result = run_sam3_bench(Sam3BenchConfig(profile="tiny", classes=3, size=64, repeat=2), sam3=sam3,
                            log=lambda m: None)
    json.dumps(result)
    assert result["classes"] == 3 and result["class_names"] == list(BENCH_CLASSES[:3])
    assert result["views"] == 1 and result["repeat"] == 2 and result["dtype"] == "float32"
    assert result["prompt_batch"] == 1  # the CPU default
    for path in PATHS:
        p = result["paths"][path]
        assert p["t1_s"] > 0 and p["tN_s"] > 0
        assert p["per_class_s"] == pytest.approx((p["tN_s"] - p["t1_s"]) / 2)
    ours = result["paths"]["ours"]
    assert {"sam3_text", "sam3_vision", "sam3_decoder", "sam3_fusion"} <= set(ours["stages"])
    assert ours["cached_text_tN_s"] == pytest.approx(ours["tN_s"] - ours["stages"]["sam3_text"])
    for path in ("per_prompt", "segearth"):
        assert result["ratios"][path] == pytest.approx(result["paths"][path]["tN_s"] / ours["tN_s"])
        check = result["checks"][path]
        assert check["pixels"] == 64 * 64 and check["max_score_diff"] < 1e-5 and check["differ_beyond_ties"] == 0
    assert result["checks"]["segearth"]["max_score_diff"] == 0.0 and result["checks"]["segearth"]["labels_equal"]
    loop = result["paths"]["segearth"]
    shared = loop["stages"]["vision"] + loop["stages"]["fusion"] + loop["stages"]["labels"]
    assert result["bound"] == pytest.approx(loop["tN_s"] / shared) and result["bound"] > 1
    h = result["headline"]
    assert h["speedup"] == result["ratios"]["segearth"] and h["speedup_vs_per_prompt"] == result["ratios"]["per_prompt"]
    assert h["maps_equal"] is True and h["max_score_diff"] == 0.0
    report = format_sam3_report(result)
    assert LAST_LINE.match(report.splitlines()[-1]), report.splitlines()[-1]
    assert report.splitlines()[-1].endswith("prompt batch 1, maps equal: yes, max score diff 0.00e+00)")
    assert report.splitlines()[-2].startswith("sam3-per-prompt: ours ")
    assert "TINY PROFILE" in report and "fastest run shown" in report and "sam3_decoder" in report
    assert "bound: " in report


def test_the_per_prompt_path_can_be_left_out(sam3):
    result = run_sam3_bench(Sam3BenchConfig(profile="tiny", classes=2, size=48, per_prompt=False, prompt_batch=2),
                            sam3=sam3, log=lambda m: None)
    assert set(result["paths"]) == {"ours", "segearth"} and set(result["checks"]) == {"segearth"}
    assert result["prompt_batch"] == 2 and result["headline"]["speedup_vs_per_prompt"] is None
    report = format_sam3_report(result)
    assert LAST_LINE.match(report.splitlines()[-1]) and "per-prompt" not in report


def test_one_class_has_no_slope(sam3):
    result = run_sam3_bench(Sam3BenchConfig(profile="tiny", classes=1, size=48), sam3=sam3, log=lambda m: None)
    assert all(result["paths"][p]["per_class_s"] is None for p in PATHS)
    assert result["checks"]["per_prompt"]["labels_equal"]  # one class: every pixel is class 0
    assert "n/a" in format_sam3_report(result)


@pytest.mark.parametrize("bad", [{"classes": 0}, {"classes": len(BENCH_CLASSES) + 1}, {"size": 0}, {"repeat": 0},
                                 {"prompt_batch": 0}])
def test_bad_config_is_a_bad_input_error(bad):
    with pytest.raises(BadInputError):
        Sam3BenchConfig(**bad)


def test_cli_sam3_bench_last_line_and_out(tmp_path, capsys):
    out = tmp_path / "sam3.json"
    argv = ["bench", "--method", "sam3", "--profile", "tiny", "--device", "cpu", "--classes", "2", "--size", "48",
            "--out", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert LAST_LINE.match(printed[-1]), printed[-1]
    saved = json.loads(out.read_text())
    assert saved["classes"] == 2 and set(saved["paths"]) == set(PATHS) and "headline" in saved
    before = out.read_bytes()
    assert cli.main(argv) == 2  # refuses to overwrite, before any work
    assert out.read_bytes() == before and "--overwrite" in capsys.readouterr().err
    assert cli.main(argv + ["--overwrite"]) == 0
    capsys.readouterr()
    assert cli.main(argv + ["--overwrite", "--skip-per-prompt"]) == 0
    assert set(json.loads(out.read_text())["paths"]) == {"ours", "segearth"}


@pytest.mark.parametrize("extra", [["--method", "sam3", "--classes", "0"], ["--method", "sam3", "--classes", "-2"],
                                   ["--method", "sam3", "--classes", str(len(BENCH_CLASSES) + 1)],
                                   ["--method", "sam3", "--prompt-batch", "0"], ["--method", "sam3", "--size", "0"],
                                   ["--method", "sam4"], ["--method", "sam3", "--pipeline"],
                                   ["--method", "sam3", "--upsampler"], ["--classes", "4"], ["--prompt-batch", "2"],
                                   ["--skip-per-prompt"]])
def test_cli_bad_options_exit_2(extra, capsys):
    assert cli.main(["bench", "--profile", "tiny", "--device", "cpu", *extra]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip()


def test_in_float64_every_path_gives_the_same_labels_on_every_pixel():
    """Batched (prompt_batch 3), float32's other summation order moves scores by ~1e-6, which flips a few
    near-tied pixels; computed in float64 the three paths agree on every pixel."""
    from rs_helpers.models.sam3 import load_sam3

    sam3 = load_sam3(profile="tiny", device="cpu", dtype=torch.float64)
    rgb = _rgb(200, 180, seed=3)
    settings = Sam3Settings(slide_crop=128, slide_stride=96, prompt_batch=3)
    runs = {path: timed_run(path, sam3, rgb, bench_vocabulary(6), settings) for path in PATHS}
    ours_scores, ours_labels = runs["ours"][1:]
    for path in ("per_prompt", "segearth"):
        scores, labels = runs[path][1:]
        assert np.array_equal(labels, ours_labels), path
        assert float((scores - ours_scores).abs().max()) < 1e-6, path
