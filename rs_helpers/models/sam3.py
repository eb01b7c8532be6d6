"""SAM 3 ("Segment Anything with Concepts") through transformers, real or as a tiny random stand-in.

:func:`load_sam3` returns a :class:`Sam3Bundle` (``Sam3Model``, its ``Sam3Processor``, device, dtype
and the model's square input size). ``facebook/sam3`` is gated on the Hugging Face Hub: its licence
must be accepted on the model page and the user logged in; every way that fails (no token, no
access, offline without the weights cached) is one :class:`WeightsUnavailableError` (exit 3) saying
so. :func:`sam3_status` tells ``rs-seg doctor`` whether a token is present and the weights cached,
without touching the network.

The tiny profile builds a seeded, random ``Sam3Model`` of the real design (ViT with windowed and
global RoPE attention, FPN neck, CLIP text encoder, DETR encoder/decoder with presence token, mask
decoder with its semantic head) at 256 px with 16 queries, and a CLIP tokenizer made offline from
the BPE vocabulary that open_clip ships (the same token ids as open_clip's tokenizer). Its outputs
are MEANINGLESS: they only exercise the code.
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rs_helpers.device import pick_device, pick_dtype
from rs_helpers.errors import BadInputError, WeightsUnavailableError
from rs_helpers.models.checkpoints import first_line, host_reachable
from rs_helpers.profile import TINY_SEED, announce_random, announce_tiny, get_profile, random_weights, seeded

DEFAULT_SAM3 = "facebook/sam3"
GATED = {DEFAULT_SAM3}  # hub ids that need an accepted licence and a token
TINY_SAM3_ID = "tiny-sam3"
TEXT_LENGTH = 32  # SAM 3's text context: Sam3Processor pads to 32 tokens (sam3 VETextEncoder context_length)

# The tiny architecture: 256 px input, 16 px patches (a 16 x 16 grid, masks at 64 x 64), width 32.
TINY_INPUT = 256
TINY_PATCH = 16
TINY_WIDTH = 32
TINY_QUERIES = 16


@dataclass
class Sam3Bundle:
    """A SAM 3 model with what running it needs: the processor (tokenizer and image settings),
    where and in which precision it runs, and its square input size (1008 real, 256 tiny)."""

    model: Any
    processor: Any
    device: torch.device
    dtype: torch.dtype
    model_id: str
    tiny: bool
    input_size: int

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    @property
    def text_length(self) -> int:
        return int(getattr(self.model.config.text_config, "max_position_embeddings", TEXT_LENGTH))


# --------------------------------------------------------------------------- loading
def load_sam3(model_id: str = DEFAULT_SAM3, profile: str | None = None,
              device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> Sam3Bundle:
    """SAM 3 ready for inference (eval mode, on ``device``, in ``dtype``).

    Full profile: ``model_id`` (a hub id, through the Hugging Face cache, or a saved model folder);
    dtype by default bf16 on GPUs that compute it natively, fp16 on other GPUs (a T4), fp32 on the
    CPU. Tiny profile: :func:`build_tiny_sam3` (float32 unless ``dtype`` is given), unless
    ``model_id`` is a local folder (a tiny model a test saved loads like a real one).
    """
    device = pick_device(device)
    local = Path(str(model_id)).expanduser()
    if get_profile(profile) == "tiny" and not local.is_dir():
        announce_tiny(f"SAM 3 (asked for {model_id})")
        model, processor = build_tiny_sam3(seed=TINY_SEED)
        dtype = dtype or torch.float32
        model = model.to(device=device, dtype=dtype).eval()
        return Sam3Bundle(model, processor, device, dtype, TINY_SAM3_ID, True, _input_size(model))
    if not local.is_dir() and random_weights(profile):
        return random_sam3(device, dtype or pick_dtype(device))
    dtype = dtype or pick_dtype(device)
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise BadInputError(f"{local} is not a saved SAM 3 folder (no config.json)")
        model, processor = _from_pretrained(str(local), dtype, local_only=True)
    else:
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", str(model_id)):
            raise BadInputError(f"SAM 3 model {model_id!r} is neither a hub id (ORG/NAME, e.g. {DEFAULT_SAM3}) "
                                "nor a saved model folder")
        model, processor = _from_pretrained(model_id, dtype, local_only=check_hub_access(model_id))
    model = model.to(device=device, dtype=dtype).eval()
    size = _input_size(model)
    processor_size = getattr(processor.image_processor, "size", {}) or {}
    if processor_size.get("height", size) != size:
        raise WeightsUnavailableError(f"{model_id}: the processor resizes to {processor_size.get('height')} px but "
                                      f"the model takes {size} px; re-download the model folder")
    return Sam3Bundle(model, processor, device, dtype, str(model_id), False, size)


def _from_pretrained(source: str, dtype: torch.dtype, local_only: bool):
    """``Sam3Model`` and ``Sam3Processor`` from the hub (or a folder); every hub failure -> exit 3."""
    from transformers import Sam3Model, Sam3Processor

    try:
        processor = Sam3Processor.from_pretrained(source, local_files_only=local_only)
        model = Sam3Model.from_pretrained(source, dtype=dtype, local_files_only=local_only)
    except OSError as exc:  # GatedRepoError, LocalEntryNotFoundError and HfHubHTTPError are OSErrors,
        # and transformers turns the others into OSError too
        if Path(source).is_dir():
            raise BadInputError(f"cannot load SAM 3 from {source}: {first_line(exc)}") from None
        raise WeightsUnavailableError(sam3_unavailable(source, _reason(exc))) from None
    return model, processor


def check_hub_access(model_id: str, what: str = "SAM 3") -> bool:
    """Before any download, exit 3 at once (no hub retry loops) for a gated model without a token or
    for a model neither cached nor reachable; returns whether to load from the cache only (offline)."""
    status = sam3_status(model_id)
    if not status["cached"]:
        if model_id in GATED and not status["token"]:
            raise WeightsUnavailableError(sam3_unavailable(model_id, "no Hugging Face token found", what))
        if not host_reachable("huggingface.co"):
            raise WeightsUnavailableError(sam3_unavailable(model_id, "offline and not in the cache", what))
    return bool(status["cached"]) and not host_reachable("huggingface.co")


def _reason(exc: BaseException) -> str:
    """A short reason for a failed hub load, without anything secret (tokens are never in it)."""
    text = " ".join(str(exc).split()).lower()
    if "gated" in text or "403" in text or "awaiting" in text or "restricted" in text:
        return "access to the gated model not granted to this token"
    if "401" in text or "unauthorized" in text or ("invalid" in text and "token" in text):
        return "the Hugging Face token was refused"
    if "connect" in text or "offline" in text or "timed out" in text or "name resolution" in text:
        return "offline and not in the cache"
    return f"{type(exc).__name__}: {first_line(exc, 120)}"


def sam3_unavailable(model_id: str, reason: str, what: str = "SAM 3") -> str:
    """The one message for every way the weights of a hub model (``what``: SAM 3, SAM 2.1) cannot be had."""
    from huggingface_hub.constants import HF_HUB_CACHE

    page = f"https://huggingface.co/{model_id}"
    gated = "The model is gated: accept" if model_id in GATED else "If the model is gated, accept"
    return (f"cannot get the {what} weights {model_id} ({reason}). {gated} its licence on "
            f"{page} and log in (`hf auth login`, or set HF_TOKEN); the weights are then downloaded once "
            f"into the Hugging Face cache ({HF_HUB_CACHE}; set HF_HOME to move it), where an offline run "
            "finds them. Or run offline with tiny random models: --profile tiny (RS_HELPERS_PROFILE=tiny).")


def sam3_status(model_id: str = DEFAULT_SAM3) -> dict:
    """For ``rs-seg doctor``, without the network: is a Hugging Face token present (and where from),
    are ``model_id``'s config and weights in the cache, and the page where the licence is accepted."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.constants import HF_HUB_CACHE

    try:
        from huggingface_hub import get_token

        token = bool(get_token())
    except ImportError:  # pragma: no cover - very old huggingface_hub
        token = bool(os.environ.get("HF_TOKEN"))
    source = "HF_TOKEN" if os.environ.get("HF_TOKEN") else ("hf auth login" if token else None)

    def cached(name: str) -> bool:
        try:
            return isinstance(try_to_load_from_cache(model_id, name), str)
        except (ValueError, OSError):  # not a hub id (a path, a typo with spaces)
            return False

    config = cached("config.json")
    weights = cached("model.safetensors") or cached("model.safetensors.index.json")
    return {"model_id": model_id, "token": token, "token_source": source, "cached": config and weights,
            "config_cached": config, "gated": model_id in GATED, "licence_url": f"https://huggingface.co/{model_id}",
            "cache_dir": str(HF_HUB_CACHE)}


