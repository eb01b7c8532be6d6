"""The proposal benchmark, the realistic-mask comparison and the stage timer (no timed tests)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from rs_helpers import cli
from rs_helpers.bench.proposals import BenchConfig, format_report, run_bench
from rs_helpers.bench.masks import realistic_outputs, reference_from_logits
from rs_helpers.sam.fast_proposals import mask_match, proposals_from_logits
from rs_helpers.sam.proposals import ProposalSettings
from rs_helpers.sam.timings import Timings, maybe_stage

LAST_LINE = re.compile(r"^proposals: fast \d+\.\d\dx faster than reference, \d+\.\d\dx the floor "
                       r"\(masks \d+ vs \d+, matched \d+\.\d%\)$")


def _labels():
    labels = np.zeros((96, 96), np.uint8)
    labels[10:40, 10:60] = 1
    labels[50:90, 5:30] = 2
    labels[60:80, 50:90] = 1  # a second region of class 1
    return labels


def test_realistic_outputs_follow_the_regions():
    labels = _labels()
    low, iou, points = realistic_outputs(labels, 4, img_size=256)
    assert low.shape == (16, 3, 64, 64) and iou.shape == (16, 3) and points.shape == (16, 2)
    assert ((iou >= 0.8) & (iou < 1.0)).all()
    scale = 64 / 96
    for (x, y), masks in zip(points, low):
        px, py = int(x * scale), int(y * scale)
        assert (masks[:, py, px] > 0).all()  # every mask contains its point
        region = masks[1] > 0
        assert region.sum() <= (masks[2] > 0).sum()  # region within its class
        assert (masks[0] > 0).sum() <= region.sum()  # disc part within the region


def test_fast_postprocessing_matches_reference_on_realistic_masks():
    labels = _labels()
    settings = ProposalSettings(points_per_side=6, stability_score_thresh=0.9)  # small regions at 96 px
    low, iou, points = realistic_outputs(labels, 6, img_size=256)
    ref = reference_from_logits(low, iou, points, labels.shape, 256, settings)
    fast = proposals_from_logits(low, iou, points, labels.shape, 256, settings)
    assert len(ref) >= 3
    assert mask_match(ref.masks, fast.masks) == (1.0, 1.0)
    assert len(ref) == len(fast)
    np.testing.assert_allclose(np.sort(ref.stability_score), np.sort(fast.stability_score), atol=1e-6)


def test_run_bench_tiny_report():
    result = run_bench(BenchConfig(profile="tiny", size=64, points_per_side=4, repeat=2), log=lambda m: None)
    report = format_report(result)
    assert LAST_LINE.match(report.splitlines()[-1]), report.splitlines()[-1]
    assert "TINY PROFILE" in report and "fastest run shown" in report
    for path in ("reference", "fast"):
        assert result[path]["stages"]["sam encoder"] > 0 and result[path]["stages"]["sam decoder"] > 0
    assert result["floor"]["total"] == pytest.approx(
        result["reference"]["stages"]["sam encoder"] + result["reference"]["stages"]["sam decoder"])
    assert result["headline"]["post_processing_from"] == "realistic masks"
    json.dumps(result)


def test_cli_bench_tiny(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = cli.main(["bench", "--profile", "tiny", "--size", "64", "--points-per-side", "4", "--device", "cpu",
                     "--out", str(out)])
    printed = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert LAST_LINE.match(printed[-1])
    data = json.loads(out.read_text())
    assert data["points_per_side"] == 4 and data["size"] == 64


def test_cli_bench_memory_probe_tiny(capsys):
    code = cli.main(["bench", "--profile", "tiny", "--memory-size", "300", "--points-per-side", "3"])
    assert code == 0
    assert "peak memory" in capsys.readouterr().out


def test_timings_accumulate_nest_and_print():
    timings = Timings("cpu")
    for _ in range(2):
        with timings.stage("outer"):
            with timings.stage("inner"):
                np.ones(1000)
    with maybe_stage(timings, "other"):
        pass
    with maybe_stage(None, "ignored"):
        pass
    assert timings.stages["outer"].calls == 2 and timings.stages["inner"].calls == 2
    assert timings.stages["inner"].nested and not timings.stages["outer"].nested
    assert timings.total_seconds == pytest.approx(timings.seconds("outer") + timings.seconds("other"))
    assert timings.seconds("missing") == 0.0
    assert timings.peak_bytes > 0
    table = str(timings)
    assert "outer" in table and "  inner" in table and "total" in table and "peak MiB" in table
    assert [s["name"] for s in timings.to_dict()["stages"]] == ["outer", "inner", "other"]
    merged = Timings("cpu").merge(timings).merge(timings)
    assert merged.stages["outer"].calls == 4


def test_timings_cuda_peak_when_available():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    timings = Timings("cuda")
    with timings.stage("alloc"):
        x = torch.empty(64 * 2**20, dtype=torch.uint8, device="cuda")
        del x
    assert timings.stages["alloc"].peak_bytes >= 64 * 2**20
