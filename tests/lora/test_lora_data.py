"""LoRA training data: answers that parse back to the targets, one SAM embedding per image,
empty targets with the no-target answer (or skipped), skipped bad samples, the rules on every line,
the held-out split by image, the trainer reading the file, the command."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rs_helpers.refer.click_sim import ClickSimulation
from rs_helpers.refer.clicks import Click, parse_clicks, to_grid
from rs_helpers.errors import BadInputError
from rs_helpers.lora.data import (
    build_examples,
    example,
    group_by_image,
    read_jsonl,
    split_holdout,
    write_lora_data,
)
from rs_helpers.samples import ReferringSample


def _save(path, array):
    from PIL import Image

    Image.fromarray(array).save(path)
    return path


def _record(tmp_path, rid, image_name, mask, text="the red roof", task="referring", size=None):
    """A referring record on a flat test image (written once per name) with ``mask`` as target."""
    height, width = size or mask.shape
    image = tmp_path / image_name
    if not image.exists():
        _save(image, np.full((height, width, 3), 90, np.uint8))
    mask_path = _save(tmp_path / f"{rid}_mask.png", mask.astype(np.uint8) * 255)
    return ReferringSample(id=rid, image=image, text=text, task=task, target_class="x", mask=mask_path,
                           bbox_xyxy=(0, 0, 1, 1))


def _rect(shape, rows, cols):
    mask = np.zeros(shape, bool)
    mask[rows[0]: rows[1] + 1, cols[0]: cols[1] + 1] = True
    return mask


def _oracle_factory(calls: list):
    """make_predict for build_examples: records which image it was asked for; its "SAM" paints a
    5 x 5 square around each positive click (a stand-in whose answers the test knows)."""

    def make_predict(rgb):
        calls.append(rgb.shape)

        def predict(points, labels):
            out = np.zeros(rgb.shape[:2], bool)
            for (x, y), label in zip(points, labels):
                if label:
                    out[max(0, y - 2): y + 3, max(0, x - 2): x + 3] = True
            return out

        return predict

    return make_predict


# --------------------------------------------------------------------------- the answer string
@settings(max_examples=100, deadline=None)
@given(st.data())
def test_answer_parses_back_to_exactly_the_target_clicks(data):
    width, height = data.draw(st.integers(1, 2500)), data.draw(st.integers(1, 2500))
    n = data.draw(st.integers(1, 8))
    clicks = [Click(data.draw(st.integers(0, width - 1)), data.draw(st.integers(0, height - 1)),
                    data.draw(st.integers(0, 1))) for _ in range(n)]
    sim = ClickSimulation(clicks=clicks, ious=[0.5] * n, distances=[1.0] * n, sources=["gt"] * n,
                          stop_reason="n_clicks", shape=(height, width))
    record = ReferringSample(id="r", image="/x/img.png", text="  a  roof ", task="referring",
                             target_class="", mask="/x/m.png", bbox_xyxy=(0, 0, 1, 1))
    line = example(record, sim, n_clicks=6)
    target = to_grid(clicks, width, height)
    assert parse_clicks(line["answer"]) == target
    assert [Click(**c) for c in line["clicks"]] == target
    assert line["text"] == "a roof" and line["n_clicks"] == 6
    assert json.loads(json.dumps(line)) == line


# --------------------------------------------------------------------------- building examples
def test_examples_from_an_oracle_sam_with_one_embedding_per_image(tmp_path):
    shape = (40, 60)
    records = [
        _record(tmp_path, "a1", "a.png", _rect(shape, (10, 14), (20, 24))),      # a 5 x 5 block: perfect
        _record(tmp_path, "b1", "b.png", _rect(shape, (0, 4), (0, 9))),         # 5 x 10 in the corner
        _record(tmp_path, "a2", "a.png", _rect(shape, (30, 34), (50, 54)), task="reasoning",
                text="Where could a car park?"),
    ]
    calls: list = []
    summary = build_examples(records, n_clicks=6, make_predict=_oracle_factory(calls), progress=False)
    assert calls == [(40, 60, 3), (40, 60, 3)]  # a.png embedded once for its two samples
    by_id = {e["id"]: e for e in summary.examples}
    assert [e["id"] for e in summary.examples] == ["a1", "a2", "b1"]  # grouped by image
    # a1: centre (22, 12), the 5 x 5 square is the target: one click, IoU 1
    assert by_id["a1"]["clicks"] == [{"x": round(22 * 1000 / 59), "y": round(12 * 1000 / 39), "label": 1}]
    assert by_id["a1"]["iou"] == 1.0 and by_id["a1"]["stop_reason"] == "perfect"
    # b1: the padded distance is 3 on row 2 from x=2 to x=7: first click (2, 2); the square
    # (rows 0..4, cols 0..4) leaves cols 5..9 missed, deepest (3 px) first at (7, 2)
    b1 = [Click(**c) for c in by_id["b1"]["clicks"]]
    assert b1 == to_grid([Click(2, 2, 1), Click(7, 2, 1)], 60, 40)
    assert by_id["b1"]["iou"] == 1.0
    assert by_id["a2"]["task"] == "reasoning" and by_id["a2"]["text"] == "Where could a car park?"
    for line in summary.examples:
        assert parse_clicks(line["answer"]) == [Click(**c) for c in line["clicks"]]
        assert line["image"].startswith(str(tmp_path.resolve())) and line["n_clicks"] == 6


def test_bad_samples_are_skipped_and_listed(tmp_path):
    shape = (20, 20)
    records = [
        _record(tmp_path, "empty", "a.png", np.zeros(shape, bool)),
        _record(tmp_path, "wrong_size", "b.png", _rect((10, 10), (2, 5), (2, 5)), size=shape),
        _record(tmp_path, "ok", "a.png", _rect(shape, (5, 9), (5, 9))),
        _record(tmp_path, "no_text", "a.png", _rect(shape, (5, 9), (5, 9)), text="  "),
    ]
    with pytest.warns(UserWarning, match="skipped"):
        summary = build_examples(records, make_predict=_oracle_factory([]), progress=False)
    assert [e["id"] for e in summary.examples] == ["empty", "ok"]  # an empty target is a no-target line
    reasons = dict(summary.skipped)
    assert set(reasons) == {"wrong_size", "no_text"}
    assert "mask" in reasons["wrong_size"] and "text" in reasons["no_text"]
    with pytest.warns(UserWarning, match="skipped"):
        summary = build_examples(records, make_predict=_oracle_factory([]), progress=False, skip_empty=True)
    assert [e["id"] for e in summary.examples] == ["ok"]
    assert set(dict(summary.skipped)) == {"empty", "wrong_size", "no_text"}
    assert "empty" in dict(summary.skipped)["empty"]
    with pytest.raises(BadInputError, match="no usable sample"), pytest.warns(UserWarning):
        write_lora_data(records[1:2], tmp_path / "t.jsonl", make_predict=_oracle_factory([]), progress=False)
    with pytest.raises(BadInputError, match="no usable sample"), pytest.warns(UserWarning):
        write_lora_data(records[:1], tmp_path / "t.jsonl", make_predict=_oracle_factory([]), progress=False,
                        skip_empty=True)


# --------------------------------------------------------------------------- empty targets
def test_empty_targets_get_the_no_target_answer_without_sam(tmp_path):
    from rs_helpers.refer.clicks import NO_TARGET_REASON, no_target_answer, no_target_reason

    shape = (20, 20)
    records = [_record(tmp_path, "none1", "empty.png", np.zeros(shape, bool), text="the airport"),
               _record(tmp_path, "none2", "empty.png", np.zeros(shape, bool), task="reasoning", text="a dock?"),
               _record(tmp_path, "ok", "full.png", _rect(shape, (5, 9), (5, 9)))]
    calls: list = []
    summary = build_examples(records, n_clicks=4, make_predict=_oracle_factory(calls), progress=False)
    assert calls == [(20, 20, 3)]  # SAM embedded only the image with a target
    by_id = {e["id"]: e for e in summary.examples}
    for rid in ("none1", "none2"):
        line = by_id[rid]
        assert line["clicks"] == [] and line["answer"] == no_target_answer()
        assert parse_clicks(line["answer"]) == [] and no_target_reason(line["answer"]) == NO_TARGET_REASON
        assert line["iou"] is None and line["stop_reason"] == "no_target" and line["n_clicks"] == 4
    assert by_id["none2"]["task"] == "reasoning" and by_id["ok"]["clicks"]
    assert summary.no_target == 2 and summary.mean_iou == 1.0  # the mean is over samples with a target
    only_empty = build_examples(records[:1], make_predict=_oracle_factory([]), progress=False)
    assert only_empty.mean_iou is None and only_empty.no_target == 1


def test_every_line_records_the_rules(tmp_path):
    shape = (20, 20)
    records = [_record(tmp_path, "none", "a.png", np.zeros(shape, bool)),
               _record(tmp_path, "ok", "b.png", _rect(shape, (5, 9), (5, 9)))]
    default = build_examples(records, make_predict=_oracle_factory([]), progress=False)
    assert [(e["tie"], e["multimask"]) for e in default.examples] == [("negative", "auto")] * 2
    old = build_examples(records, make_predict=_oracle_factory([]), progress=False, tie="positive", multimask=True)
    assert [(e["tie"], e["multimask"]) for e in old.examples] == [("positive", "always")] * 2
    for bad in ({"tie": "ritm"}, {"multimask": "sometimes"}):
        with pytest.raises(BadInputError):
            build_examples(records, make_predict=_oracle_factory([]), progress=False, **bad)


def test_the_tie_rule_reaches_the_simulation(tmp_path):
    """A 7 x 7 target whose "SAM" answers the square shifted 1 px right: the missed and the wrongly
    added columns are equally deep, so the second click is negative (RITM) or positive (the old rule)."""
    shape = (16, 16)
    target = _rect(shape, (4, 10), (4, 10))
    records = [_record(tmp_path, "tie", "t.png", target)]
    shifted = lambda rgb: (lambda points, labels: _rect(shape, (4, 10), (5, 11)))  # noqa: E731
    ritm = build_examples(records, n_clicks=2, make_predict=shifted, progress=False)
    old = build_examples(records, n_clicks=2, make_predict=shifted, progress=False, tie="positive")
    assert [Click(**c) for c in ritm.examples[0]["clicks"]] == to_grid([Click(7, 7, 1), Click(11, 4, 0)], 16, 16)
    assert [Click(**c) for c in old.examples[0]["clicks"]] == to_grid([Click(7, 7, 1), Click(4, 4, 1)], 16, 16)


def test_the_multimask_rule_reaches_sam(tmp_path, monkeypatch):
    """Through sam_predictor_fn: the first click alone gets the best of three, later ones one mask."""
    import rs_helpers.sam.from_clicks as from_clicks

    class Fake:
        def __init__(self, shape):
            self.original_size, self.calls = shape, []

        def predict(self, point_coords, point_labels, multimask_output):
            self.calls.append(multimask_output)
            n = 3 if multimask_output else 1
            return np.zeros((n,) + self.original_size, bool), np.linspace(0.1, 0.3, n), None

    made = []
    monkeypatch.setattr(from_clicks, "make_predictor", lambda sam, rgb: made.append(Fake(rgb.shape[:2])) or made[-1])
    records = [_record(tmp_path, "r", "a.png", _rect((20, 20), (5, 9), (5, 9)))]
    build_examples(records, sam=object(), n_clicks=3, progress=False)
    build_examples(records, sam=object(), n_clicks=3, progress=False, multimask="always")
    assert [fake.calls for fake in made] == [[True, False, False], [True, True, True]]


def test_groups_keep_first_appearance_order(tmp_path):
    recs = [ReferringSample(id=str(i), image=tmp_path / name, text="t", task="referring", target_class="",
                            mask=tmp_path / "m.png", bbox_xyxy=(0, 0, 1, 1))
            for i, name in enumerate(["b.png", "a.png", "b.png", "c.png", "a.png"])]
    assert [[r.id for r in g] for g in group_by_image(recs)] == [["0", "2"], ["1", "4"], ["3"]]


# --------------------------------------------------------------------------- held-out split
def test_holdout_is_drawn_by_image_and_reproducible():
    lines = [{"image": f"/img{i % 7}.png", "id": str(i)} for i in range(20)]
    train, held = split_holdout(lines, 0.3, seed=0)
    assert len(train) + len(held) == 20
    assert not {e["image"] for e in train} & {e["image"] for e in held}
    assert len({e["image"] for e in held}) == 3  # ceil(0.3 * 7)
    assert split_holdout(lines, 0.3, seed=0) == (train, held)
    assert split_holdout(lines, 0.0) == (lines, [])
    # at least one image stays for training
    train, held = split_holdout(lines[:2], 0.9)
    assert len(train) == 1 and len(held) == 1
    with pytest.raises(BadInputError):
        split_holdout(lines, 1.0)


def test_written_files_are_what_the_trainer_reads(tmp_path):
    from rs_helpers.lora.train import read_train_file

    shape = (30, 30)
    records = [_record(tmp_path, f"r{i}", f"img{i}.png", _rect(shape, (i, i + 8), (3, 20))) for i in range(4)]
    out, held_out = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    summary = write_lora_data(records, out, n_clicks=3, holdout=0.25, holdout_out=held_out,
                              make_predict=_oracle_factory([]), progress=False)
    assert summary.files == [out, held_out]
    assert len(read_jsonl(out)) == 3 and len(read_jsonl(held_out)) == 1
    for path in (out, held_out):
        for record, line in zip(read_train_file(path), read_jsonl(path)):
            assert record.answer == line["answer"] and record.text == line["text"]
            assert record.clicks == parse_clicks(line["answer"]) and record.n_clicks == 3
    with pytest.raises(BadInputError, match="holdout-out"):
        write_lora_data(records, out, holdout=0.5, make_predict=_oracle_factory([]), progress=False)


# --------------------------------------------------------------------------- rs-seg lora-data
def test_lora_data_command_on_the_shipped_samples(tmp_path, capsys):
    from rs_helpers.cli import main

    out = tmp_path / "train.jsonl"
    code = main(["lora-data", "--dataset", "samples", "--limit", "2", "--n-clicks", "2", "--out", str(out),
                 "--profile", "tiny", "--device", "cpu"])
    assert code == 0
    lines = read_jsonl(out)
    assert len(lines) == 2
    for line in lines:
        assert set(line) >= {"image", "text", "task", "clicks", "answer", "tie", "multimask"}
        assert 1 <= len(line["clicks"]) <= 2 and line["clicks"][0]["label"] == 1
        assert parse_clicks(line["answer"]) == [Click(**c) for c in line["clicks"]]
        assert (line["tie"], line["multimask"]) == ("negative", "auto")
    printed = capsys.readouterr().out
    assert "2 examples from 1 images" in printed and "rules: tie negative, SAM multimask auto" in printed
    out2 = tmp_path / "train2.jsonl"
    assert main(["lora-data", "--dataset", "samples", "--limit", "1", "--n-clicks", "2", "--out", str(out2),
                 "--tie", "positive", "--single-mask", "--profile", "tiny", "--device", "cpu"]) == 0
    assert [(e["tie"], e["multimask"]) for e in read_jsonl(out2)] == [("positive", "never")]


@pytest.mark.parametrize("args, message", [
    (["--dataset", "samples", "--holdout", "0.2"], "--holdout-out"),
    (["--dataset", "samples", "--holdout-out", "x.jsonl"], "--holdout"),
    (["--dataset", "nope"], "unknown dataset"),
    (["--dataset", "rrsisd", "--root", "/no/such/folder"], "not a folder"),
    (["--dataset", "samples", "--limit", "0"], "limit"),
])
def test_lora_data_command_bad_input_exits_2(tmp_path, capsys, args, message):
    from rs_helpers.cli import main

    try:
        code = main(["lora-data", *args, "--out", str(tmp_path / "t.jsonl"), "--profile", "tiny"])
    except SystemExit as exc:  # argparse's own types (--limit 0) exit 2 themselves
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_select_records_finds_the_held_out_samples(tmp_path):
    from rs_helpers.lora.data import select_records

    recs = [ReferringSample(id=str(i), image=tmp_path / "a.png", text="t", task="referring", target_class="",
                            mask=tmp_path / "m.png", bbox_xyxy=(0, 0, 1, 1)) for i in range(4)]
    assert [r.id for r in select_records(recs, [{"id": "3"}, {"id": "1"}])] == ["1", "3"]


def test_lora_data_command_on_fake_benchmark_folders(tmp_path, capsys):
    import fake_layouts as fl

    from rs_helpers.cli import main

    rrsisd = fl.make_rrsisd(tmp_path)
    out = tmp_path / "rrsisd.jsonl"
    assert main(["lora-data", "--dataset", "rrsisd", "--root", str(rrsisd["root"]), "--n-clicks", "2",
                 "--out", str(out), "--profile", "tiny", "--device", "cpu"]) == 0
    (line,) = read_jsonl(out)  # the default split is train: one ref
    assert line["text"] == "the train vehicle" and line["task"] == "referring"
    # the polygon covers pixels 4..10: the first click is its centre (7, 7) on a 16 px image
    assert line["clicks"][0] == {"x": round(7 * 1000 / 15), "y": round(7 * 1000 / 15), "label": 1}

    earth = fl.make_earthreason(tmp_path)
    out = tmp_path / "earth.jsonl"
    assert main(["lora-data", "--dataset", "earthreason", "--root", str(earth["root"]), "--split", "test",
                 "--all-questions", "--n-clicks", "1", "--out", str(out), "--profile", "tiny"]) == 0
    lines = read_jsonl(out)
    assert [e["text"] for e in lines] == ["where could a boat dock (a)?", "which area suits a ferry?",
                                          "where could a boat dock (b)?", "which area suits a ferry?"]
    assert all(e["task"] == "reasoning" for e in lines)
    assert [len(e["clicks"]) for e in lines] == [1, 1, 0, 0]  # b's target is empty: the no-target answer
    assert parse_clicks(lines[2]["answer"]) == [] and lines[2]["id"] == "earthreason_test_b_q0"
    printed = capsys.readouterr().out
    assert "2 with an empty target, written with the no-target answer" in printed and "skipped" not in printed
    skip = tmp_path / "earth_skip.jsonl"
    assert main(["lora-data", "--dataset", "earthreason", "--root", str(earth["root"]), "--split", "test",
                 "--all-questions", "--n-clicks", "1", "--out", str(skip), "--profile", "tiny", "--skip-empty"]) == 0
    assert [e["text"] for e in read_jsonl(skip)] == ["where could a boat dock (a)?", "which area suits a ferry?"]
    assert "skipped earthreason_test_b_q0: empty target mask" in capsys.readouterr().out
    assert main(["lora-data", "--dataset", "rrsisd", "--root", str(rrsisd["root"]), "--all-questions",
                 "--out", str(out), "--profile", "tiny"]) == 2


# --------------------------------------------------------------------------- provenance
def test_lines_carry_their_provenance(tmp_path):
    from rs_helpers.lora.data import dataset_source, infer_source, load_records_with_source
    from rs_helpers.samples import load_referring

    assert infer_source(load_referring()[:3]) == {"dataset": "samples", "root": None, "split": "all"}
    shape = (30, 30)
    records = [_record(tmp_path, f"r{i}", f"img{i}.png", _rect(shape, (i, i + 8), (3, 20))) for i in range(2)]
    assert infer_source(records) == {"dataset": None, "root": None, "split": None}
    summary = build_examples(records, n_clicks=2, make_predict=_oracle_factory([]), progress=False)
    assert all(e["dataset"] is None and "root" in e and "split" in e for e in summary.examples)
    source = {"dataset": "refsegrs", "root": "/abs/RefSegRS", "split": "train"}
    summary = build_examples(records, n_clicks=2, make_predict=_oracle_factory([]), progress=False, source=source)
    assert all({k: e[k] for k in source} == source for e in summary.examples)

    import fake_layouts as fl

    fake = fl.make_refsegrs(tmp_path)
    recs, src = load_records_with_source("refsegrs", root=fake["root"], split="val")
    assert src == {"dataset": "refsegrs", "root": str(fake["root"].resolve()), "split": "val"} and len(recs) == 1
    assert dataset_source(type("D", (), {"name": "samples", "root": None, "split": "all"})())["root"] is None


def test_held_out_file_is_a_dataset_for_eval_refer(tmp_path, capsys):
    """lora-data writes the provenance; the trainer still reads the file; eval refer --dataset jsonl
    scores exactly the held-out samples (replayed answers, tiny SAM: numbers meaningless)."""
    from rs_helpers.cli import main
    from rs_helpers.lora.train import read_train_file

    train, held = tmp_path / "train.jsonl", tmp_path / "heldout.jsonl"
    assert main(["lora-data", "--dataset", "samples", "--limit", "4", "--n-clicks", "1", "--out", str(train),
                 "--holdout", "0.5", "--holdout-out", str(held), "--profile", "tiny", "--device", "cpu"]) == 0
    held_lines, train_lines = read_jsonl(held), read_jsonl(train)
    assert held_lines and train_lines
    for line in held_lines + train_lines:
        assert {k: line[k] for k in ("dataset", "root", "split")} == {"dataset": "samples", "root": None,
                                                                      "split": "all"}
        assert set(line) >= {"image", "text", "task", "n_clicks", "clicks", "answer", "id", "iou", "stop_reason"}
    assert [r.text for r in read_train_file(held)] == [line["text"] for line in held_lines]
    capsys.readouterr()

    out = tmp_path / "results.json"
    assert main(["eval", "refer", "--dataset", "jsonl", "--root", str(held), "--vlm", "replay",
                 "--profile", "tiny", "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "heldout.jsonl (samples all)" in printed and "gIoU" in printed
    data = json.loads(out.read_text())
    assert [s["id"] for s in data["samples"]] == [line["id"] for line in held_lines]
    assert data["reported_gIoU"] == {}
