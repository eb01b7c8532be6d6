"""Benchmark evaluation: accumulated scores with known answers (oracle segmenters on fake data),
groups of the mixed samples, failures recorded per image, JSON / CSV output, the printed table,
and ``rs-seg eval ovss`` end to end under the tiny profile."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import fake_layouts as fl
from rs_helpers.cli import main
from rs_helpers.evaluation.datasets import IGNORE, get_dataset
from rs_helpers.evaluation.datasets.codec import LabelCodec
from rs_helpers.evaluation.datasets.base import OvssDataset, SegSample
from rs_helpers.errors import BadInputError
from rs_helpers.evaluation.ovss_eval import evaluate, format_table, write_results


def oracle(image, classes, binary, *, labels_of):
    labels = labels_of(image.path).copy()
    labels[labels == IGNORE] = 0
    return labels


class TwoImages(OvssDataset):
    """A binary set of two hand-built images with known predictions."""

    name, title, kind, classes, paper, segearth_ov = "two", "Two", "binary", ["background", "building"], 58.8, 49.2
    needs_root = False
    protocol = "hand-built"

    def find(self, root):
        return self._samples


def two_images(tmp_path):
    gt_a = np.zeros((4, 4), np.uint8)
    gt_a[:2] = 1
    gt_b = np.zeros((4, 4), np.uint8)
    gt_b[0, 0] = IGNORE
    samples = []
    for name, gt in (("a", gt_a), ("b", gt_b)):
        fl.write(tmp_path / f"{name}.png", fl.rgb(4, 4))
        fl.write(tmp_path / f"{name}_gt.png", gt)
        samples.append(SegSample(name, tmp_path / f"{name}.png", tmp_path / f"{name}_gt.png",
                                 codec=LabelCodec(values={0: 0, 1: 1})))
    TwoImages._samples = samples
    return TwoImages()


def test_binary_iou_is_accumulated_over_images(tmp_path):
    ds = two_images(tmp_path)
    predictions = {"a": np.ones((4, 4), np.uint8), "b": np.zeros((4, 4), np.uint8)}
    report = evaluate(ds, lambda image, classes, binary: predictions[Path(image.path).stem], progress=False)
    (group,) = report.groups
    # a: TP 8, FP 8, FN 0; b: nothing of the target -> accumulated IoU 8 / 16
    assert group.metric == "IoU" and group.value == pytest.approx(50.0)
    assert [r.score for r in report.images] == [pytest.approx(50.0), None]
    assert report.images[1].labelled_pixels == 15  # the ignored pixel is left out
    assert group.paper == 58.8 and group.segearth_ov == 49.2


def test_multiclass_oracle_scores_100_and_zero_predictions_known(tmp_path):
    fake = fl.make_loveda(tmp_path)
    ds = get_dataset("loveda", fake.root)
    labels_of = {str(s.image): s.load_labels() for s in ds}
    report = evaluate(ds, lambda im, c, b: oracle(im, c, b, labels_of=labels_of.__getitem__), progress=False)
    assert report.groups[0].value == pytest.approx(100.0)
    report = evaluate(ds, lambda im, c, b: np.zeros(im.rgb.shape[:2], np.uint8), progress=False)
    # every labelled pixel predicted "background": IoU(background) = its share of labelled pixels (1/7),
    # the six other classes 0 -> mIoU = (1/7) / 7
    assert report.groups[0].value == pytest.approx(100 * (1 / 7) / 7)
    assert report.groups[0].per_class_iou[1] == 0.0


def test_samples_are_grouped_per_vocabulary():
    ds = get_dataset("samples")
    truth = {str(s.image): s for s in ds}
    calls = []

    def segmenter(image, classes, binary):
        calls.append((len(classes), binary))
        labels = truth[image.path].load_labels().copy()
        labels[labels == IGNORE] = 0
        return labels

    report = evaluate(ds, segmenter, progress=False)
    groups = {g.name: g for g in report.groups}
    assert set(groups) == {"dubai", "chesapeake", "atlanta_buildings", "vegas_roads"}
    assert groups["dubai"].n_images == 8 and groups["chesapeake"].n_images == 3
    assert groups["vegas_roads"].binary and groups["vegas_roads"].metric == "IoU"
    assert all(g.value == pytest.approx(100.0) for g in report.groups)
    assert (5, False) in calls and (2, True) in calls


def test_failures_are_recorded_and_the_run_goes_on(tmp_path):
    fake = fl.make_vdd(tmp_path)
    ds = get_dataset("vdd", fake.root)
    ds.samples[0].label.unlink()
    report = evaluate(ds, lambda im, c, b: np.zeros(im.rgb.shape[:2], np.uint8), progress=False)
    assert report.images[0].error and report.images[0].score is None
    assert report.groups[0].n_images == 1
    wrong_shape = evaluate(ds, lambda im, c, b: np.zeros((2, 2), np.uint8), progress=False)
    assert "no such file" in wrong_shape.images[0].error and "prediction is" in wrong_shape.images[1].error
    with pytest.raises(BadInputError, match="limit"):
        evaluate(ds, lambda im, c, b: None, limit=0)


def test_results_json_csv_and_table(tmp_path):
    fake = fl.make_loveda(tmp_path)
    ds = get_dataset("loveda", fake.root)
    report = evaluate(ds, lambda im, c, b: np.zeros(im.rgb.shape[:2], np.uint8), progress=False, limit=1,
                      profile="tiny", settings={"sam": "vit_l"})
    paths = write_results(report, tmp_path / "out" / "res.json")
    data = json.loads(paths[0].read_text())
    assert data["dataset"] == "loveda" and data["n_images"] == 1 and "MEANINGLESS" in data["note"]
    assert data["groups"][0]["paper"] == 38.2 and data["groups"][0]["segearth_ov"] == 36.9
    assert data["groups"][0]["per_class_iou"]["background"] is not None
    assert len(data["images"]) == 1 and data["settings"] == {"sam": "vit_l"}
    rows = list(csv.DictReader(open(paths[1])))
    assert rows[0]["id"] == "0" and float(rows[0]["score"]) >= 0
    summary = list(csv.DictReader(open(paths[2])))
    assert summary[0]["metric"] == "mIoU" and summary[0]["paper"] == "38.2"
    table = format_table(report)
    assert "38.2" in table and "36.9" in table and "MEANINGLESS" in table and "--limit" in table
    with pytest.raises(BadInputError, match="json"):
        write_results(report, tmp_path / "res.csv")


def test_cli_list_and_layout_error(tmp_path, capsys):
    assert main(["eval", "ovss", "--list"]) == 0
    out = capsys.readouterr().out
    assert "wbs-si" in out and "potsdam" in out and "50.2" in out
    header, *rows = out.splitlines()
    assert header.split()[3:6] == ["paper", "SegEarth-OV", "SegEarth-OV3"]
    potsdam = next(r for r in rows if r.startswith("potsdam ")).split()
    assert potsdam[3:6] == ["50.2", "47.1", "57.8"]  # paper, SegEarth-OV, SegEarth-OV3 (SAM 3)
    assert next(r for r in rows if r.startswith("isaid ")).split()[5] == "-"  # not stated in its text
    assert main(["eval", "ovss", "--dataset", "loveda", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Expected layout" in err and "img_dir/val" in err


def test_cli_samples_end_to_end_tiny(tmp_path, capsys):
    out = tmp_path / "eval.json"
    code = main(["eval", "ovss", "--dataset", "samples", "--profile", "tiny", "--limit", "2", "--max-side", "96",
                 "--points-per-side", "4", "--templates", "single", "--no-progress", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "MEANINGLESS" in printed and "mIoU" in printed and "dubai" in printed
    data = json.loads(out.read_text())
    assert data["profile"] == "tiny" and data["n_images"] == 2
    assert (tmp_path / "eval_images.csv").is_file() and (tmp_path / "eval_summary.csv").is_file()


# ---------------------------------------------------------------------------- methods and named protocols
class Bicubic:
    """A cheap stand-in for SimFeatUp: features bicubically to the guidance's size (counts its calls)."""

    calls = 0

    def __call__(self, features, guidance):
        import torch.nn.functional as F

        Bicubic.calls += 1
        return F.interpolate(features, size=guidance.shape[-2:], mode="bicubic", align_corners=False)


