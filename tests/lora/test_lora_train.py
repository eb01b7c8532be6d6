"""LoRA training of the tiny Qwen3-VL on a handful of synthetic examples (tiny = meaningless:
these tests only prove that labels, training, checkpoints and the saved adapter work)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from rs_helpers.refer.clicks import parse_clicks, read_clicks, to_pixels
from rs_helpers.errors import BadInputError
from rs_helpers.lora.train import (
    CHECKPOINTS,
    TARGET_MODULES,
    ChatDataset,
    LoraSettings,
    collate,
    lora_config,
    read_train_file,
    train_lora,
)
from rs_helpers.models.qwen import QwenVL, load_qwen
from rs_helpers.refer.vlm_qwen import IGNORE_INDEX, SETTINGS_FILE, QwenBackend
from lora_examples import fast_settings, write_examples



pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: faster on one thread


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    return write_examples(tmp_path_factory.mktemp("lora_data"))


class StopWhenExact:
    """Stop training once teacher-forced argmax predicts every answer token (checked every few
    steps), i.e. when greedy decoding should reproduce every target."""

    def __init__(self, batch, every=10):
        from transformers import TrainerCallback

        self.batch, self.every = batch, every
        self.callback = type("StopWhenExactCallback", (TrainerCallback,), {"on_step_end": self.on_step_end})()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every:
            return control
        model.eval()
        with torch.no_grad():
            logits = model(**self.batch).logits
        model.train()
        predicted, target = logits[:, :-1].argmax(-1), self.batch["labels"][:, 1:]
        answer = target != IGNORE_INDEX
        if bool((predicted[answer] == target[answer]).all()):
            control.should_training_stop = True
        return control


def test_prompt_tokens_carry_no_loss(train_file):
    qwen = load_qwen(profile="tiny", device="cpu")
    records = read_train_file(train_file)
    dataset = ChatDataset(records, qwen.processor, LoraSettings())
    tok = qwen.processor.tokenizer
    for record, item in zip(records, dataset):
        labels, ids = item["labels"], item["input_ids"]
        answer = labels != IGNORE_INDEX
        n = int(answer.int().argmax())  # first answer token
        assert not answer[:n].any() and answer[n:].all()  # all prompt tokens -100, all answer tokens not
        assert tok.decode(ids[answer]) == record.answer + "<|im_end|>"
        assert tok.decode(ids[:n]).endswith(record.prompt + "<|im_end|>\n<|im_start|>assistant\n")
        assert int((ids[:n] == qwen.model.config.image_token_id).sum()) > 0
    batch = collate([dataset[0], dataset[1]], tok.pad_token_id)
    longest = max(len(dataset[0]["input_ids"]), len(dataset[1]["input_ids"]))
    assert batch["input_ids"].shape == batch["labels"].shape == (2, longest)
    short = 0 if len(dataset[0]["input_ids"]) < longest else 1
    pad = batch["attention_mask"][short] == 0
    assert pad.any() and (batch["labels"][short][pad] == IGNORE_INDEX).all()
    assert batch["image_grid_thw"].shape == (2, 3)


def test_lora_targets_only_language_model_projections():
    from peft import get_peft_model

    qwen = load_qwen(profile="tiny", device="cpu")
    model = get_peft_model(qwen.model, lora_config(LoraSettings(rank=4, alpha=8)))
    adapted = {name.rsplit(".lora_A", 1)[0] for name, _ in model.named_modules() if name.endswith(".lora_A")}
    assert adapted and all("language_model" in name and "visual" not in name for name in adapted)
    kinds = {name.rsplit(".", 1)[1] for name in adapted}
    assert kinds == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    # Qwen2.5-VL's vision MLP is also called gate/up/down_proj: the pattern must skip it
    import re

    assert not re.fullmatch(TARGET_MODULES, "model.visual.blocks.0.mlp.gate_proj")
    assert re.fullmatch(TARGET_MODULES, "model.language_model.layers.3.mlp.gate_proj")


def test_training_reproduces_targets_and_adapter_reloads(train_file, tmp_path):
    qwen = load_qwen(profile="tiny", device="cpu")
    settings = fast_settings()
    records = read_train_file(train_file)
    dataset = ChatDataset(records, qwen.processor, settings)
    batch = collate([dataset[i] for i in range(len(dataset))], qwen.processor.tokenizer.pad_token_id)
    out = tmp_path / "adapter"
    result = train_lora(train_file, out, settings, qwen=qwen, progress=False,
                        callbacks=[StopWhenExact(batch).callback])
    assert result.global_step < settings.max_steps, "did not learn the targets"
    losses = result.losses
    assert len(losses) >= 3 and losses[-1] < losses[0] / 10
    adapted = [m for name, m in result.model.named_modules() if hasattr(m, "lora_A") and "lora_" not in name]
    assert result.trainable_params == sum(16 * (m.in_features + m.out_features) for m in adapted)

    trained = QwenBackend(qwen=QwenVL(result.model, qwen.processor, qwen.model_id), max_new_tokens=80)
    answers = [trained.ask(np.asarray(Image.open(r.image).convert("RGB")), r.prompt).text for r in records]
    assert answers == [r.answer for r in records]
    assert [parse_clicks(a) for a in answers] == [r.clicks for r in records]

    # only the adapter and the settings are saved
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert not (out / "model.safetensors").exists()
    saved = json.loads((out / SETTINGS_FILE).read_text())
    assert saved["rank"] == 16 and saved["global_step"] == result.global_step
    assert saved["trainable_params"] == result.trainable_params

    # (d) the adapter reloads through load_qwen(adapter=...) and gives the same answers
    reloaded = QwenBackend(adapter=out, profile="tiny", device="cpu", max_new_tokens=80)
    again = [reloaded.ask(np.asarray(Image.open(r.image).convert("RGB")), r.prompt).text for r in records]
    assert again == answers

    # ... and through `rs-seg refer` (tiny SAM), whose clicks file holds the target clicks
    from rs_helpers.cli import main

    record = records[1]
    clicks_out = tmp_path / "clicks.json"
    code = main(["refer", str(record.image), "--text", record.text, "--vlm", "qwen:Qwen/Qwen3-VL-2B-Instruct",
                 "--adapter", str(out), "--out", str(tmp_path / "mask.png"), "--clicks-out", str(clicks_out),
                 "--profile", "tiny", "--device", "cpu", "--sam", "vit_b"])
    assert code == 0
    assert read_clicks(clicks_out) == to_pixels(record.clicks, 64, 64)


def test_resume_continues_the_step_count(train_file, tmp_path):
    from transformers import TrainerCallback

    class CountSteps(TrainerCallback):
        steps: list = []

        def on_step_end(self, args, state, control, **kwargs):
            self.steps.append(state.global_step)

    out = tmp_path / "adapter"
    settings = fast_settings(batch_size=1, grad_accum=2, max_steps=2, save_steps=2, logging_steps=1)
    with pytest.raises(BadInputError, match="no checkpoint"):
        train_lora(train_file, out, settings, resume=True, progress=False)
    first = train_lora(train_file, out, settings, progress=False)
    assert first.global_step == 2 and (out / CHECKPOINTS / "checkpoint-2").is_dir()
    with pytest.raises(BadInputError, match="--resume"):  # never silently start over
        train_lora(train_file, out, settings, progress=False)
    counter = CountSteps()
    settings.max_steps = 4
    second = train_lora(train_file, out, settings, resume=True, progress=False, callbacks=[counter])
    assert counter.steps == [3, 4]  # only the remaining steps ran
    assert second.global_step == 4
    assert [e["step"] for e in second.log if "loss" in e] == [1, 2, 3, 4]
    assert json.loads((out / SETTINGS_FILE).read_text())["global_step"] == 4


def test_merge_saves_a_loadable_model(train_file, tmp_path):
    out = tmp_path / "adapter"
    result = train_lora(train_file, out, fast_settings(max_steps=1, batch_size=1), merge=True, progress=False)
    assert result.merged_dir == out / "merged"
    merged = load_qwen(str(result.merged_dir), profile="full", device="cpu")
    assert not any("lora" in name for name, _ in merged.model.named_parameters())


def test_eval_file_scores_generated_answers(train_file, tmp_path):
    result = train_lora(train_file, tmp_path / "adapter", fast_settings(max_steps=1),
                        eval_file=train_file, progress=False)
    scores = result.eval
    assert scores["n"] == 3 and 0 <= scores["parse_rate"] <= 1 and 0 <= scores["exact_rate"] <= 1
    assert len(scores["answers"]) == 3
    assert json.loads((tmp_path / "adapter" / "rs_eval.json").read_text())["n"] == 3


def test_bad_training_file_reports_every_bad_line(tmp_path):
    good = write_examples(tmp_path)
    lines = good.read_text().splitlines()
    record = json.loads(lines[0])
    bad = [
        lines[0],                                                   # 1 fine
        json.dumps({**record, "image": "missing.png"}),             # 2 missing image
        json.dumps({**record, "text": "  "}),                       # 3 empty text
        json.dumps({**record, "answer": "somewhere in the middle"}),  # 4 unparsable answer
        json.dumps({**record, "clicks": [{"x": 1, "y": 2, "label": 1}]}),  # 5 disagrees with clicks
        "{not json",                                                # 6
        "",                                                         # blank lines are skipped
        json.dumps({**record, "task": "poetry"}),                   # 8 unknown task
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(bad) + "\n")
    with pytest.raises(BadInputError) as info:
        train_lora(path, tmp_path / "never", fast_settings(), progress=False)
    message = str(info.value)
    assert "6 problem(s)" in message and "line 1:" not in message
    for number, words in [(2, "not found"), (3, "empty"), (4, "cannot be parsed"), (5, "disagree"),
                          (6, "not JSON"), (8, "unknown task")]:
        assert f"line {number}: " in message and words in message.split(f"line {number}: ")[1].split("\n")[0]
    assert not (tmp_path / "never").exists()  # nothing trained, nothing written
    with pytest.raises(BadInputError, match="no such training file"):
        read_train_file(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(BadInputError, match="no training examples"):
        read_train_file(tmp_path / "empty.jsonl")


def test_cli_trains_and_prints(train_file, tmp_path, capsys):
    from rs_helpers.cli import main

    out = tmp_path / "adapter"
    code = main(["train-lora", "--train", str(train_file), "--out", str(out), "--rank", "4", "--alpha", "8",
                 "--max-steps", "2", "--batch-size", "1", "--grad-accum", "1", "--logging-steps", "1",
                 "--profile", "tiny", "--device", "cpu", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "2 steps" in printed and "loss: first" in printed and str(out) in printed
    saved = json.loads((out / SETTINGS_FILE).read_text())
    assert saved["rank"] == 4 and saved["alpha"] == 8 and saved["profile"] == "tiny"
    assert main(["train-lora", "--train", str(tmp_path / "nope.jsonl"), "--out", str(out),
                 "--profile", "tiny"]) == 2
