"""Click segmenters beyond SAM 1: SAM 2.1 and SAM 3's tracker, through transformers, real or tiny.

The generative branch sends a VLM's clicks to a promptable segmenter. Besides segment-anything's SAM
(:mod:`rs_helpers.models.sam`), :func:`load_click_segmenter` gives ``"sam2"`` (``Sam2Model`` +
``Sam2Processor``, SAM 2.1, default ``facebook/sam2.1-hiera-large``; a size word tiny, small,
base-plus or large means ``facebook/sam2.1-hiera-<size>``) or ``"sam3"`` (``Sam3TrackerModel`` +
``Sam3TrackerProcessor``: SAM 3's point-promptable tracker, from the gated ``facebook/sam3``), or
either from a folder written by ``save_pretrained``. Both answer clicks the way SAM 1 does (three
candidate masks or one, each with a predicted IoU); :mod:`rs_helpers.sam.tracker_predictor` wraps
them in SAM 1's predictor interface.

Getting the weights reuses SAM 3's rules (:mod:`rs_helpers.models.sam3`): every failure (gated
without a token, offline without the cache, a refused token) is one :class:`WeightsUnavailableError`
(exit 3); the dtype is bf16 on GPUs that compute it natively, fp16 on a T4, fp32 on the CPU.

The tiny profile builds seeded random models of both designs (Hiera with 4 stages of one or two
blocks; SAM 3's ViT of the tiny SAM 3; width 32, 256 px, masks at 64 px) and their processors
offline. Their masks are MEANINGLESS: they only exercise the code.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rs_helpers.device import pick_device, pick_dtype
from rs_helpers.errors import BadInputError, WeightsUnavailableError
from rs_helpers.models.checkpoints import first_line
from rs_helpers.models.sam3 import DEFAULT_SAM3, _input_size, _reason, check_hub_access, sam3_status, sam3_unavailable
from rs_helpers.profile import TINY_SEED, announce_tiny, get_profile, random_weights, seeded

KINDS = ("sam2", "sam3")
DEFAULT_SAM2 = "facebook/sam2.1-hiera-large"
SAM2_SIZES = ("tiny", "small", "base-plus", "large")  # facebook/sam2.1-hiera-<size>
DEFAULT_MODELS = {"sam2": DEFAULT_SAM2, "sam3": DEFAULT_SAM3}
NAMES = {"sam2": "SAM 2.1", "sam3": "SAM 3 tracker"}
WEIGHTS = {"sam2": "SAM 2.1", "sam3": "SAM 3"}  # whose weights a failed download names
TINY_IDS = {"sam2": "tiny-sam2", "sam3": "tiny-sam3-tracker"}
MODEL_TYPES = {"sam2": "sam2", "sam3": "sam3"}  # a saved folder's config.json model_type starts so

# The tiny designs: 256 px in, 16 px per prompt-grid cell (a 16 x 16 embedding, masks at 64 x 64), width 32.
TINY_INPUT = 256
TINY_WIDTH = 32
TINY_HIERA_DIMS = (16, 32, 64, 128)


@dataclass
class ClickSegmenter:
    """A click-promptable segmenter with what running it needs: its processor (resizing, click
    coordinates, mask post-processing), where and in which precision it runs, and what it is."""

    model: Any
    processor: Any
    device: torch.device
    dtype: torch.dtype
    model_id: str
    tiny: bool
    kind: str  # "sam2" or "sam3"

    @property
    def name(self) -> str:
        return NAMES[self.kind]

    @property
    def label(self) -> str:
        """How outputs name it, e.g. ``SAM 2.1 facebook/sam2.1-hiera-large``."""
        return f"{self.name} {self.model_id}"


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise BadInputError(f"click segmenter {kind!r}: choose one of {', '.join(KINDS)} (or SAM 1: load_sam)")
    return kind


def resolve_model_id(kind: str, model_id: str | None = None) -> str:
    """The model ``model_id`` names: the default when None, ``facebook/sam2.1-hiera-<size>`` for a SAM 2.1
    size word, a folder's absolute path, else the hub id as given (so that equal models record equally)."""
    kind = check_kind(kind)
    text = str(model_id).strip() if model_id is not None else ""
    if not text:
        return DEFAULT_MODELS[kind]
    if kind == "sam2" and text.lower() in SAM2_SIZES:
        return f"facebook/sam2.1-hiera-{text.lower()}"
    local = Path(text).expanduser()
    return str(local.resolve()) if local.is_dir() else text


