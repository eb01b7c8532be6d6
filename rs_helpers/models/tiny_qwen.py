"""A tiny, seeded, random Qwen3-VL with a processor built offline.

The architecture is the real ``Qwen3VLForConditionalGeneration`` (vision tower with deepstack
mergers, M-RoPE text model), only very small. The tokenizer is a byte-level BPE (a few hundred
merges learned from a fixed text; any NFC text round-trips exactly) that carries Qwen3-VL's special
tokens, and the processor uses Qwen3-VL-Instruct's chat template, patch size 16 and merge size 2.
Its answers are MEANINGLESS: it exists so that tests, CI and notebooks can run the Qwen code paths
(chat template, generation, LoRA training, save and reload) offline in seconds.
"""
from __future__ import annotations

from pathlib import Path

import torch

# Qwen3-VL's special tokens, in the order of the real vocabulary (151643 ... 151668).
# The first block are special tokens; the rest are ordinary added tokens, as in the real model.
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]
ADDED_TOKENS = [
    "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
    "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>",
    "<think>", "</think>",
]

# Images become few tokens: between 2x2 and 8x8 patches of 16 px, i.e. 1 to 16 merged tokens.
TINY_MIN_PIXELS = 32 * 32
TINY_MAX_PIXELS = 128 * 128
EMBED_SCALE = 10.0
TEXT_HIDDEN = 64
MROPE_SECTION = [4, 2, 2]  # sums to head_dim / 2
ROPE_THETA = 10_000.0  # the real 5e6 leaves 16-d heads almost no sense of nearby positions

# The real Qwen3-VL-Instruct chat template, verbatim (kept as a resource file).
QWEN3_VL_CHAT_TEMPLATE = (Path(__file__).resolve().parents[1] / "resources" / "qwen3_vl_chat_template.jinja").read_text()


# A small fixed text from which the tiny tokenizer learns its merges, so that prompts and click
# answers take few tokens (tests run faster). Byte-level BPE still encodes any text exactly.
MERGE_CORPUS = """You are a helpful assistant. You are a precise remote-sensing image analyst who locates
objects and regions in overhead aerial and satellite images. Find the region that this description
refers to. Find the region of the image that answers this request. Work out which visible region
answers it, then click on that region. Write up to six clicks for a segmentation model (SAM) that
will turn them into one mask of that region. Coordinates are integers on a 0-1000 grid relative to
the image: x from 0 (left edge) to 1000 (right edge), y from 0 (top edge) to 1000 (bottom edge).
Use label 1 for a positive click inside the target and label 0 for a negative click on something
nearby that must be excluded. Put the first click well inside the target, away from its boundary;
spread the other positive clicks over the target. Answer with JSON only, exactly in this form (no
other text): {"clicks": [{"x": 512, "y": 300, "label": 1}, {"x": 540, "y": 330, "label": 0}]}
The largest building in the top-left corner; the small white house near the road; a boat on the
river; where could a plane land? The green park beside the lake; trees, water, roads, buildings,
cars, ships, bridges, farmland, forest, grass, bare soil, parking lot, harbor, airport runway.
"""
TINY_VOCAB_SIZE = 768  # bytes + merges learned from MERGE_CORPUS (before the special tokens)


# Qwen2/Qwen3's pre-tokenizer split (digits one by one, words with their leading space, ...).
PRETOKENIZE_REGEX = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
                     r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")


def _byte_level_bpe():
    """A ``tokenizers`` byte-level BPE like Qwen's (NFC, Qwen's split, byte-level bytes), its
    merges learned deterministically from MERGE_CORPUS."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=TINY_VOCAB_SIZE, min_frequency=1, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([MERGE_CORPUS], trainer)
    return bpe


def build_tiny_tokenizer():
    """A fast tokenizer (byte-level BPE with Qwen's pre-tokenizer, a few hundred merges) with
    Qwen3-VL's special tokens right after the learned vocabulary."""
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=_byte_level_bpe(), eos_token="<|endoftext|>",
                                        pad_token="<|endoftext|>", model_max_length=131072)
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS],
                         special_tokens=True)
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED_TOKENS])
    tokenizer.eos_token = "<|im_end|>"  # as in Qwen3-VL-Instruct: a chat turn ends generation
    tokenizer.chat_template = QWEN3_VL_CHAT_TEMPLATE
    return tokenizer


