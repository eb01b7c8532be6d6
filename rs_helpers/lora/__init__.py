"""LoRA tuning of Qwen-VL: training data from simulated clicks, and the training itself.

Short, stable imports for notebooks (``from rs_helpers.lora import write_lora_data``); the package's own
modules import each other by their real paths. Names load on first use, so importing the folder
costs nothing and creates no import cycle."""
from __future__ import annotations

import importlib

_EXPORTS = {
    "write_lora_data": "data",
    "read_jsonl": "data",
    "select_records": "data",
    "LoraSettings": "train",
    "train_lora": "train",
    "read_train_file": "train",
    "answer_metrics": "train",
    "count_parameters": "train",
    "load_base": "train",
    "lora_config": "train",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
