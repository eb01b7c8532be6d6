"""The local Qwen backend and build_chat, with the tiny Qwen3-VL (answers are meaningless)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rs_helpers.errors import BadInputError
from rs_helpers.models.qwen import QwenVL, load_qwen
from rs_helpers.refer.prompts import SYSTEM_PROMPT, build_prompt
from rs_helpers.refer.vlm import VLMAnswer, VLMBackend
from rs_helpers.refer.backends import make_backend
from rs_helpers.refer.vlm_qwen import IGNORE_INDEX, SETTINGS_FILE, QwenBackend, build_chat, generate, to_pil


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: faster on one thread


@pytest.fixture(scope="module")
def qwen():
    return load_qwen(profile="tiny", device="cpu")


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return (rng.random((72, 100, 3)) * 255).astype(np.uint8)


ANSWER = '{"clicks": [{"x": 512, "y": 300, "label": 1}]}'


def test_build_chat_prompt_ends_with_the_assistant_header(qwen, image):
    inputs = build_chat(qwen.processor, image, "Find the roof.")
    text = qwen.processor.tokenizer.decode(inputs["input_ids"][0])
    assert text.startswith(f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n<|vision_start|>")
    assert text.endswith("<|vision_end|>Find the roof.<|im_end|>\n<|im_start|>assistant\n")
    assert inputs["prompt_length"] == inputs["input_ids"].shape[1]
    assert "labels" not in inputs and "pixel_values" in inputs and "image_grid_thw" in inputs
    no_system = build_chat(qwen.processor, image, "Find the roof.", system_prompt=None)
    assert qwen.processor.tokenizer.decode(no_system["input_ids"][0]).startswith("<|im_start|>user\n")


def test_build_chat_with_answer_matches_the_chat_template_and_masks_the_prompt(qwen, image):
    prompt = build_prompt("the red roof", "referring", 6)
    plain = build_chat(qwen.processor, image, prompt)
    full = build_chat(qwen.processor, image, prompt, ANSWER)
    n = plain["prompt_length"]
    assert full["prompt_length"] == n
    assert torch.equal(full["input_ids"][:, :n], plain["input_ids"])  # same prompt as inference
    assert torch.equal(full["pixel_values"], plain["pixel_values"])
    labels, ids = full["labels"][0], full["input_ids"][0]
    assert (labels[:n] == IGNORE_INDEX).all()
    assert (labels[n:] != IGNORE_INDEX).all() and torch.equal(labels[n:], ids[n:])
    tok = qwen.processor.tokenizer
    assert tok.decode(ids[n:]) == ANSWER + "<|im_end|>"
    # the whole sequence is what the chat template writes for the finished conversation
    from PIL import Image

    messages = [{"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
                {"role": "user", "content": [{"type": "image", "image": Image.fromarray(image)},
                                             {"type": "text", "text": prompt}]},
                {"role": "assistant", "content": [{"type": "text", "text": ANSWER}]}]
    rendered = qwen.processor.apply_chat_template(messages, tokenize=True, return_dict=True,
                                                  return_tensors="pt")
    assert tok.decode(ids) + "\n" == tok.decode(rendered["input_ids"][0])
    assert full["attention_mask"].shape == ids[None].shape
    assert full["mm_token_type_ids"].shape == ids[None].shape


def test_backend_answers_with_usage_and_is_deterministic(qwen, image):
    backend = QwenBackend(qwen=qwen, max_new_tokens=8)
    assert isinstance(backend, VLMBackend)
    assert backend.name == "qwen:tiny-qwen3-vl"
    first = backend.ask(image, "Where is the roof?")
    assert isinstance(first, VLMAnswer) and isinstance(first.text, str)
    usage = first.usage
    assert usage["prompt_tokens"] == backend.inputs(image, "Where is the roof?")["prompt_length"]
    assert 1 <= usage["completion_tokens"] <= 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert backend.ask(image, "Where is the roof?") == first


def test_finish_reason_length_when_the_answer_hits_the_limit(qwen, image):
    answer = QwenBackend(qwen=qwen, max_new_tokens=2).ask(image, "Where is the roof?")
    assert answer.usage["completion_tokens"] == 2 and answer.finish_reason == "length"
    assert "finish_reason" not in answer.usage


def test_finish_reason_stop_when_the_answer_ends(qwen, image, monkeypatch):
    """A model that says one token and then its end-of-turn token stopped by itself."""
    from rs_helpers.refer import vlm_qwen

    end = qwen.model.generation_config.eos_token_id
    end = end[0] if isinstance(end, (list, tuple)) else end

    def two_tokens(**kwargs):
        prompt = kwargs["input_ids"]
        return torch.cat([prompt, torch.tensor([[42, end]])], dim=1)

    monkeypatch.setattr(qwen.model, "generate", two_tokens)
    text, usage = vlm_qwen.generate(qwen.model, qwen.processor, QwenBackend(qwen=qwen).inputs(image, "q"), 2)
    assert usage["completion_tokens"] == 2 and usage["finish_reason"] == "stop"


def test_make_backend_builds_the_tiny_qwen(image):
    backend = make_backend("qwen:Qwen/Qwen3-VL-2B-Instruct", profile="tiny", device="cpu", max_new_tokens=4)
    assert isinstance(backend, QwenBackend)
    assert backend.ask(image, "Where?").usage["completion_tokens"] <= 4


def _save_random_adapter(qwen, folder, settings=None):
    """A LoRA adapter with random (non-zero) weights, as training would leave it."""
    from peft import LoraConfig, get_peft_model

    from rs_helpers.lora.train import TARGET_MODULES

    base = load_qwen(profile="tiny", device="cpu").model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=64, target_modules=TARGET_MODULES,
                                                     init_lora_weights=False))
    peft_model.save_pretrained(folder)
    if settings is not None:
        (folder / SETTINGS_FILE).write_text(json.dumps(settings))
    return folder


def test_backend_with_adapter_uses_it_and_its_saved_settings(qwen, image, tmp_path):
    adapter = _save_random_adapter(qwen, tmp_path / "adapter", {"system_prompt": None, "max_pixels": 64 * 64})
    tuned = QwenBackend(adapter=adapter, profile="tiny", device="cpu", max_new_tokens=4)
    assert tuned.qwen.adapter and tuned.name.endswith("+adapter")
    assert tuned.system_prompt is None and tuned.max_pixels == 64 * 64
    plain = QwenBackend(qwen=qwen, system_prompt=None, max_pixels=64 * 64)
    a, b = tuned.inputs(image, "Where?"), plain.inputs(image, "Where?")
    assert torch.equal(a["input_ids"], b["input_ids"])
    assert isinstance(tuned.ask(image, "Where?"), VLMAnswer)
    with torch.inference_mode():
        keep = ("input_ids", "attention_mask", "pixel_values", "image_grid_thw", "mm_token_type_ids")
        la = tuned.model(**{k: a[k] for k in keep}).logits
        lb = plain.model(**{k: b[k] for k in keep}).logits
    assert not torch.allclose(la, lb)  # the adapter changes the model
    explicit = QwenBackend(adapter=adapter, profile="tiny", device="cpu", system_prompt="Hi.", max_pixels=None)
    assert explicit.system_prompt == "Hi." and explicit.max_pixels is None


def test_bad_adapter_folder_is_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="adapter"):
        QwenBackend(adapter=tmp_path, profile="tiny", device="cpu")


def test_to_pil_shrinks_and_checks(image):
    assert to_pil(image).size == (100, 72)
    small = to_pil(image, max_pixels=1800)
    assert small.width * small.height <= 1800 and abs(small.width / small.height - 100 / 72) < 0.1
    with pytest.raises(BadInputError):
        to_pil(np.zeros((10, 10), np.uint8))
    with pytest.raises(BadInputError):
        to_pil(np.zeros((10, 10, 3), np.float32))


def test_empty_prompt_is_bad_input(qwen, image):
    with pytest.raises(BadInputError):
        build_chat(qwen.processor, image, "  ")


def _tiny_qwen25_vl():
    """A tiny random Qwen2.5-VL with the same tokenizer: the backend must work with it too."""
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                              Qwen2VLImageProcessor)
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    from rs_helpers.models.tiny_qwen import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    ids = tok.convert_tokens_to_ids
    size = {"shortest_edge": 28 * 28, "longest_edge": 112 * 112}
    common = dict(patch_size=14, temporal_patch_size=2, merge_size=2)
    processor = Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(size=size, **common),
                                    video_processor=Qwen2VLVideoProcessor(size=size, **common),
                                    tokenizer=tok, chat_template=tok.chat_template)
    config = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=-(-len(tok) // 64) * 64, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                          "mrope_section": [2, 3, 3]},
                         bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"),
                         pad_token_id=ids("<|endoftext|>")),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                           fullatt_block_indexes=[1], out_hidden_size=64),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = [ids("<|im_end|>")]
    model.generation_config.pad_token_id = ids("<|endoftext|>")
    return QwenVL(model=model, processor=processor, model_id="tiny-qwen2.5-vl")


def test_backend_works_with_qwen25_vl(image):
    qwen25 = _tiny_qwen25_vl()
    backend = QwenBackend(qwen=qwen25, max_new_tokens=5)
    answer = backend.ask(image, "Where is the roof?")
    assert isinstance(answer, VLMAnswer) and answer.usage["completion_tokens"] <= 5
    full = backend.inputs(image, "Where?", answer=ANSWER)
    n = full["prompt_length"]
    assert (full["labels"][0, :n] == IGNORE_INDEX).all() and (full["labels"][0, n:] != IGNORE_INDEX).all()
    with torch.inference_mode():
        out = qwen25.model(**{k: v for k, v in full.items() if k != "prompt_length"})
    assert torch.isfinite(out.loss)
    text, usage = generate(qwen25.model, qwen25.processor, backend.inputs(image, "Where?"), 3)
    assert usage["completion_tokens"] <= 3