def build_tiny_processor(pixels: tuple[int, int] = (TINY_MIN_PIXELS, TINY_MAX_PIXELS)):
    """``Qwen3VLProcessor`` around the tiny tokenizer, with Qwen3-VL's image and video settings
    (patch 16, merge 2, temporal patch 2, mean/std 0.5); ``pixels``: (min, max) pixels per image,
    by default few (the random full-size model of a timing run passes the real limits)."""
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    size = {"shortest_edge": pixels[0], "longest_edge": pixels[1]}
    common = dict(patch_size=16, temporal_patch_size=2, merge_size=2,
                  image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    image_processor = Qwen2VLImageProcessor(size=size, **common)
    video_processor = Qwen3VLVideoProcessor(size={"shortest_edge": pixels[0],
                                                  "longest_edge": 4 * pixels[1]}, **common)
    return Qwen3VLProcessor(image_processor=image_processor, tokenizer=build_tiny_tokenizer(),
                            video_processor=video_processor, chat_template=QWEN3_VL_CHAT_TEMPLATE)


def rope_kwargs(section=MROPE_SECTION, theta: float = ROPE_THETA) -> dict:
    """M-RoPE settings, spelled for transformers 5 (rope_parameters) or 4.5x (rope_scaling)."""
    from transformers import Qwen3VLTextConfig

    rope = {"rope_type": "default", "mrope_section": list(section), "mrope_interleaved": True}
    if "rope_parameters" in getattr(Qwen3VLTextConfig, "__dataclass_fields__", {}):
        return {"rope_parameters": {**rope, "rope_theta": theta}}
    return {"rope_theta": theta, "rope_scaling": rope}


def tiny_qwen_config(tokenizer):
    """A ``Qwen3VLConfig`` of the real design: 2 text layers (hidden 64, GQA 4/2 heads, M-RoPE),
    a 2-block vision tower (patch 16, merge 2) whose blocks 0 and 1 feed deepstack mergers
    into text layers 0 and 1."""
    from transformers import Qwen3VLConfig

    ids = tokenizer.convert_tokens_to_ids
    vocab_size = -(-len(tokenizer) // 64) * 64  # padded like the real embedding table
    text_hidden, head_dim = TEXT_HIDDEN, TEXT_HIDDEN // 4
    return Qwen3VLConfig(
        text_config=dict(
            vocab_size=vocab_size, hidden_size=text_hidden, intermediate_size=2 * text_hidden,
            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=head_dim,
            max_position_embeddings=4096, hidden_act="silu", rms_norm_eps=1e-6, **rope_kwargs(),
            bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"),
            pad_token_id=ids("<|endoftext|>"), tie_word_embeddings=True,
        ),
        vision_config=dict(
            depth=2, hidden_size=32, intermediate_size=64, num_heads=2, in_channels=3,
            patch_size=16, spatial_merge_size=2, temporal_patch_size=2,
            out_hidden_size=text_hidden, num_position_embeddings=256,
            deepstack_visual_indexes=[0, 1], hidden_act="gelu_pytorch_tanh",
        ),
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )


def build_tiny_qwen(seed: int = 0):
    """``(model, processor)``: a random tiny Qwen3-VL (float32, eval mode) and its processor.

    The same ``seed`` always gives the same weights; the global RNG is left untouched.
    """
    from transformers import GenerationConfig, Qwen3VLForConditionalGeneration

    processor = build_tiny_processor()
    tok = processor.tokenizer
    config = tiny_qwen_config(tok)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3VLForConditionalGeneration(config)
    with torch.no_grad():  # embeddings (tied to the output head) at std 0.5 instead of 0.02, so
        # that LoRA on the projections can reach confident predictions (the norms stay frozen)
        model.get_input_embeddings().weight.mul_(EMBED_SCALE)
    model.generation_config = GenerationConfig(
        bos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=[tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")],
        pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
        do_sample=False,
    )
    return model.eval(), processor