# --------------------------------------------------------------------------- loading
def load_click_segmenter(kind: str, model_id: str | None = None, profile: str | None = None,
                         device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> ClickSegmenter:
    """SAM 2.1 (``kind="sam2"``) or SAM 3's tracker (``"sam3"``) ready for inference (eval mode, on
    ``device``, in ``dtype``).

    Full profile: ``model_id`` (see :func:`resolve_model_id`; a hub id through the Hugging Face cache, or
    a saved model folder). Tiny profile: :func:`build_tiny_click_segmenter` (float32 unless ``dtype`` is
    given), unless ``model_id`` is a folder (a tiny model a test saved loads like a real one).
    """
    source = resolve_model_id(kind, model_id)
    device = pick_device(device)
    local = Path(source)
    if get_profile(profile) == "tiny" and not local.is_dir():
        announce_tiny(f"{NAMES[kind]} (asked for {source})")
        model, processor = build_tiny_click_segmenter(kind, seed=TINY_SEED)
        dtype = dtype or torch.float32
        model = model.to(device=device, dtype=dtype).eval()
        return ClickSegmenter(model, processor, device, dtype, TINY_IDS[kind], True, kind)
    if not local.is_dir() and random_weights(profile):
        raise BadInputError(f"a timing run with random weights builds SAM, CLIP, Qwen-VL and SAM 3, not "
                            f"{NAMES[kind]}; unset RS_HELPERS_RANDOM_WEIGHTS or pass a saved model folder")
    dtype = dtype or pick_dtype(device)
    if local.is_dir():
        _check_folder(kind, local)
        model, processor = _from_pretrained(kind, source, dtype, local_only=True)
    else:
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", source):
            sizes = f", a size word ({', '.join(SAM2_SIZES)})" if kind == "sam2" else ""
            raise BadInputError(f"{NAMES[kind]} model {source!r} is neither a hub id (ORG/NAME, e.g. "
                                f"{DEFAULT_MODELS[kind]}){sizes} nor a saved model folder")
        model, processor = _from_pretrained(kind, source, dtype, local_only=check_hub_access(source, WEIGHTS[kind]))
    model = model.to(device=device, dtype=dtype).eval()
    size, resized = _input_size(model), (getattr(processor.image_processor, "size", {}) or {}).get("height")
    if resized is not None and resized != size:
        raise WeightsUnavailableError(f"{source}: the processor resizes to {resized} px but the model takes "
                                      f"{size} px; re-download the model folder")
    return ClickSegmenter(model, processor, device, dtype, source, False, kind)


def _check_folder(kind: str, folder: Path) -> None:
    """A saved folder of the family ``kind`` asks for: a SAM 2 folder given to ``--segmenter sam3`` (or
    any other model) would load with random weights where the names differ, so it is refused."""
    config = folder / "config.json"
    if not config.is_file():
        raise BadInputError(f"{folder} is not a saved {NAMES[kind]} folder (no config.json)")
    try:
        model_type = str(json.loads(config.read_text(encoding="utf-8")).get("model_type", ""))
    except (OSError, ValueError, AttributeError) as exc:
        raise BadInputError(f"{config}: cannot read it ({first_line(exc, 120)})") from None
    if not model_type.startswith(MODEL_TYPES[kind]):
        other = next((k for k, prefix in MODEL_TYPES.items() if model_type.startswith(prefix)), None)
        hint = f": use --segmenter {other}" if other else ""
        raise BadInputError(f"{folder} holds a {model_type or 'unnamed'} model, not {NAMES[kind]}{hint}")


def _classes(kind: str):
    """The model and processor classes of ``kind``."""
    if kind == "sam2":
        from transformers import Sam2Model, Sam2Processor

        return Sam2Model, Sam2Processor
    from transformers import Sam3TrackerModel, Sam3TrackerProcessor

    return Sam3TrackerModel, Sam3TrackerProcessor


def _from_pretrained(kind: str, source: str, dtype: torch.dtype, local_only: bool):
    """Model and processor from the hub (or a folder); every hub failure -> exit 3, a folder's -> exit 2."""
    model_class, processor_class = _classes(kind)
    try:
        processor = processor_class.from_pretrained(source, local_files_only=local_only)
        model = model_class.from_pretrained(source, dtype=dtype, local_files_only=local_only)
    except (OSError, ValueError, KeyError) as exc:  # the hub's errors are OSErrors; a bad config a ValueError
        if Path(source).is_dir():
            raise BadInputError(f"cannot load {NAMES[kind]} from {source}: {first_line(exc)}") from None
        raise WeightsUnavailableError(sam3_unavailable(source, _reason(exc), WEIGHTS[kind])) from None
    return model, processor


def sam2_status(model_id: str = DEFAULT_SAM2) -> dict:
    """For ``rs-seg doctor``, without the network: as :func:`rs_helpers.models.sam3.sam3_status`."""
    return sam3_status(model_id)


# --------------------------------------------------------------------------- the tiny profile
def tiny_sam2_config():
    """A ``Sam2Config`` of SAM 2.1's design at tiny sizes: Hiera with 4 stages (widths 16-128, one or
    two blocks, one global), FPN width 32, 256 px, prompt and mask decoder width 32."""
    from transformers import Sam2Config, Sam2HieraDetConfig, Sam2VisionConfig

    grid = TINY_INPUT // 16
    backbone = Sam2HieraDetConfig(hidden_size=TINY_HIERA_DIMS[0], num_attention_heads=1,
                                  image_size=[TINY_INPUT, TINY_INPUT], blocks_per_stage=[1, 1, 2, 1],
                                  embed_dim_per_stage=list(TINY_HIERA_DIMS), num_attention_heads_per_stage=[1, 1, 2, 2],
                                  window_size_per_stage=[8, 4, 4, 2], global_attention_blocks=[3])
    vision = Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=list(TINY_HIERA_DIMS[::-1]),
                              backbone_feature_sizes=[[4 * grid] * 2, [2 * grid] * 2, [grid] * 2],
                              fpn_hidden_size=TINY_WIDTH)
    return Sam2Config(vision_config=vision, **_tiny_heads())


