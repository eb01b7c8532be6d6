"""Environment check: library versions, device, cache folder and which weights are present."""
from __future__ import annotations

import importlib.metadata as md
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from rs_helpers.models.checkpoints import SAM_CHECKPOINTS, SIMFEATUP_CHECKPOINT, cache_dir

PACKAGES = ["torch", "torchvision", "segment-anything", "open_clip_torch", "transformers", "peft",
            "accelerate", "openai", "rasterio", "numpy", "matplotlib", "ipywidgets"]
CLIP_HUB = "timm/vit_base_patch16_clip_224.openai"
QWEN_HUB = "Qwen/Qwen3-VL-2B-Instruct"


@dataclass
class Check:
    name: str
    value: str
    ok: bool = True


def versions() -> list[Check]:
    out = [Check("python", platform.python_version())]
    for name in PACKAGES:
        try:
            out.append(Check(name, md.version(name)))
        except md.PackageNotFoundError:
            out.append(Check(name, "not installed", ok=name in ("ipywidgets",)))
    return out


def device_checks() -> list[Check]:
    import torch

    from rs_helpers.device import pick_device, pick_dtype

    device = pick_device()
    out = [Check("device", str(device)), Check("dtype", str(pick_dtype(device)).replace("torch.", ""))]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(0)
        out.append(Check("gpu", f"{props.name}, {props.total_memory / 2**30:.1f} GiB, "
                                f"compute capability {props.major}.{props.minor}"))
    out.append(Check("cpu threads", str(torch.get_num_threads())))
    return out


def _hub_has(repo: str, filename: str, cache: str | None = None) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(repo, filename, cache_dir=cache)
        return isinstance(hit, str) and Path(hit).exists()
    except Exception:  # an old or missing huggingface_hub
        return False


def weights_check(name: str, ckpt, path: Path) -> Check:
    """A checkpoint in the cache: present and verified, present (checked at first use), of the
    wrong size, or missing (a missing file is fine: it is downloaded when first needed)."""
    from rs_helpers.models.checkpoints import is_verified

    if not path.exists():
        return Check(name, f"missing (from {ckpt.url})")
    size = path.stat().st_size
    if ckpt.size is not None and size != ckpt.size:
        return Check(name, f"WRONG SIZE: {size:,} bytes, not {ckpt.size:,} ({path}); "
                     "the next load moves it aside and downloads it again", ok=False)
    digest = "sha256" if ckpt.sha256 else "git blob id" if ckpt.git_sha1 else "md5"
    checked = "verified" if is_verified(path, ckpt) else f"{digest} checked at first use"
    return Check(name, f"present, {checked} ({size / 2**20:.0f} MiB)")


def sam_weights_check(variant: str, ckpt, path: Path) -> Check:
    """SAM ``variant``'s checkpoint (see :func:`weights_check`)."""
    return weights_check(f"SAM {variant}", ckpt, path)


def simfeatup_check(folder: Path | None = None) -> Check:
    """SegEarth-OV's SimFeatUp upsampler (``--upsampler simfeatup``), beside SAM's weights."""
    folder = cache_dir() if folder is None else folder
    return weights_check("SimFeatUp (SegEarth-OV)", SIMFEATUP_CHECKPOINT, folder / SIMFEATUP_CHECKPOINT.filename)


def sam3_check(model_id: str | None = None) -> Check:
    """SAM 3 (``--method sam3``): a gated hub model, so whether a Hugging Face token is present
    (and from where) and whether its weights are in the Hugging Face cache; no network."""
    from rs_helpers.models.sam3 import DEFAULT_SAM3, sam3_status

    try:
        status = sam3_status(model_id or DEFAULT_SAM3)
    except Exception as exc:  # noqa: BLE001 - reported, not raised: doctor lists every problem
        return Check("SAM 3", f"cannot check ({type(exc).__name__}: {exc})", ok=False)
    token = f"token present ({status['token_source']})" if status["token"] else "no Hugging Face token"
    cached = "weights cached" if status["cached"] else f"weights not cached (hf-hub:{status['model_id']})"
    value = f"{status['model_id']}: {token}, {cached}"
    if status["gated"] and not status["cached"] and not status["token"]:
        value += f"; gated: accept its licence on {status['licence_url']} and log in (`hf auth login` or HF_TOKEN)"
    return Check("SAM 3", value)


def sam2_check(model_id: str | None = None) -> Check:
    """SAM 2.1 (``--segmenter sam2``): whether its weights are in the Hugging Face cache (no network;
    not gated, so a missing model is downloaded when first needed)."""
    from rs_helpers.models.sam_tracker import DEFAULT_SAM2, sam2_status

    try:
        status = sam2_status(model_id or DEFAULT_SAM2)
    except Exception as exc:  # noqa: BLE001 - reported, not raised: doctor lists every problem
        return Check("SAM 2.1", f"cannot check ({type(exc).__name__}: {exc})", ok=False)
    cached = "weights cached" if status["cached"] else f"weights not cached (hf-hub:{status['model_id']})"
    return Check("SAM 2.1", f"{status['model_id']}: {cached}")


def cache_check(folder: Path) -> Check:
    """The cache folder exists, or can be created, and is writable (downloads land there)."""
    from rs_helpers.files import check_outputs

    if folder.is_dir():
        state = "exists" if os.access(folder, os.W_OK) else "exists, read-only: fine while it holds the weights"
        return Check("cache folder", f"{folder} ({state})")
    try:
        check_outputs({"RS_HELPERS_CACHE": folder}, folders=["RS_HELPERS_CACHE"], create=False)
    except Exception as exc:  # noqa: BLE001 - reported, not raised: doctor lists every problem
        return Check("cache folder", f"UNUSABLE: {exc}", ok=False)
    return Check("cache folder", f"{folder} (not created yet)")


def weight_checks() -> list[Check]:
    folder = cache_dir()
    out = [cache_check(folder)]
    for variant, ckpt in SAM_CHECKPOINTS.items():
        out.append(sam_weights_check(variant, ckpt, folder / ckpt.filename))
    out.append(simfeatup_check(folder))
    clip_cached = any(_hub_has(CLIP_HUB, f, str(folder / "open_clip"))
                      for f in ("open_clip_pytorch_model.bin", "open_clip_model.safetensors"))
    out.append(Check("CLIP ViT-B-16 openai", "present" if clip_cached else f"missing (hf-hub:{CLIP_HUB})"))
    out.append(sam3_check())
    out.append(sam2_check())
    out.append(Check("Qwen3-VL-2B", "present" if _hub_has(QWEN_HUB, "config.json") else f"missing (hf-hub:{QWEN_HUB})"))
    out.append(Check("OPENAI_API_KEY", "set" if os.environ.get("OPENAI_API_KEY") else "not set (notebook 05 replays stored answers)"))
    return out


def run_checks() -> list[Check]:
    from rs_helpers.profile import get_profile

    return [Check("profile", get_profile())] + versions() + device_checks() + weight_checks()


def format_checks(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{'  ' if c.ok else '!!'} {c.name.ljust(width)}  {c.value}" for c in checks)
