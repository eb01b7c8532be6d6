"""Shared by the LoRA and device tests: a few synthetic click targets, their training file, and
LoRA settings small enough to train the tiny Qwen3-VL in seconds."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from rs_helpers.lora.train import LoraSettings
from rs_helpers.refer.clicks import Click, format_clicks

TARGETS = [
    ("the red field", (200, 30, 30), [Click(100, 100, 1)]),
    ("the green park", (30, 200, 30), [Click(500, 500, 1), Click(600, 600, 0)]),
    ("the blue lake", (30, 30, 200), [Click(900, 900, 1)]),
]


def write_examples(folder, targets=TARGETS):
    """Small synthetic images and a training file with image paths relative to it."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (text, color, clicks) in enumerate(targets):
        image = np.zeros((64, 64, 3), np.uint8)
        image[:] = color
        image[10:30, 20:50] = 255 - np.array(color)
        Image.fromarray(image).save(folder / f"im{i}.png")
        lines.append({"image": f"im{i}.png", "text": text, "task": "referring",
                      "clicks": [{"x": c.x, "y": c.y, "label": c.label} for c in clicks],
                      "answer": format_clicks(clicks)})
    path = folder / "train.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def fast_settings(**overrides) -> LoraSettings:
    values = dict(rank=16, alpha=32, dropout=0.0, lr=1e-2, lr_scheduler="constant", warmup_ratio=0.0,
                  batch_size=3, grad_accum=1, max_steps=400, max_grad_norm=0.0, logging_steps=5,
                  save_steps=1000, profile="tiny", device="cpu", seed=0)
    values.update(overrides)
    return LoraSettings(**values)