def _input_size(model) -> int:
    size = model.config.vision_config.backbone_config.image_size
    return int(size[0] if isinstance(size, (list, tuple)) else size)


# --------------------------------------------------------------------------- the tiny profile
def bpe_vocabulary_file() -> Path:
    """The CLIP BPE merges that open_clip ships (``bpe_simple_vocab_16e6.txt.gz``)."""
    import open_clip

    path = Path(open_clip.__file__).resolve().parent / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file():
        raise WeightsUnavailableError(f"open_clip's BPE vocabulary {path} is missing; reinstall open_clip_torch")
    return path


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map of bytes to printable characters (the alphabet of byte-level BPE)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = list(keep), 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, (chr(c) for c in chars)))


@functools.lru_cache(maxsize=1)
def clip_vocabulary() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP's vocabulary and merges, in the order open_clip's ``SimpleTokenizer`` numbers them:
    256 byte characters, the same with ``</w>``, 48 894 merges, then start and end of text
    (49 406, 49 407)."""
    import gzip

    with gzip.open(bpe_vocabulary_file()) as fh:
        lines = fh.read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [a + "</w>" for a in alphabet] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def build_clip_tokenizer():
    """transformers' ``CLIPTokenizer`` built offline from open_clip's BPE file (the ids of
    open_clip's tokenizer; padding with end-of-text and an attention mask, as SAM 3's processor)."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocabulary()
    return CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=TEXT_LENGTH)


