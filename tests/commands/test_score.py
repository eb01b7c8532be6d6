"""``rs-seg score refer|ovss`` on hand-built masks and fake benchmark layouts: the score line equals
the official evaluators' ports (tests/evaluation/test_official_ports.py), and odd inputs give one-line
errors with exit 2."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fake_layouts as fl
from rs_helpers.cli import main
from rs_helpers.evaluation.datasets import dataset_class
from rs_helpers.evaluation.protocols import get_protocol
from rs_helpers.evaluation.scoring import label_from_probabilities


def _ports():
    """The official evaluators' ports live in tests/evaluation/test_official_ports.py (one copy)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "evaluation" / "test_official_ports.py"
    spec = importlib.util.spec_from_file_location("official_ports_for_score", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_P = _ports()
mmseg_iou, mmseg_miou, rmsin_loop, rmsin_resize = _P.mmseg_iou, _P.mmseg_miou, _P.rmsin_loop, _P.rmsin_resize
segearth_ov_postprocess, segearth_r1_loop = _P.segearth_ov_postprocess, _P.segearth_r1_loop
segearth_r1_preprocess_mask = _P.segearth_r1_preprocess_mask

REFER_LINE = re.compile(r"^score: gIoU (\S+) cIoU (\S+) P@0\.5 (\S+) P@0\.6 (\S+) P@0\.7 (\S+) P@0\.8 (\S+) "
                        r"P@0\.9 (\S+) \((\d+) samples, protocol (\S+)\)$")
OVSS_LINE = re.compile(r"^score: (mIoU|IoU) (\S+) \((\d+) images, (\d+) classes, protocol (\S+)\)$")


def cli(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def last_line(out: str) -> str:
    lines = out.strip().splitlines()
    assert sum(line.startswith("score:") for line in lines) == 1
    return lines[-1]


def save(path: Path, array) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fl.write(path, np.asarray(array, np.uint8))
    return path


def pct(value: float) -> str:
    return f"{100 * value:.2f}"


# --------------------------------------------------------------------------- score refer
def refer_folders(tmp_path, shape=(30, 40), n=6, seed=0):
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        gt = rng.random(shape) > rng.uniform(0.2, 0.9)
        pred = (gt ^ (rng.random(shape) > 0.8)) if i % 3 else rng.random(shape) > 0.5
        pairs.append((pred, gt))
    pairs.append((np.zeros(shape, bool), np.zeros(shape, bool)))  # both empty
    pairs.append((rng.random(shape) > 0.5, np.zeros(shape, bool)))  # empty target
    for i, (pred, gt) in enumerate(pairs):
        save(tmp_path / "gt" / f"s{i}.png", gt * 255)  # 0/255 ground truth
        save(tmp_path / "pred" / f"s{i}.tif", pred)  # 0/1 predictions, TIFF
    return pairs


@pytest.mark.parametrize("protocol", ["native", "rmsin", "segearth-r1"])
def test_score_refer_line_equals_the_official_loops(tmp_path, capsys, protocol):
    pairs = refer_folders(tmp_path)
    code, out, _ = cli(["score", "refer", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--protocol",
                        protocol], capsys)
    assert code == 0
    m = REFER_LINE.match(last_line(out))
    assert m and m.group(8) == str(len(pairs)) and m.group(9) == protocol
    assert out.splitlines()[0].startswith(f"protocol {protocol} ")
    if protocol == "rmsin":
        expected = rmsin_loop([(rmsin_resize(p), rmsin_resize(g)) for p, g in pairs])
    elif protocol == "segearth-r1":
        expected = segearth_r1_loop([(segearth_r1_preprocess_mask(p), segearth_r1_preprocess_mask(g)) for p, g in pairs])
    else:
        from rs_helpers.evaluation.refer_metrics import ReferScores

        scores = ReferScores()
        for p, g in pairs:
            scores.add(p, g)
        expected = scores.summary()
    values = [expected["gIoU"], expected["cIoU"]] + [expected.get(f"P@{t}", expected.get(f"P@{t:.1f}"))
                                                     for t in (0.5, 0.6, 0.7, 0.8, 0.9)]
    assert list(m.groups()[:7]) == [pct(v) for v in values]


def test_score_refer_dataset_picks_its_protocol_and_json(tmp_path, capsys):
    refer_folders(tmp_path)
    out_json = tmp_path / "res" / "scores.json"
    code, out, _ = cli(["score", "refer", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--dataset",
                        "earthreason", "--json", out_json], capsys)
    assert code == 0 and last_line(out).endswith("protocol segearth-r1)")
    data = json.loads(out_json.read_text())
    assert data["protocol"] == "segearth-r1" and len(data["samples"]) == 8 and data["summary"]["n"] == 8
    code, _, err = cli(["score", "refer", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--json", out_json],
                       capsys)
    assert code == 2 and "exists" in err  # --overwrite is the only way to replace it
    code, _, _ = cli(["score", "refer", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--json", out_json,
                      "--overwrite"], capsys)
    assert code == 0


def test_score_refer_prediction_already_in_the_scoring_frame(tmp_path, capsys):
    gt = np.zeros((600, 800), bool)
    gt[100:300, 200:500] = True
    save(tmp_path / "gt/a.png", gt * 255)
    save(tmp_path / "pred/a.png", rmsin_resize(gt))  # an RMSIN-style prediction, made at 480 x 480
    code, out, _ = cli(["score", "refer", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--protocol",
                        "rmsin"], capsys)
    assert code == 0 and REFER_LINE.match(last_line(out)).group(1) == "100.00"
    code, _, err = cli(["score", "refer", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt"], capsys)
    assert code == 2 and "480x480" in err and "800x600" in err  # native: sizes must match


def test_score_refer_odd_inputs(tmp_path, capsys):
    refer_folders(tmp_path, n=2)
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    (pred / "s1.tif").unlink()
    code, _, err = cli(["score", "refer", "--pred", pred, "--gt", gt], capsys)
    assert code == 2 and "s1.png" in err and len(err.strip().splitlines()) == 1
    save(pred / "s1.png", np.zeros((5, 5)))
    code, _, err = cli(["score", "refer", "--pred", pred, "--gt", gt], capsys)
    assert code == 2 and "s1.png" in err and "5x5" in err and "40x30" in err
    (pred / "s1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    code, _, err = cli(["score", "refer", "--pred", pred, "--gt", gt], capsys)
    assert code == 2 and "s1.png" in err
    save(pred / "s1.tif", np.zeros((30, 40)))
    code, _, err = cli(["score", "refer", "--pred", pred, "--gt", gt], capsys)
    assert code == 2 and "share the stem" in err
    (pred / "s1.png").unlink()
    (tmp_path / "empty").mkdir()
    for argv, words in [(["--pred", tmp_path / "empty", "--gt", gt], "no PNG or TIFF"),
                        (["--pred", tmp_path / "nope", "--gt", gt], "no such folder"),
                        (["--pred", pred / "s0.tif", "--gt", gt], "is a file"),
                        (["--pred", gt, "--gt", gt], "same folder"),
                        (["--pred", pred, "--gt", gt, "--json", tmp_path / "r.txt"], ".json")]:
        code, _, err = cli(["score", "refer", *argv], capsys)
        assert code == 2 and words in err, (argv, err)
    for argv in (["--pred", pred], ["--pred", pred, "--gt", gt, "--protocol", "segearth-ov"],
                 ["--pred", pred, "--gt", gt, "--dataset", "loveda"]):
        assert cli(["score", "refer", *argv], capsys)[0] == 2
    assert cli(["score"], capsys)[0] == 2


# --------------------------------------------------------------------------- score ovss
def loveda_raw_to_mmseg(raw):
    """mmseg LoadAnnotations(reduce_zero_label=True): 0 -> 255, the rest shifted down, 254 -> 255."""
    gt = raw.astype(np.uint8).copy()
    gt[gt == 0] = 255
    gt = gt - 1
    gt[gt == 254] = 255
    return gt.astype(np.int64)


def test_score_ovss_loveda_reduce_zero_label(tmp_path, capsys):
    fake = fl.make_loveda(tmp_path)
    rng = np.random.default_rng(3)
    pairs = []
    for sid in ("0", "1"):
        raw = np.asarray(Image.open(fake.root / f"ann_dir/val/{sid}.png"))
        if sid == "1":
            raw = raw.copy()
            raw[0] = 0  # a row of no-data
            save(fake.root / f"ann_dir/val/{sid}.png", raw)
        pred = rng.integers(0, 7, raw.shape)
        pred[1, :3] = [7, 200, 255]  # values outside the class range: misses, as in mmseg
        save(tmp_path / "pred" / f"{sid}.png", pred)
        pairs.append((pred, loveda_raw_to_mmseg(raw)))
    code, out, err = cli(["score", "ovss", "--pred", tmp_path / "pred", "--dataset", "loveda", "--root", fake.root],
                         capsys)
    assert code == 0, err
    m = OVSS_LINE.match(last_line(out))
    assert m.groups() == ("mIoU", pct(mmseg_miou(pairs, 7)), "2", "7", "segearth-ov")
    assert "prob_thd 0.3" in out.splitlines()[0] and "outside 0..6" in err


def test_score_ovss_potsdam_background_index_5(tmp_path, capsys):
    fake = fl.make_potsdam(tmp_path)
    classes = dataset_class("potsdam").classes
    protocol = get_protocol("segearth-ov", "potsdam")
    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.ones(6) * 0.3, size=(8, 8)).transpose(2, 0, 1)
    # the rule compares the scores it is given: scaled down, two rows fall below prob_thd 0.1 (a 6-class
    # softmax alone never does, its maximum being at least 1/6)
    probs[:, :2] *= 0.09
    labels = label_from_probabilities(probs, protocol, classes)
    port = segearth_ov_postprocess(probs, 0.1, 5)
    np.testing.assert_array_equal(labels, port)
    assert (labels[:2] == 5).all()  # low confidence -> clutter, the declared background
    save(tmp_path / "pred" / f"{fake.sample_id}.png", labels)
    raw = np.asarray(Image.open(fake.root / f"ann_dir/val/{fake.sample_id}.png"))
    code, out, err = cli(["score", "ovss", "--pred", tmp_path / "pred", "--dataset", "potsdam", "--root", fake.root],
                         capsys)
    assert code == 0, err
    m = OVSS_LINE.match(last_line(out))
    assert m.groups() == ("mIoU", pct(mmseg_miou([(port, loveda_raw_to_mmseg(raw))], 6)), "1", "6", "segearth-ov")
    assert "bg_idx 5 (road" not in out and "bg_idx 5 (clutter)" in out


def test_score_ovss_binary_set_reports_foreground_iou(tmp_path, capsys):
    fake = fl.make_whu_aerial(tmp_path)
    raw = np.asarray(Image.open(fake.root / f"val/label/{fake.sample_id}.png"))
    pred = np.zeros_like(raw)
    pred[4:12] = 1
    save(tmp_path / "pred" / f"{fake.sample_id}.png", pred)
    code, out, _ = cli(["score", "ovss", "--pred", tmp_path / "pred", "--dataset", "whu-aerial", "--root",
                        fake.root, "--protocol", "native"], capsys)
    assert code == 0
    expected = mmseg_iou([(pred, (raw // 255).astype(np.int64))], 2)[1]  # SegEarth-OV's label_cvt: 0/1
    assert OVSS_LINE.match(last_line(out)).groups() == ("IoU", pct(expected), "1", "2", "native")


def test_score_ovss_legend_maps_another_class_order(tmp_path, capsys):
    fake = fl.make_loveda(tmp_path)
    names = [c.split(",")[0] for c in dataset_class("loveda").classes]
    rng = np.random.default_rng(9)
    lines = []
    for folder, order in (("pred", names), ("reordered", names[::-1])):
        for sid in ("0", "1"):
            truth = rng.integers(0, 7, (8, 8)) if folder == "pred" else np.asarray(
                Image.open(tmp_path / "pred" / f"{sid}.png")).astype(np.int64)
            written = truth if folder == "pred" else np.asarray([order.index(names[v]) for v in truth.ravel()]
                                                                ).reshape(8, 8)
            save(tmp_path / folder / f"{sid}.png", written)
            legend = {"binary": False, "classes": [{"index": i, "name": n} for i, n in enumerate(order)]}
            (tmp_path / folder / f"{sid}.legend.json").write_text(json.dumps(legend))
        code, out, _ = cli(["score", "ovss", "--pred", tmp_path / folder, "--dataset", "loveda", "--root",
                            fake.root], capsys)
        assert code == 0
        lines.append(last_line(out))
    assert lines[0] == lines[1]
    (tmp_path / "reordered/0.legend.json").write_text('{"binary": false, "classes": [{"index": 0, "name": "x"}]}')
    code, _, err = cli(["score", "ovss", "--pred", tmp_path / "reordered", "--dataset", "loveda", "--root",
                        fake.root], capsys)
    assert code == 2 and "'x'" in err and "0.legend.json" in err


def test_score_ovss_odd_inputs(tmp_path, capsys):
    fake = fl.make_loveda(tmp_path)
    pred = tmp_path / "pred"
    save(pred / "0.png", np.zeros((8, 8)))
    code, _, err = cli(["score", "ovss", "--pred", pred, "--dataset", "loveda", "--root", fake.root], capsys)
    assert code == 2 and "ann_dir/val/1.png" in err and len(err.strip().splitlines()) == 1
    save(pred / "1.png", np.zeros((8, 9)))
    code, _, err = cli(["score", "ovss", "--pred", pred, "--dataset", "loveda", "--root", fake.root], capsys)
    assert code == 2 and "1.png is 9x8" in err and "ann_dir/val/1.png" in err and "8x8" in err
    (pred / "1.png").unlink()
    (pred / "1.tif").write_bytes(b"II*\x00 truncated")
    code, _, err = cli(["score", "ovss", "--pred", pred, "--dataset", "loveda", "--root", fake.root], capsys)
    assert code == 2 and "1.tif" in err
    (pred / "1.tif").unlink()
    fl.write(pred / "1.tif", np.zeros((8, 8)))
    for argv in (["--dataset", "nope", "--root", fake.root], ["--dataset", "loveda", "--root", tmp_path / "none"],
                 ["--dataset", "samples"], ["--dataset", "loveda", "--root", fake.root, "--protocol", "rmsin"],
                 ["--dataset", "loveda", "--root", fake.root, "--split", "bogus"]):
        assert cli(["score", "ovss", "--pred", pred, *argv], capsys)[0] == 2
    code, out, _ = cli(["score", "ovss", "--pred", pred, "--dataset", "loveda", "--root", fake.root], capsys)
    assert code == 0 and OVSS_LINE.match(last_line(out))
