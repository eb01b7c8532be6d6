"""The referring evaluation: per-sample records, failures as IoU 0, the table, the JSON, the CLI."""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

import rs_helpers.evaluation.refer_eval as refer_eval
from rs_helpers.cli import main
from rs_helpers.geo.rasters import RasterImage
from rs_helpers.evaluation.refer_eval import evaluate_refer
from rs_helpers.refer.vlm import VLMAnswer
from rs_helpers.refer.vlm_openai import VLMRequestError


@dataclass
class FakeSample:
    id: str
    text: str
    task: str
    image: str
    target: np.ndarray

    def load(self):
        return RasterImage(rgb=np.zeros(self.target.shape + (3,), np.uint8)), self.target


class BoxPredictor:
    """An oracle SAM: the mask is the 20 x 20 box centred on the first positive click."""

    def __init__(self, size):
        self.original_size = size

    def predict(self, point_coords, point_labels, multimask_output):
        x, y = point_coords[list(point_labels).index(1)].astype(int)
        mask = np.zeros(self.original_size, bool)
        mask[max(0, y - 10): y + 10, max(0, x - 10): x + 10] = True
        return mask[None], np.array([0.99]), None


class ByText:
    """Answers chosen by the query text; "boom" raises a request error."""

    name = "by-text"

    def __init__(self, answers):
        self.answers = answers

    def ask(self, image_rgb, prompt):
        for text, answer in self.answers.items():
            if f'"{text}"' in prompt:
                if answer == "boom":
                    raise VLMRequestError("server down")
                return VLMAnswer(answer, {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
        raise AssertionError(prompt)


@pytest.fixture()
def embeddings(monkeypatch):
    made = []

    def fake_make_predictor(sam, rgb):
        made.append(rgb.shape)
        return BoxPredictor(rgb.shape[:2])

    monkeypatch.setattr(refer_eval, "make_predictor", fake_make_predictor)
    return made


def target_box(y0, x0, size=20, shape=(100, 100)):
    m = np.zeros(shape, bool)
    m[y0: y0 + size, x0: x0 + size] = True
    return m


def test_scores_failures_and_records(embeddings):
    # 100 x 100 images; grid 505 -> pixel 50. The box around (50, 50) is rows/cols 40..59.
    samples = [
        FakeSample("hit", "a", "referring", "img1.png", target_box(40, 40)),  # IoU 1
        FakeSample("half", "b", "reasoning", "img1.png", target_box(40, 50)),  # overlap 200 / union 600
        FakeSample("nothing", "c", "referring", "img2.png", target_box(0, 0)),  # no clicks: IoU 0
    ]
    backend = ByText({"a": '{"clicks": [{"x": 505, "y": 505, "label": 1}]}',
                      "b": '```json\n{"clicks": [{"x": 505, "y": 505, "label": 1}]}\n```',
                      "c": "I see nothing like that."})
    run = evaluate_refer(samples, backend, sam=None, progress=False, dataset="fake", split="test",
                         reported={"paper: GPT-5 zero-shot": {"test": 24.9}, "other": {"val": 1.0}})
    s = run.summary()
    assert s["n"] == 3 and s["failures"] == 1
    assert [r["iou"] for r in run.records] == pytest.approx([1.0, 1 / 3, 0.0])
    assert s["gIoU"] == pytest.approx((1 + 1 / 3) / 3)
    assert s["cIoU"] == pytest.approx((400 + 200) / (400 + 600 + 400))
    assert embeddings == [(100, 100, 3), (100, 100, 3)]  # img1 embedded once for two queries
    assert run.failures == [{"id": "nothing", "error": run.records[2]["error"], "answer": "I see nothing like that."}]
    assert run.records[0]["clicks"] == [{"x": 505, "y": 505, "label": 1}]
    assert run.records[0]["pixel_clicks"] == [{"x": 50, "y": 50, "label": 1}]
    assert run.usage.as_dict() == {"calls": 3, "prompt_tokens": 30, "completion_tokens": 15, "total_tokens": 45}
    table = run.table()
    print(table)
    assert "\ngIoU    44.4      24.9\n" in table and "other" not in table and "1 without usable clicks" in table
    assert "TINY PROFILE" in table  # the tests run under the tiny profile


def test_results_json(embeddings, tmp_path):
    samples = [FakeSample("x", "a", "referring", "i.png", target_box(40, 40))]
    run = evaluate_refer(samples, ByText({"a": "[505, 505]"}), sam=None, progress=False)
    data = json.loads(run.save(tmp_path / "r.json").read_text())
    assert data["summary"]["gIoU"] == 1.0 and data["samples"][0]["id"] == "x" and data["failures"] == []


def test_limit_and_request_errors(embeddings):
    samples = [FakeSample(str(i), "a", "referring", "i.png", target_box(40, 40)) for i in range(10)]
    run = evaluate_refer(samples, ByText({"a": "(505, 505)"}), sam=None, progress=False, limit=2)
    assert run.scores.count == 2
    failing = [FakeSample("ok", "a", "referring", "i.png", target_box(40, 40)),
               FakeSample("down", "b", "referring", "i.png", target_box(40, 40))]
    run = evaluate_refer(failing, ByText({"a": "(505, 505)", "b": "boom"}), sam=None, progress=False)
    assert run.failures[0]["id"] == "down" and run.failures[0]["answer"] is None
    with pytest.raises(VLMRequestError, match="in a row"):
        evaluate_refer([failing[1]] * 6, ByText({"b": "boom"}), sam=None, progress=False)


def test_cli_eval_refer_on_the_samples_with_replayed_answers(tmp_path, capsys):
    out = tmp_path / "results.json"
    code = main(["eval", "refer", "--dataset", "samples", "--vlm", "replay", "--limit", "2",
                 "--device", "cpu", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "NOT model output" in printed and "gIoU" in printed and "meaningless" in printed
    data = json.loads(out.read_text())
    assert data["summary"]["n"] == 2 and len(data["samples"]) == 2 and data["vlm"].startswith("replay:")


def test_cli_eval_refer_bad_dataset(capsys):
    assert main(["eval", "refer", "--dataset", "nope", "--vlm", "replay"]) == 2
    assert main(["eval", "refer", "--dataset", "rrsisd", "--root", "/nonexistent", "--vlm", "replay"]) == 2


def test_compare_table(embeddings):
    samples = [FakeSample("x", "a", "referring", "i.png", target_box(40, 40))]
    good = evaluate_refer(samples, ByText({"a": "[505, 505]"}), sam=None, progress=False)
    bad = evaluate_refer(samples, ByText({"a": "no idea"}), sam=None, progress=False)
    bad.vlm = "other"
    table = refer_eval.compare_table([good, bad])
    assert "metric    by-text  other" in table and "\ngIoU      100.0    0.0\n" in table


def test_save_is_atomic(embeddings, tmp_path, monkeypatch):
    """A write that fails half-way leaves the earlier results file as it was, and no temporary file."""
    import pathlib

    out = tmp_path / "r.json"
    out.write_text("earlier results\n")
    run = evaluate_refer([FakeSample("x", "a", "referring", "i.png", target_box(40, 40))],
                         ByText({"a": "[505, 505]"}), sam=None, progress=False)
    real_write_text = pathlib.Path.write_text

    def disk_full(self, text, *args, **kwargs):
        real_write_text(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_text", disk_full)
    with pytest.raises(OSError):
        run.save(out)
    monkeypatch.undo()
    assert out.read_text() == "earlier results\n" and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
    assert json.loads(run.save(out).read_text())["samples"][0]["id"] == "x"


def test_a_failed_sample_does_not_stop_the_run(embeddings):
    samples = [FakeSample("down", "b", "referring", "i.png", target_box(40, 40)),
               FakeSample("ok", "a", "referring", "i.png", target_box(40, 40))]
    run = evaluate_refer(samples, ByText({"a": "(505, 505)", "b": "boom"}), sam=None, progress=False)
    assert [r["iou"] for r in run.records] == [0.0, 1.0] and run.records[0]["error"] == "server down"


def test_the_stop_after_failures_in_a_row_keeps_what_was_scored(embeddings):
    failing = FakeSample("down", "b", "referring", "i.png", target_box(40, 40))
    with pytest.raises(VLMRequestError, match="in a row") as info:
        evaluate_refer([FakeSample("ok", "a", "referring", "i.png", target_box(40, 40))] + [failing] * 6,
                       ByText({"a": "(505, 505)", "b": "boom"}), sam=None, progress=False)
    assert len(info.value.evaluation.records) == 1 + refer_eval.MAX_CONSECUTIVE_REQUEST_ERRORS


def test_cli_keeps_and_prints_the_scored_samples_when_the_service_goes_down(tmp_path, capsys, monkeypatch):
    """The first samples answer, then every request fails: exit 1, the partial table is printed and
    the results file holds the samples scored before the stop (paid calls are never thrown away)."""
    import rs_helpers.refer.backends as backends

    answers = iter([VLMAnswer(text='{"clicks": [[500, 500, 1]]}', usage={})] * 2)

    class FlakyBackend:
        name, label = "flaky", ""

        def ask(self, image_rgb, prompt):
            try:
                return next(answers)
            except StopIteration:
                raise VLMRequestError("server down") from None

    monkeypatch.setattr(backends, "make_backend", lambda *a, **k: FlakyBackend())
    out = tmp_path / "results.json"
    code = main(["eval", "refer", "--dataset", "samples", "--vlm", "replay", "--profile", "tiny",
                 "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1 and "requests in a row failed" in captured.err and "Traceback" not in captured.err
    saved = json.loads(out.read_text())
    n = refer_eval.MAX_CONSECUTIVE_REQUEST_ERRORS
    assert len(saved["samples"]) == 2 + n
    assert [s["error"] is None for s in saved["samples"]] == [True, True] + [False] * n