def tiny_tracker_config():
    """A ``Sam3TrackerConfig``: the tiny SAM 3's vision encoder (ViT width 32, 256 px) with tiny heads."""
    from transformers import Sam3TrackerConfig

    from rs_helpers.models.sam3 import tiny_sam3_config

    return Sam3TrackerConfig(vision_config=tiny_sam3_config().vision_config, **_tiny_heads())


def _tiny_heads() -> dict:
    return dict(prompt_encoder_config=dict(hidden_size=TINY_WIDTH, image_size=TINY_INPUT, patch_size=16,
                                           mask_input_channels=4),
                mask_decoder_config=dict(hidden_size=TINY_WIDTH, mlp_dim=2 * TINY_WIDTH, num_attention_heads=2,
                                         iou_head_hidden_dim=TINY_WIDTH))


def build_tiny_processor(kind: str):
    """The tiny model's processor, offline: 256 px; SAM 2.1's ImageNet mean and std, SAM 3's 0.5."""
    if check_kind(kind) == "sam2":
        from transformers import Sam2ImageProcessor, Sam2Processor

        grid = TINY_INPUT // 16
        image_processor = Sam2ImageProcessor(size={"height": TINY_INPUT, "width": TINY_INPUT},
                                             mask_size={"height": 4 * grid, "width": 4 * grid})
        return Sam2Processor(image_processor=image_processor)
    from transformers import Sam3TrackerProcessor

    from rs_helpers.models.sam3 import tiny_image_processor

    return Sam3TrackerProcessor(image_processor=tiny_image_processor())


def _liven(model) -> None:
    """Crisp random masks (logits of a few units, not 1e-5) and predicted IoUs that differ between the
    candidates, so that thresholds and the best-of-three choice are exercised. Still meaningless."""
    with torch.no_grad():
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.proj_out.weight.mul_(1e5)
            mlp.proj_out.bias.mul_(1e5)
        model.mask_decoder.iou_prediction_head.proj_out.weight.mul_(30.0)


def build_tiny_click_segmenter(kind: str, seed: int = TINY_SEED):
    """``(model, processor)``: a random tiny ``Sam2Model`` or ``Sam3TrackerModel`` (float32, eval mode).
    The same ``seed`` always gives the same weights; the global RNG is left untouched."""
    model_class, _ = _classes(check_kind(kind))
    processor = build_tiny_processor(kind)
    with seeded(seed):
        model = model_class(tiny_sam2_config() if kind == "sam2" else tiny_tracker_config())
        _liven(model)
    return model.eval(), processor