@pytest.fixture
def cheap_upsampler_and_no_sam(monkeypatch):
    import rs_helpers.models.sam as sam_module
    import rs_helpers.ovss.simfeatup as simfeatup

    def refuse(*args, **kwargs):
        raise AssertionError("SAM was loaded by --method clip")

    monkeypatch.setattr(sam_module, "load_sam", refuse)
    monkeypatch.setattr(simfeatup, "load_simfeatup", lambda *a, **k: Bicubic())


def test_method_settings_follow_the_protocol_per_dataset():
    from rs_helpers.evaluation.method_settings import clip_settings, dense_settings, scope, upsampler_name
    from rs_helpers.evaluation.protocols import get_protocol
    from rs_helpers.ovss.clip_dense import DenseSettings

    native = get_protocol("native", kind="ovss")
    assert dense_settings(native, "single") == DenseSettings(templates="single")  # sam-clip as before
    assert clip_settings(native, "single", 512).max_side == 512 and clip_settings(native).resize_first
    potsdam, xbd = get_protocol("segearth-ov", "potsdam"), get_protocol("segearth-ov", "xbd-pre")
    assert (clip_settings(potsdam).prob_thd, clip_settings(potsdam).bg_idx) == (0.1, 5)
    assert clip_settings(xbd).dense.cls_lambda == 0.0 and dense_settings(xbd).cls_lambda == 0.0
    assert clip_settings(potsdam, max_side=512).max_side is None  # logits to the original size
    assert upsampler_name(potsdam, "clip") == "simfeatup" and upsampler_name(native, "sam-clip") == "none"
    assert upsampler_name(potsdam, "sam-clip", "none") == "none"
    with pytest.raises(BadInputError, match="method"):
        upsampler_name(potsdam, "sam")
    assert "all fields apply;" in scope(potsdam, "clip", "simfeatup")
    assert "but the upsampler" in scope(potsdam, "clip", "none") and "protocol's: simfeatup" in scope(potsdam, "clip", "none")
    assert "not applied: prob_thd and bg_idx" in scope(potsdam, "sam-clip", "simfeatup", 1024)
    assert "random SimFeatUp" in scope(potsdam, "clip", "simfeatup", tiny=True)


