"""The whole-pipeline benchmark (rs-seg bench --pipeline), on tiny models; no timed assertions."""
from __future__ import annotations

import json
import re

import numpy as np

from rs_helpers import cli
from rs_helpers.bench.masks import realistic_outputs, reference_from_logits
from rs_helpers.bench.pipeline import (
    PipelineConfig,
    STAGES,
    clip_one_by_one,
    format_pipeline_report,
    reference_select,
    run_pipeline_bench,
)
from rs_helpers.sam.proposals import ProposalSettings
from rs_helpers.ovss.vocabulary import encode_vocabulary

LAST_LINE = re.compile(r"^pipeline: fast \d+\.\d\dx faster than reference "
                       r"\(proposals \+ CLIP \+ selection; \d+ masks, realistic\)$")


class _CountForwards:
    """Wraps ``clip.model.encode_image`` and records each call's batch size."""

    def __init__(self, clip):
        self.clip, self.batches = clip, []
        self.original = clip.model.encode_image

    def __enter__(self):
        def counted(images, *args, **kwargs):
            self.batches.append(int(images.shape[0]))
            return self.original(images, *args, **kwargs)

        self.clip.model.encode_image = counted
        return self

    def __exit__(self, *exc):
        del self.clip.model.encode_image  # back to the class method


def _labels():
    labels = np.zeros((96, 96), np.uint8)
    labels[10:40, 10:60] = 1
    labels[50:90, 5:30] = 2
    labels[60:80, 50:90] = 1
    return labels


def test_reference_makes_one_clip_forward_per_mask(tiny_clip):
    labels = _labels()
    settings = ProposalSettings(points_per_side=6, stability_score_thresh=0.9)
    low, iou, points = realistic_outputs(labels, 6, img_size=256)
    proposals = reference_from_logits(low, iou, points, labels.shape, 256, settings)
    assert len(proposals) >= 3
    rgb = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    text = encode_vocabulary(tiny_clip, "land;building;road", ("a photo of {}.",), cache=None)
    with _CountForwards(tiny_clip) as counter:
        scores = clip_one_by_one(tiny_clip, rgb, proposals, text)
    assert counter.batches == [1] * len(proposals)
    assert scores.shape == (len(proposals), 3)
    np.testing.assert_allclose(scores.sum(1), 1, atol=1e-5)
    selection = reference_select(proposals, scores, None)
    assert selection.labels.shape == labels.shape
    assert set(np.unique(selection.labels)) <= {0, 1, 2, 255}


def test_pipeline_bench_tiny_end_to_end(tiny_sam, tiny_clip):
    with _CountForwards(tiny_clip) as counter:
        result = run_pipeline_bench(PipelineConfig(profile="tiny", size=64, points_per_side=4, repeat=2),
                                    sam=tiny_sam, clip=tiny_clip, log=lambda m: None)
    report = format_pipeline_report(result)
    assert LAST_LINE.match(report.splitlines()[-1]), report.splitlines()[-1]
    # every encode_image call is the reference's, one mask at a time (the dense map uses the visual tower)
    assert set(counter.batches) <= {1}
    expected = 2 * (result["model_run"]["reference_clip_calls"] + result["realistic"]["clip_calls"])
    assert len(counter.batches) == expected  # repeat=2: both runs of the reference called CLIP per mask
    assert result["realistic"]["clip_calls"] == result["realistic"]["reference_masks"] > 0
    for path in ("reference", "fast"):
        assert set(result["realistic"][path]) == set(STAGES)
        assert result["realistic"][path]["sam encoder"] == result["model_run"][path]["sam encoder"]
        assert result["model_run"][path]["sam decoder"] > 0
    assert result["headline"]["speedup"] > 0
    json.dumps(result)


def test_cli_bench_pipeline_tiny(tmp_path, capsys):
    out = tmp_path / "pipeline.json"
    code = cli.main(["bench", "--pipeline", "--profile", "tiny", "--size", "64", "--points-per-side", "4",
                     "--device", "cpu", "--out", str(out)])
    printed = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert LAST_LINE.match(printed[-1]), printed[-1]
    assert "TINY PROFILE" in printed[0]
    data = json.loads(out.read_text())
    assert data["points_per_side"] == 4 and data["size"] == 64 and data["clip_name"] == "ViT-B-16"
    assert data["totals"]["realistic_reference_s"] > 0
