"""The tiny Qwen3-VL: real architecture and processor, offline, seeded; saves and reloads through
the same loader as real weights. Its answers are meaningless; only their sameness is tested."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rs_helpers.models.qwen import load_qwen
from rs_helpers.models.tiny_qwen import QWEN3_VL_CHAT_TEMPLATE, SPECIAL_TOKENS, build_tiny_qwen


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: faster on one thread


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_qwen(seed=0)


def _image(seed=0, h=80, w=120):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def _inputs(processor, image, text="Where is the largest roof?"):
    from PIL import Image

    messages = [{"role": "user", "content": [{"type": "image", "image": Image.fromarray(image)},
                                             {"type": "text", "text": text}]}]
    return processor.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                         return_dict=True, return_tensors="pt")


def _greedy(model, inputs, n=12):
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=n, do_sample=False)
    return out[0, inputs["input_ids"].shape[1]:]


def test_tokenizer_round_trips_and_carries_qwen_special_tokens(tiny):
    _, processor = tiny
    tok = processor.tokenizer
    for text in ['{"clicks": [{"x": 512, "y": 300, "label": 1}]}', "héllo wörld 日本\n\t  x",
                 "the largest building in the top-left", ""]:
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    ids = tok.convert_tokens_to_ids(SPECIAL_TOKENS)
    assert len(set(ids)) == len(SPECIAL_TOKENS) and tok.unk_token_id not in ids
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    # a special token in text is one token, not its characters
    assert tok("<|im_start|>user", add_special_tokens=False)["input_ids"][0] == ids[1]


def test_config_ids_match_the_tokenizer(tiny):
    model, processor = tiny
    tok, cfg = processor.tokenizer, model.config
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert cfg.text_config.vocab_size >= len(tok)
    assert tok.convert_tokens_to_ids("<|im_end|>") in model.generation_config.eos_token_id
    vision = cfg.vision_config
    assert (vision.patch_size, vision.spatial_merge_size) == (16, 2)
    assert max(vision.deepstack_visual_indexes) < vision.depth
    assert len(vision.deepstack_visual_indexes) <= cfg.text_config.num_hidden_layers


def test_chat_template_is_qwen3_vl_instruct(tiny):
    _, processor = tiny
    assert processor.chat_template == QWEN3_VL_CHAT_TEMPLATE
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]},
        {"role": "assistant", "content": "A roof."},
    ]
    text = processor.apply_chat_template(messages, tokenize=False)
    assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n"
                    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is this?<|im_end|>\n"
                    "<|im_start|>assistant\nA roof.<|im_end|>\n")
    prompt = processor.apply_chat_template(messages[1:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n") and "system" not in prompt


def test_images_become_few_tokens(tiny):
    model, processor = tiny
    inputs = _inputs(processor, _image(h=300, w=500))
    grid = inputs["image_grid_thw"][0].tolist()
    n_image_tokens = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert n_image_tokens == grid[0] * grid[1] * grid[2] // 4 <= 16


def test_same_seed_same_model_and_global_rng_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a, _ = build_tiny_qwen(seed=0)
    assert torch.equal(torch.rand(3), expected)
    b, _ = build_tiny_qwen(seed=0)
    c, _ = build_tiny_qwen(seed=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_generate_then_save_and_reload_through_load_qwen(tiny, tmp_path):
    model, processor = tiny
    inputs = _inputs(processor, _image())
    first = _greedy(model, inputs)
    assert len(first) > 0
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded = load_qwen(str(tmp_path), profile="full", device="cpu")  # the real-weights path
    assert type(loaded.model).__name__ == "Qwen3VLForConditionalGeneration"
    reloaded_inputs = _inputs(loaded.processor, _image())
    for key in inputs:
        assert torch.equal(inputs[key], reloaded_inputs[key]), key
    assert torch.equal(_greedy(loaded.model, reloaded_inputs), first)
    with torch.inference_mode():
        assert torch.allclose(model(**inputs).logits, loaded.model(**reloaded_inputs).logits)


def test_tiny_profile_builds_it(capsys):
    qwen = load_qwen(profile="tiny", device="cpu")
    assert qwen.model_id == "tiny-qwen3-vl"
    assert type(qwen.processor).__name__ == "Qwen3VLProcessor"
