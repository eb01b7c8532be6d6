"""The training-file reader and empty-target lines: ``"clicks": []`` with the no-target answer is a
training example (a tuned model learns to say "nothing here"); other click-less lines are not."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rs_helpers.errors import BadInputError
from rs_helpers.lora.train import answer_metrics, read_train_file
from rs_helpers.refer.clicks import Click, format_clicks, no_target_answer
from rs_helpers.refer.vlm import VLMAnswer
from lora_examples import write_examples

WITH_EMPTY = [
    ("the red field", (200, 30, 30), [Click(100, 100, 1)]),
    ("an airport", (30, 200, 30), []),  # nothing to segment: the no-target answer
]


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_no_target_lines_are_read_as_examples_without_clicks(tmp_path):
    path = write_examples(tmp_path, WITH_EMPTY)
    assert _lines(path)[1]["answer"] == no_target_answer() and _lines(path)[1]["clicks"] == []
    first, empty = read_train_file(path)
    assert first.clicks == [Click(100, 100, 1)]
    assert empty.clicks == [] and empty.answer == no_target_answer() and empty.text == "an airport"
    assert "If nothing in the image matches" in empty.prompt
    # without a "clicks" field the answer alone says it
    line = {k: v for k, v in _lines(path)[1].items() if k != "clicks"}
    (tmp_path / "no_field.jsonl").write_text(json.dumps(line) + "\n")
    assert read_train_file(tmp_path / "no_field.jsonl")[0].clicks == []


def test_lines_written_by_lora_data_for_empty_targets_are_read(tmp_path):
    from rs_helpers.lora.data import build_examples, write_jsonl
    from rs_helpers.samples import ReferringSample
    from PIL import Image

    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "m.png")
    record = ReferringSample(id="e", image=tmp_path / "a.png", text="the ferry", task="reasoning",
                             target_class="", mask=tmp_path / "m.png", bbox_xyxy=(0, 0, 1, 1))
    summary = build_examples([record], make_predict=lambda rgb: pytest.fail("SAM for an empty target"),
                             progress=False)
    write_jsonl(tmp_path / "t.jsonl", summary.examples)
    (rec,) = read_train_file(tmp_path / "t.jsonl")
    assert rec.clicks == [] and rec.task == "reasoning" and rec.answer == no_target_answer()


@pytest.mark.parametrize("change, words", [
    ({"answer": '{"clicks": []}'}, "needs the no-target answer"),                    # the old, unusable form
    ({"answer": format_clicks([Click(5, 5, 1)])}, "disagree"),                      # clicks [] but an answer with one
    ({"clicks": [{"x": 5, "y": 5, "label": 1}]}, "disagree"),                       # a click but the no-target answer
    ({"answer": '{"clicks": [], "reason": ""}'}, "cannot be parsed"),               # no reason
])
def test_other_click_less_lines_are_problems(tmp_path, change, words):
    path = write_examples(tmp_path, WITH_EMPTY)
    lines = _lines(path)
    lines[1].update(change)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(BadInputError) as info:
        read_train_file(path)
    message = str(info.value)
    assert "1 problem(s)" in message and "line 2: " in message and words in message


class Answers:
    name = "scripted"

    def __init__(self, by_text):
        self.by_text = by_text

    def ask(self, image_rgb, prompt):
        text = next(t for t in self.by_text if f'"{t}"' in prompt)
        return VLMAnswer(self.by_text[text], {})


def test_answer_metrics_handle_no_target_answers(tmp_path):
    records = read_train_file(write_examples(tmp_path, WITH_EMPTY))
    exact = answer_metrics(Answers({"the red field": format_clicks([Click(103, 104, 1)]),
                                    "an airport": no_target_answer()}), records, progress=False)
    assert exact["parse_rate"] == 1.0 and exact["exact_rate"] == 0.5
    assert exact["mean_first_click_distance"] == 5.0  # only the pair that both have clicks
    crossed = answer_metrics(Answers({"the red field": no_target_answer(),
                                      "an airport": format_clicks([Click(1, 1, 1)])}), records, progress=False)
    assert crossed["parse_rate"] == 1.0 and crossed["exact_rate"] == 0.0
    assert crossed["mean_first_click_distance"] is None


def test_a_no_target_example_trains_on_its_answer_tokens(tmp_path):
    from rs_helpers.lora.train import ChatDataset, LoraSettings
    from rs_helpers.models.qwen import load_qwen
    from rs_helpers.refer.vlm_qwen import IGNORE_INDEX

    records = read_train_file(write_examples(tmp_path, WITH_EMPTY))
    qwen = load_qwen(profile="tiny", device="cpu")
    item = ChatDataset(records[1:], qwen.processor, LoraSettings(profile="tiny"))[0]
    labelled = item["labels"][item["labels"] != IGNORE_INDEX]
    assert no_target_answer() in qwen.processor.tokenizer.decode(labelled)
