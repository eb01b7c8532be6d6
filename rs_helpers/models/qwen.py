"""Qwen-VL through transformers, with real weights or as a tiny random stand-in (:func:`load_qwen`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rs_helpers.device import pick_device, pick_dtype
from rs_helpers.errors import BadInputError, WeightsUnavailableError
from rs_helpers.models.checkpoints import host_reachable, offline_message
from rs_helpers.profile import TINY_SEED, announce_tiny, get_profile, random_weights

DEFAULT_QWEN = "Qwen/Qwen3-VL-2B-Instruct"


@dataclass
class QwenVL:
    """A Qwen-VL model and its processor (tokenizer, image processor, chat template)."""

    model: Any
    processor: Any
    model_id: str
    adapter: str | None = None


def load_qwen(model_id: str = DEFAULT_QWEN, profile: str | None = None,
              device: str | torch.device | None = None, dtype: torch.dtype | None = None,
              adapter: str | Path | None = None) -> QwenVL:
    """Qwen3-VL (or Qwen2.5-VL) from a hub id or a local folder, with its processor.

    Tiny profile: a 2-layer Qwen3-VL built from ``Qwen3VLConfig`` with a small byte-level
    tokenizer carrying the real special tokens and chat template, unless ``model_id`` is a
    local folder (a tiny model a test saved loads through the same path as a real one).
    ``adapter``: a LoRA adapter folder made by ``rs-seg train-lora``.
    """
    device = pick_device(device)
    local = Path(model_id).expanduser()
    if get_profile(profile) == "tiny" and not local.is_dir():
        announce_tiny(f"Qwen-VL (asked for {model_id})")
        from rs_helpers.models.tiny_qwen import build_tiny_qwen

        model, processor = build_tiny_qwen(seed=TINY_SEED)
        model_id = "tiny-qwen3-vl"
        if dtype is not None:  # like a real load in bf16: exercises the same half-precision paths
            model = model.to(dtype)
    elif not local.is_dir() and random_weights(profile):
        from rs_helpers.models.random_weights import random_qwen

        model, processor = random_qwen(model_id, dtype=dtype or pick_dtype(device))
    else:
        if not local.is_dir() and not _qwen_cached(model_id) and not host_reachable("huggingface.co"):
            raise WeightsUnavailableError(_qwen_offline(model_id, OSError("offline")))
        model, processor = _from_pretrained(str(local) if local.is_dir() else model_id, device, dtype)
    if adapter is not None:
        from peft import PeftModel

        adapter_dir = Path(adapter).expanduser()
        if not (adapter_dir / "adapter_config.json").is_file():
            raise BadInputError(f"{adapter_dir} is not a LoRA adapter folder (no adapter_config.json)")
        model = PeftModel.from_pretrained(model, str(adapter_dir))
    model = model.to(device).eval()
    return QwenVL(model=model, processor=processor, model_id=model_id,
                  adapter=str(adapter) if adapter else None)


def _from_pretrained(source: str, device: torch.device, dtype: torch.dtype | None):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if dtype is None:
        dtype = pick_dtype(device)
    if Path(source).is_dir():
        config_file = Path(source) / "config.json"
        if not config_file.is_file():
            raise BadInputError(f"{source} is not a saved model folder (no config.json)")
    try:
        processor = AutoProcessor.from_pretrained(source)
        model = AutoModelForImageTextToText.from_pretrained(source, dtype=dtype)
    except OSError as exc:
        if Path(source).is_dir():
            raise BadInputError(f"cannot load a model from {source}: {str(exc).splitlines()[0]}") from None
        raise WeightsUnavailableError(_qwen_offline(source, exc)) from None
    return model, processor


def _qwen_cached(model_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(model_id, "config.json"), str)


def _qwen_offline(model_id: str, exc: Exception) -> str:
    from huggingface_hub.constants import HF_HUB_CACHE

    return offline_message(f"Qwen-VL weights {model_id}", f"https://huggingface.co/{model_id}",
                           Path(HF_HUB_CACHE), reason=str(exc)[:80], cache_env="HF_HOME") + (
        " A downloaded model folder can also be passed instead of the hub id.")
