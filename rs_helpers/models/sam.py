"""Build every model the suite uses, with real weights or as tiny random stand-ins.

One public function per model: :func:`load_sam`, :func:`load_clip`, :func:`load_qwen`.
Each takes ``profile`` ("full", "classroom" or "tiny", default ``$RS_HELPERS_PROFILE`` or full) and goes
through the same code for real and tiny weights: the architecture is built, then a
checkpoint (downloaded, cached, a local file, or one a test wrote) is loaded into it.
Tiny models are seeded, small and meaningless; loading one prints a loud warning. A timing run
(``$RS_HELPERS_RANDOM_WEIGHTS=1``) builds the real architectures with random weights instead
(:mod:`rs_helpers.models.random_weights`), as loudly.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import torch

from rs_helpers.device import pick_device
from rs_helpers.errors import BadInputError, WeightsUnavailableError
from rs_helpers.models.checkpoints import (
    SAM_CHECKPOINTS,
    fetch,
    first_line,
    load_weights_file,
)
from rs_helpers.profile import TINY_SEED, announce_tiny, get_profile, random_weights, seeded

SAM_VARIANTS = ("vit_b", "vit_l", "vit_h")
DEFAULT_SAM = "vit_l"


# --------------------------------------------------------------------------- SAM
def build_tiny_sam() -> torch.nn.Module:
    """A SAM with the real architecture but tiny sizes (256 px input, 32-d prompts)."""
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    img_size, patch, prompt_dim = 256, 16, 32
    grid = img_size // patch
    with seeded(TINY_SEED):
        sam = Sam(
            image_encoder=ImageEncoderViT(
                depth=2, embed_dim=64, img_size=img_size, mlp_ratio=4,
                norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=2, patch_size=patch,
                qkv_bias=True, use_rel_pos=True, global_attn_indexes=(1,), window_size=4,
                out_chans=prompt_dim,
            ),
            prompt_encoder=PromptEncoder(
                embed_dim=prompt_dim, image_embedding_size=(grid, grid),
                input_image_size=(img_size, img_size), mask_in_chans=8,
            ),
            mask_decoder=MaskDecoder(
                num_multimask_outputs=3,
                transformer=TwoWayTransformer(depth=2, embedding_dim=prompt_dim, mlp_dim=64, num_heads=2),
                transformer_dim=prompt_dim, iou_head_depth=3, iou_head_hidden_dim=32,
            ),
        )
        _liven_tiny_sam(sam)
    return sam


def _liven_tiny_sam(sam: torch.nn.Module) -> None:
    """Make a random SAM's output pass the default filters, so tiny runs exercise the whole
    pipeline (masks with large logits, predicted IoU near 0.95). Still meaningless masks."""
    with torch.no_grad():
        for mlp in sam.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(100.0)
            mlp.layers[-1].bias.mul_(100.0)
        head = sam.mask_decoder.iou_prediction_head.layers[-1]
        head.weight.mul_(0.01)
        head.bias.fill_(0.95)


def build_sam_architecture(variant: str) -> torch.nn.Module:
    """An untrained SAM of the given variant (``vit_b``, ``vit_l``, ``vit_h`` or ``tiny``)."""
    if variant == "tiny":
        return build_tiny_sam()
    if variant not in SAM_VARIANTS:
        raise BadInputError(f"unknown SAM variant {variant!r}; choose one of {', '.join(SAM_VARIANTS)}")
    from segment_anything import sam_model_registry

    return sam_model_registry[variant](checkpoint=None)


def load_sam(variant: str = DEFAULT_SAM, checkpoint: str | Path | None = None,
             profile: str | None = None, device: str | torch.device | None = None) -> torch.nn.Module:
    """SAM ready for inference (eval mode, on ``device``).

    Full profile: ``checkpoint`` (a local file) or the official checkpoint for ``variant``,
    downloaded once into the cache. Tiny profile: the tiny architecture, random (seeded) or
    loaded from ``checkpoint`` when a test saved one. The checkpoint is read before the model is
    built, with ``weights_only=True`` (:func:`load_weights_file`): an empty, text, truncated or
    code-running file, or one saved from another variant, is a :class:`WeightsUnavailableError`
    (exit 3) naming the file and what to do.
    """
    if get_profile(profile) == "tiny" or variant == "tiny":
        announce_tiny(f"SAM (asked for {variant})")
        variant = "tiny"
    if variant != "tiny" and variant not in SAM_VARIANTS:
        raise BadInputError(f"unknown SAM variant {variant!r}; choose one of {', '.join(SAM_VARIANTS)}")
    if variant != "tiny" and checkpoint is None and random_weights(profile):
        from rs_helpers.models.random_weights import random_sam

        return random_sam(variant).eval().to(pick_device(device))
    state = None
    if checkpoint is None and variant != "tiny":
        checkpoint = fetch(SAM_CHECKPOINTS[variant])  # before building: offline fails at once
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise BadInputError(f"SAM checkpoint {path} does not exist")
        state = load_weights_file(path, f"SAM {variant}", _sam_fix(variant))
    sam = build_sam_architecture(variant)
    if state is not None:
        try:
            sam.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError, KeyError, ValueError) as exc:
            held = _sam_variant_of(state)
            which = f"; it holds SAM {held} weights: pass --sam {held}" if held and held != variant else ""
            raise WeightsUnavailableError(
                f"{path} does not hold SAM {variant} weights ({' '.join(str(exc).split())[:200]}){which}; "
                f"{_sam_fix(variant)}"
            ) from None
    return sam.eval().to(pick_device(device))


def _sam_fix(variant: str) -> str:
    """What to do about an unusable SAM checkpoint."""
    if variant in SAM_CHECKPOINTS:
        return (f"re-download it from {SAM_CHECKPOINTS[variant].url} or pass the --sam variant it was "
                "saved for")
    return "pass a checkpoint saved from the same SAM architecture (or no --sam-checkpoint)"


def _sam_variant_of(state) -> str | None:
    """The SAM variant a state dict was saved from, told by its patch embedding width."""
    widths = {768: "vit_b", 1024: "vit_l", 1280: "vit_h", 64: "tiny"}
    try:
        return widths.get(int(state["image_encoder.patch_embed.proj.weight"].shape[0]))
    except (KeyError, TypeError, AttributeError, IndexError, ValueError):
        return None


# --------------------------------------------------------------------------- CLIP


# --------------------------------------------------------------------------- Qwen-VL

