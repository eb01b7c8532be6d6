"""LoRA tuning of Qwen-VL: training data from simulated clicks, and the training itself.

Short, stable imports for notebooks (``from rs_helpers.lora import write_lora_data``); the package's own
modules import each other by their real paths. Names load on first use
(:func:`rs_helpers.lazy_exports`)."""
from __future__ import annotations

from rs_helpers import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
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
})