def tiny_sam3_config():
    """A ``Sam3Config`` of the real design at tiny sizes (width 32, 2 ViT layers with one global,
    256 px, 16 queries, CLIP text width 32 with 32 positions)."""
    from transformers import CLIPTextConfig, Sam3Config, Sam3VisionConfig, Sam3ViTConfig

    grid = TINY_INPUT // TINY_PATCH
    small = dict(hidden_size=TINY_WIDTH, num_attention_heads=2, intermediate_size=2 * TINY_WIDTH)
    return Sam3Config(
        vision_config=Sam3VisionConfig(
            backbone_config=Sam3ViTConfig(
                num_hidden_layers=2, image_size=TINY_INPUT, patch_size=TINY_PATCH, window_size=grid // 2,
                global_attn_indexes=[1], pretrain_image_size=TINY_INPUT // 2, **small),
            fpn_hidden_size=TINY_WIDTH, backbone_feature_sizes=[[4 * grid] * 2, [2 * grid] * 2, [grid] * 2]),
        text_config=CLIPTextConfig(vocab_size=49408, projection_dim=TINY_WIDTH, num_hidden_layers=2,
                                   max_position_embeddings=TEXT_LENGTH, hidden_act="gelu", **small),
        geometry_encoder_config=dict(num_layers=1, **small),
        detr_encoder_config=dict(num_layers=1, **small),
        detr_decoder_config=dict(num_layers=2, num_queries=TINY_QUERIES, **small),
        mask_decoder_config=dict(hidden_size=TINY_WIDTH, num_attention_heads=2),
    )


def build_tiny_processor():
    """``Sam3Processor`` for the tiny model: the offline CLIP tokenizer, images resized to 256 px
    (masks 64 px), mean and std 0.5 as the real one."""
    from transformers import Sam3Processor

    return Sam3Processor(image_processor=tiny_image_processor(), tokenizer=build_clip_tokenizer(),
                         target_size=TINY_INPUT)


def tiny_image_processor():
    """The tiny model's ``Sam3ImageProcessor`` (also SAM 3's tracker's): 256 px, masks 64 px, mean and std 0.5."""
    from transformers import Sam3ImageProcessor

    grid = TINY_INPUT // TINY_PATCH
    return Sam3ImageProcessor(size={"height": TINY_INPUT, "width": TINY_INPUT},
                              mask_size={"height": 4 * grid, "width": 4 * grid},
                              image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])


def _liven_tiny_sam3(model) -> None:
    """Make random outputs exercise every branch of the fusion: confident presence (about 0.9),
    query scores spread over (0, 1) so that some pass a 0.5 threshold, crisp masks. Still meaningless."""
    with torch.no_grad():
        head = model.detr_decoder.presence_head.layer3
        head.weight.mul_(0.1)
        head.bias.fill_(2.0)
        model.dot_product_scoring.query_proj.weight.mul_(30.0)
        model.mask_decoder.instance_projection.weight.mul_(30.0)  # mask logits of a few units
        model.mask_decoder.mask_embedder.layers[-1].weight.mul_(600.0)
        model.mask_decoder.semantic_projection.weight.mul_(30.0)


def build_tiny_sam3(seed: int = TINY_SEED):
    """``(model, processor)``: a random tiny ``Sam3Model`` (float32, eval mode) and its processor.
    The same ``seed`` always gives the same weights; the global RNG is left untouched."""
    from transformers import Sam3Model

    processor = build_tiny_processor()
    with seeded(seed):
        model = Sam3Model(tiny_sam3_config())
        _liven_tiny_sam3(model)
    return model.eval(), processor


def random_sam3(device, dtype: torch.dtype = torch.float32):
    """The full SAM 3 architecture (``Sam3Config()`` defaults: 1008 px, 200 queries), seeded random
    weights in ``dtype``, with SAM 3's image processor and a CLIP tokenizer built offline."""
    from transformers import Sam3Config, Sam3ImageProcessor, Sam3Model, Sam3Processor

    announce_random("SAM 3 (Sam3Config())")
    with seeded(TINY_SEED), torch.device(device):
        model = Sam3Model(Sam3Config())
    model = model.to(device=device, dtype=dtype).eval()
    processor = Sam3Processor(image_processor=Sam3ImageProcessor(), tokenizer=build_clip_tokenizer())
    size = model.config.vision_config.backbone_config.image_size
    size = int(size[0] if isinstance(size, (list, tuple)) else size)
    return Sam3Bundle(model, processor, torch.device(device), dtype, "Sam3Config() random", False, size)
