"""The real architectures with seeded random weights, built offline: for timing runs only.

Compute time does not depend on weight values, so a notebook run with
``$RS_HELPERS_RANDOM_WEIGHTS=1`` under the full or classroom profile measures what a class will
wait for without downloading gigabytes of weights (``scripts/time_notebooks.py``). Stages whose
amount of work depends on the outputs (how many masks pass SAM's thresholds, how many tokens
Qwen writes before it stops) can take longer with real weights; the timing table says so.
Every model built here is announced on stderr (:func:`rs_helpers.profile.announce_random`).
SimFeatUp's and SAM 3's random builds live beside their loaders (:mod:`rs_helpers.ovss.simfeatup`,
:mod:`rs_helpers.models.sam3`), which already hold those architectures.
"""
from __future__ import annotations

import torch

from rs_helpers.errors import BadInputError
from rs_helpers.profile import TINY_SEED, announce_random, seeded

# Qwen3-VL-2B-Instruct's published sizes (its config.json): a Qwen3-1.7B text model and a
# 24-block vision tower. Only the sizes matter for timing; the tokenizer is the tiny one.
QWEN3_VL_2B = dict(
    text=dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
              num_key_value_heads=8, head_dim=128, vocab_size=151936),
    vision=dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, out_hidden_size=2048,
                num_position_embeddings=2304, deepstack_visual_indexes=[5, 11, 17]),
    mrope_section=[24, 20, 20], rope_theta=5_000_000.0,
)
RANDOM_QWEN = {"Qwen/Qwen3-VL-2B-Instruct": QWEN3_VL_2B}
# Qwen3-VL's own image processor limits (preprocessor_config.json): 256^2 to 4096^2 pixels.
QWEN_MIN_PIXELS, QWEN_MAX_PIXELS = 256 * 256, 4096 * 4096


def random_sam(variant: str) -> torch.nn.Module:
    """SAM ``variant`` (vit_b / vit_l / vit_h) as segment-anything builds it, random weights."""
    from segment_anything import sam_model_registry

    if variant not in ("vit_b", "vit_l", "vit_h"):
        raise BadInputError(f"unknown SAM variant {variant!r}; choose one of vit_b, vit_l, vit_h")
    announce_random(f"SAM {variant}")
    with seeded(TINY_SEED):
        return sam_model_registry[variant](checkpoint=None)


def random_clip(name: str, device, quick_gelu: bool = False):
    """open_clip's ``name`` with no pretrained weights (its usual warning silenced); ``quick_gelu``
    as the weights it stands in for were trained (all OpenAI CLIPs)."""
    import logging

    import open_clip

    announce_random(f"CLIP {name}")
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        with seeded(TINY_SEED):
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=None, device=device, force_quick_gelu=quick_gelu)
    finally:
        root.setLevel(level)
    return model.eval(), preprocess, open_clip.get_tokenizer(name)


def random_qwen(model_id: str, dtype: torch.dtype | None = None):
    """``(model, processor)``: Qwen3-VL at the published sizes of ``model_id``, random weights,
    with the tiny tokenizer (its vocabulary is a subset of the real one's ids) and the real image
    processor limits, so that an image costs as many tokens as with the real processor."""
    from transformers import GenerationConfig, Qwen3VLConfig, Qwen3VLForConditionalGeneration

    from rs_helpers.models.tiny_qwen import build_tiny_processor, rope_kwargs

    if model_id not in RANDOM_QWEN:
        raise BadInputError(f"random-weights timing knows the sizes of {', '.join(RANDOM_QWEN)} only, "
                            f"not {model_id!r}")
    announce_random(f"Qwen-VL {model_id}")
    sizes = RANDOM_QWEN[model_id]
    processor = build_tiny_processor(pixels=(QWEN_MIN_PIXELS, QWEN_MAX_PIXELS))
    tok = processor.tokenizer
    ids = tok.convert_tokens_to_ids
    rope = rope_kwargs(section=sizes["mrope_section"], theta=sizes["rope_theta"])
    config = Qwen3VLConfig(
        text_config=dict(**sizes["text"], max_position_embeddings=32768, hidden_act="silu", rms_norm_eps=1e-6,
                         bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"),
                         pad_token_id=ids("<|endoftext|>"), tie_word_embeddings=True, **rope),
        vision_config=dict(**sizes["vision"], in_channels=3, patch_size=16, spatial_merge_size=2,
                           temporal_patch_size=2, hidden_act="gelu_pytorch_tanh"),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )
    with seeded(TINY_SEED):
        model = Qwen3VLForConditionalGeneration(config)
    if dtype is not None:
        model = model.to(dtype)
    model.generation_config = GenerationConfig(
        bos_token_id=ids("<|endoftext|>"), eos_token_id=[ids("<|im_end|>"), ids("<|endoftext|>")],
        pad_token_id=ids("<|endoftext|>"), do_sample=False)
    return model.eval(), processor