def test_cli_clip_method_segearth_protocol_on_loveda(tmp_path, capsys, tiny_clip, cheap_upsampler_and_no_sam):
    from rs_helpers.evaluation.method_settings import clip_settings
    from rs_helpers.evaluation.ovss_eval import clip_segmenter
    from rs_helpers.evaluation.protocols import get_protocol

    fake = fl.make_loveda(tmp_path)
    out = tmp_path / "clip.json"
    before = Bicubic.calls
    args = ["eval", "ovss", "--dataset", "loveda", "--root", str(fake.root), "--method", "clip", "--protocol",
            "segearth-ov", "--templates", "single", "--no-progress", "--profile", "tiny", "--out", str(out)]
    assert main(args) == 0
    assert Bicubic.calls > before  # the protocol's upsampler, by default
    printed = capsys.readouterr().out
    lines = [line for line in printed.splitlines() if not line.startswith(("!!", "***"))]
    assert lines[0].startswith("protocol segearth-ov (loveda, SegEarth-OV configs/cfg_loveda.py): "
                               "prob_thd 0.3 -> bg_idx 0 (background)")
    assert lines[1].startswith("method clip (CLIP alone, no SAM): all fields apply; upsampler simfeatup")
    data = json.loads(out.read_text())
    assert data["protocol_name"] == "segearth-ov" and data["protocol_settings"] == lines[0]
    assert data["settings"]["method"] == "clip" and "sam" not in data["settings"]
    # the scores are those of CLIP alone under LoveDA's SegEarth-OV settings
    ds = get_dataset("loveda", fake.root)
    expected = evaluate(ds, clip_segmenter(tiny_clip, clip_settings(get_protocol("segearth-ov", "loveda"), "single"),
                                           upsampler=Bicubic()), progress=False)
    assert data["groups"][0]["confusion"] == expected.groups[0].confusion.matrix.tolist()
    # the same results file under another protocol, method or upsampler is refused before any model
    for option, value in (("--protocol", "native"), ("--method", "sam-clip"), ("--upsampler", "none")):
        changed = args[:args.index(option)] + [option, value] + args[args.index(option) + 2:] \
            if option in args else args + [option, value]
        assert main(changed) == 2
        assert "other settings" in capsys.readouterr().err


def test_cli_sam_clip_under_a_protocol_says_which_fields_apply(tmp_path, capsys, monkeypatch):
    import rs_helpers.ovss.simfeatup as simfeatup

    monkeypatch.setattr(simfeatup, "load_simfeatup", lambda *a, **k: Bicubic())
    fake = fl.make_loveda(tmp_path)
    out = tmp_path / "sam.json"
    assert main(["eval", "ovss", "--dataset", "loveda", "--root", str(fake.root), "--limit", "1", "--templates",
                 "single", "--points-per-side", "2", "--no-progress", "--profile", "tiny", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "protocol segearth-ov (loveda" in printed  # the dataset's own protocol by default
    assert "method sam-clip (SAM masks vote on the dense map): applied: resize" in printed
    assert "not applied: prob_thd and bg_idx" in printed
    data = json.loads(out.read_text())
    assert data["settings"]["method"] == "sam-clip" and data["settings"]["upsampler"] == "simfeatup"


@pytest.mark.parametrize("argv,match", [
    (["--protocol", "rmsin"], "not for ovss"),
    (["--protocol", "bogus"], "unknown protocol"),
    (["--method", "clip", "--selector", "crop"], "--selector has no use with --method clip"),
])
def test_cli_bad_protocol_or_method_exit_2_before_models(tmp_path, capsys, argv, match):
    fake = fl.make_loveda(tmp_path)
    code = main(["eval", "ovss", "--dataset", "loveda", "--root", str(fake.root), "--profile", "tiny",
                 "--no-progress", "--out", str(tmp_path / "r.json"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and match in err and "tiny model in use" not in err
    assert not (tmp_path / "r.json").exists()
