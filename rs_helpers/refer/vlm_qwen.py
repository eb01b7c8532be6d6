"""Qwen-VL run locally (Qwen3-VL by default, Qwen2.5-VL too) behind the VLM interface.

:func:`build_chat` is the one place that turns (image, prompt[, answer]) into model inputs. The
backend calls it without an answer (the prompt ends with the assistant header and the model
writes from there); LoRA training calls it with the answer, which is appended as the tokens the
model should write next. So a tuned model sees in training exactly what it sees at inference.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rs_helpers.errors import BadInputError
from rs_helpers.refer.prompts import SYSTEM_PROMPT
from rs_helpers.refer.vlm import VLMAnswer

IGNORE_INDEX = -100  # label of tokens that carry no loss (the prompt)
SETTINGS_FILE = "rs_train_settings.json"  # written next to a LoRA adapter by lora_train
_DEFAULT = object()


def to_pil(image: Any, max_pixels: int | None = None):
    """An RGB PIL image from an H x W x 3 uint8 array (or a PIL image), shrunk (aspect kept) to
    at most ``max_pixels`` pixels if given. Clicks are on a relative grid, so shrinking the image
    does not change what the answer means, only how many image tokens it costs."""
    from PIL import Image

    if isinstance(image, Image.Image):
        pil = image.convert("RGB")
    else:
        array = np.asarray(image)
        if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] < 2 or array.shape[1] < 2:
            raise BadInputError(f"want an H x W x 3 RGB image, got an array of shape {array.shape}")
        if array.dtype != np.uint8:
            raise BadInputError(f"want a uint8 RGB image, got {array.dtype} (use images.read_image)")
        pil = Image.fromarray(array, "RGB")
    if max_pixels and pil.width * pil.height > max_pixels:
        scale = (max_pixels / (pil.width * pil.height)) ** 0.5
        size = (max(2, int(pil.width * scale)), max(2, int(pil.height * scale)))
        pil = pil.resize(size, Image.BICUBIC)
    return pil


def build_messages(image, prompt: str, system_prompt: str | None = SYSTEM_PROMPT) -> list[dict]:
    """The chat: an optional system message, then one user turn holding the image and the prompt."""
    messages = []
    if system_prompt:
        messages.append({"role": "system", "content": [{"type": "text", "text": system_prompt}]})
    messages.append({"role": "user", "content": [{"type": "image", "image": image},
                                                 {"type": "text", "text": prompt}]})
    return messages


def build_chat(processor, image, prompt: str, answer: str | None = None, *,
               system_prompt: str | None = SYSTEM_PROMPT, max_pixels: int | None = None) -> dict:
    """Model inputs (batch of one, tensors) for one image and prompt, through the processor's chat
    template with the generation header ``<|im_start|>assistant\\n`` at the end.

    With ``answer``: the answer's tokens and the end-of-turn token are appended, and ``labels``
    is added: ``-100`` on every prompt token (no loss), the token ids on the answer and end token.
    The dict also holds ``prompt_length`` (an int) so callers can split prompt from answer.
    """
    if not str(prompt).strip():
        raise BadInputError("the prompt is empty")
    messages = build_messages(to_pil(image, max_pixels), prompt, system_prompt)
    inputs = processor.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                           return_dict=True, return_tensors="pt")
    inputs = dict(inputs)
    prompt_length = int(inputs["input_ids"].shape[1])
    inputs["prompt_length"] = prompt_length
    if answer is None:
        return inputs
    tokenizer = processor.tokenizer
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [end]
    extra = torch.tensor([answer_ids], dtype=inputs["input_ids"].dtype)
    inputs["input_ids"] = torch.cat([inputs["input_ids"], extra], dim=1)
    inputs["attention_mask"] = torch.cat([inputs["attention_mask"], torch.ones_like(extra)], dim=1)
    for key in ("mm_token_type_ids", "token_type_ids"):  # text tokens are type 0
        if key in inputs:
            inputs[key] = torch.cat([inputs[key], torch.zeros_like(extra)], dim=1)
    labels = torch.full_like(inputs["input_ids"], IGNORE_INDEX)
    labels[:, prompt_length:] = extra
    inputs["labels"] = labels
    return inputs


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def model_dtype(model) -> torch.dtype:
    return next(p for p in model.parameters() if p.is_floating_point()).dtype


def generate(model, processor, inputs: dict, max_new_tokens: int = 256) -> tuple[str, dict]:
    """Greedy generation from :func:`build_chat` inputs; returns the decoded answer and usage
    (with ``finish_reason``: "length" when the answer hit ``max_new_tokens`` without ending)."""
    device, dtype = model_device(model), model_dtype(model)
    batch = {}
    for key, value in inputs.items():
        if key in ("prompt_length", "labels"):
            continue
        if torch.is_tensor(value):
            value = value.to(device=device, dtype=dtype if value.is_floating_point() else value.dtype)
        batch[key] = value
    config = copy.deepcopy(model.generation_config)
    config.do_sample = False
    config.temperature = config.top_p = config.top_k = None
    config.num_beams = 1
    config.use_cache = True
    config.max_new_tokens = int(max_new_tokens)
    with torch.inference_mode():
        output = model.generate(**batch, generation_config=config)
    prompt_length = batch["input_ids"].shape[1]
    new_ids = output[0, prompt_length:]
    pad = processor.tokenizer.pad_token_id
    completion = int((new_ids != pad).sum()) if pad is not None else int(new_ids.numel())
    text = processor.tokenizer.decode(new_ids, skip_special_tokens=True)
    usage = {"prompt_tokens": int(prompt_length), "completion_tokens": completion,
             "total_tokens": int(prompt_length) + completion}
    eos = config.eos_token_id if config.eos_token_id is not None else processor.tokenizer.eos_token_id
    eos = set(eos if isinstance(eos, (list, tuple)) else [eos])
    real = new_ids[new_ids != pad] if pad is not None else new_ids
    ended = real.numel() > 0 and int(real[-1]) in eos
    usage["finish_reason"] = "stop" if ended or completion < max_new_tokens else "length"
    return text.strip(), usage


def read_adapter_settings(adapter: str | Path | None) -> dict:
    """The settings ``rs-seg train-lora`` saved beside an adapter ({} if none)."""
    if not adapter:
        return {}
    path = Path(adapter).expanduser() / SETTINGS_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


class QwenBackend:
    """A local Qwen-VL that answers ``ask(image_rgb, prompt)`` with greedy decoding.

    ``model_id``: hub id or local folder; ``adapter``: a LoRA folder from ``rs-seg train-lora``
    (its saved system prompt and image size are used unless given here); ``qwen``: an already
    loaded :class:`rs_helpers.models.qwen.QwenVL` to reuse instead of loading one. ``timeout`` is
    accepted and ignored: the model runs in this process, with no server that could stall, and
    generation is bounded by ``max_new_tokens``.
    """

    def __init__(self, model_id: str | None = None, *, adapter: str | Path | None = None,
                 profile: str | None = None, device: str | None = None, dtype: torch.dtype | None = None,
                 max_new_tokens: int = 256, system_prompt: str | None = _DEFAULT,  # type: ignore[assignment]
                 max_pixels: int | None = _DEFAULT, qwen=None,  # type: ignore[assignment]
                 timeout: float | None = None):
        from rs_helpers.models.qwen import DEFAULT_QWEN, load_qwen

        trained = read_adapter_settings(adapter)
        if system_prompt is _DEFAULT:
            system_prompt = trained.get("system_prompt", SYSTEM_PROMPT)
        self.system_prompt = system_prompt
        self.max_pixels = trained.get("max_pixels") if max_pixels is _DEFAULT else max_pixels
        self.max_new_tokens = int(max_new_tokens)
        if qwen is None:
            qwen = load_qwen(model_id or DEFAULT_QWEN, profile=profile, device=device, dtype=dtype,
                             adapter=adapter)
        self.qwen = qwen
        self.name = f"qwen:{qwen.model_id}" + (f"+{Path(str(qwen.adapter)).name}" if qwen.adapter else "")

    @property
    def model(self):
        return self.qwen.model

    @property
    def processor(self):
        return self.qwen.processor

    def inputs(self, image_rgb: np.ndarray, prompt: str, answer: str | None = None) -> dict:
        """The exact model inputs this backend uses (see :func:`build_chat`)."""
        return build_chat(self.processor, image_rgb, prompt, answer,
                          system_prompt=self.system_prompt, max_pixels=self.max_pixels)

    def ask(self, image_rgb: np.ndarray, prompt: str) -> VLMAnswer:
        text, usage = generate(self.model, self.processor, self.inputs(image_rgb, prompt),
                               self.max_new_tokens)
        finish = usage.pop("finish_reason", None)
        return VLMAnswer(text=text, usage=usage, finish_reason=finish)
