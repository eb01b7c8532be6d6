"""CLIP through open_clip, with real weights or as a tiny random stand-in (:func:`load_clip`).

The architecture is built, then its weights (a pretrained tag, downloaded and cached, or a local
file) are loaded into it; the tiny profile builds a seeded, meaningless model of the real design."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from rs_helpers.device import pick_device
from rs_helpers.errors import BadInputError, WeightsUnavailableError
from rs_helpers.models.checkpoints import (
    cache_dir,
    first_line,
    host_reachable,
    load_weights_file,
    offline_message,
)
from rs_helpers.profile import TINY_SEED, announce_tiny, get_profile, random_weights, seeded

DEFAULT_CLIP = "ViT-B-16"
DEFAULT_CLIP_PRETRAINED = "openai"
TINY_CLIP_NAME = "rs-tiny-clip"
_RESOURCES = Path(__file__).resolve().parents[1] / "resources"


@dataclass
class ClipModel:
    """An open_clip model with what the pipeline needs around it."""

    model: torch.nn.Module
    preprocess: Callable
    tokenizer: Callable
    name: str
    pretrained: str | None

    @property
    def image_size(self) -> int:
        size = self.model.visual.image_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    @property
    def patch_size(self) -> int:
        size = self.model.visual.patch_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    @property
    def mean(self) -> tuple[float, float, float]:
        return tuple(getattr(self.model.visual, "image_mean", None) or (0.48145466, 0.4578275, 0.40821073))

    @property
    def std(self) -> tuple[float, float, float]:
        return tuple(getattr(self.model.visual, "image_std", None) or (0.26862954, 0.26130258, 0.27577711))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def _register_tiny_clip() -> None:
    import open_clip

    if TINY_CLIP_NAME not in open_clip.list_models():
        open_clip.add_model_config(_RESOURCES / f"{TINY_CLIP_NAME}.json")


def load_clip(name: str = DEFAULT_CLIP, pretrained: str | None = DEFAULT_CLIP_PRETRAINED,
              profile: str | None = None, device: str | torch.device | None = None) -> ClipModel:
    """An open_clip model: ``name`` from its registry or ``hf-hub:org/repo``; ``pretrained`` a
    tag (``openai``) or a local file. Tiny profile: a 2-layer CLIP of the same design with
    open_clip's bundled tokenizer, random (seeded) or loaded from a file a test wrote.
    """
    import open_clip

    device = pick_device(device)
    if get_profile(profile) == "tiny" or name == TINY_CLIP_NAME:
        announce_tiny(f"CLIP (asked for {name})")
        _register_tiny_clip()
        name = TINY_CLIP_NAME
        if pretrained is not None and not _is_file(pretrained):
            pretrained = None
    if name.startswith("hf-hub:"):
        pretrained = None
    else:
        _check_clip_name(name)  # before any download: a typo is not a network problem
        if pretrained and _is_file(Path(str(pretrained)).expanduser()):
            pretrained = str(Path(str(pretrained)).expanduser())
        elif pretrained:
            _check_clip_tag(name, pretrained)
    local_file = bool(pretrained) and _is_file(pretrained)
    if name != TINY_CLIP_NAME and not local_file and random_weights(profile):
        from rs_helpers.models.random_weights import random_clip

        model, preprocess, tokenizer = random_clip(name, device, quick_gelu=clip_quick_gelu(name, pretrained))
        return ClipModel(model=model, preprocess=preprocess, tokenizer=tokenizer, name=name, pretrained=None)
    clip_cache = cache_dir() / "open_clip"
    if pretrained and not local_file and not _clip_cached(name, pretrained, clip_cache):
        from rs_helpers.models.checkpoints import check_cache_folder

        check_cache_folder(clip_cache)  # a download will be written there
        if not host_reachable("huggingface.co"):
            raise WeightsUnavailableError(_clip_offline(name, pretrained, clip_cache, OSError("offline")))
    if local_file and Path(pretrained).suffix not in (".safetensors", ".npz", ".npy"):
        # read it safely first: a bad file is named (not reported as "offline"), and a pickle that
        # would run code is refused here whatever open_clip's loader falls back to
        load_weights_file(pretrained, f"CLIP {name}", _clip_fix(name), tensors_only=False, mmap=True)
    try:
        with seeded(TINY_SEED):
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=pretrained, device=device, cache_dir=str(clip_cache),
                force_quick_gelu=clip_quick_gelu(name, pretrained), weights_only=True,
            )
    except Exception as exc:  # noqa: BLE001 - network, hub and loading errors differ between versions
        if local_file:
            raise WeightsUnavailableError(
                f"CLIP weights file {pretrained} does not fit {name} ({type(exc).__name__}: "
                f"{first_line(exc, 160)}); {_clip_fix(name)}") from None
        if isinstance(exc, RuntimeError) and ("Unknown model" in str(exc) or "not found in built-ins" in str(exc)):
            raise BadInputError(f"CLIP {name!r} with pretrained={pretrained!r}: {first_line(exc)}") from None
        raise WeightsUnavailableError(_clip_offline(name, pretrained, clip_cache, exc)) from None
    model.eval()
    return ClipModel(model=model, preprocess=preprocess, tokenizer=open_clip.get_tokenizer(name),
                     name=name, pretrained=pretrained)


def _is_file(path) -> bool:
    try:
        return Path(str(path)).is_file()
    except (OSError, ValueError):  # a NUL or a name too long: not a file
        return False


def _clip_fix(name: str) -> str:
    return (f"re-download it, or pass the --clip model it was saved for (a file of OpenAI weights needs "
            f"{name.removesuffix('-quickgelu')}-quickgelu)")


def check_clip(name: str, pretrained: str | None = DEFAULT_CLIP_PRETRAINED, profile: str | None = None) -> None:
    """Check ``--clip`` / ``--clip-pretrained`` without loading or downloading anything: an
    unknown model name or tag is a :class:`BadInputError` (exit 2) naming the known ones.
    Commands call it before loading SAM, so a typo is reported at once, not as "offline"."""
    if get_profile(profile) == "tiny" or name == TINY_CLIP_NAME or name.startswith("hf-hub:"):
        return
    _check_clip_name(name)
    if pretrained and not _is_file(Path(str(pretrained)).expanduser()):
        _check_clip_tag(name, pretrained)


def _check_clip_name(name: str) -> None:
    """An open_clip model name that open_clip knows, else a :class:`BadInputError` listing them."""
    import difflib

    import open_clip

    known = open_clip.list_models()
    if name.replace("/", "-") in known:
        return
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise BadInputError(f"--clip: unknown CLIP model {name!r}{hint}; open_clip knows {len(known)} "
                        "(python -c 'import open_clip; print(open_clip.list_models())'), e.g. ViT-B-16, "
                        "ViT-L-14; or give hf-hub:ORG/REPO")


def _check_clip_tag(name: str, pretrained: str) -> None:
    """A pretrained value that is neither a file nor one of the model's tags is a bad option."""
    import open_clip

    tags = open_clip.list_pretrained_tags_by_model(name.replace("/", "-"))
    if pretrained in tags or (pretrained.lower() in tags):
        return
    known = f"its tags are {', '.join(tags)}" if tags else "it has no pretrained tags (give a weights file)"
    raise BadInputError(f"--clip-pretrained {pretrained!r} is neither a file nor a pretrained tag of {name}; {known}")


def clip_quick_gelu(name: str, pretrained: str | None) -> bool:
    """Whether the weights of tag ``pretrained`` were trained with QuickGELU (all OpenAI CLIPs).

    open_clip 3 builds ``ViT-B-16`` with plain GELU and only warns when the ``openai`` tag's weights
    expect QuickGELU, which silently degrades every feature; so the activation follows the tag.
    A weights file carries no tag: for OpenAI weights in a file use the ``-quickgelu`` model name."""
    import open_clip

    if not pretrained or name.startswith("hf-hub:"):
        return False
    cfg = open_clip.get_pretrained_cfg(name, pretrained) or {}
    return bool(cfg.get("quick_gelu", False))


def _clip_hub(name: str, pretrained: str | None) -> str | None:
    import open_clip

    if name.startswith("hf-hub:"):
        return name.removeprefix("hf-hub:")
    cfg = open_clip.get_pretrained_cfg(name, pretrained) if pretrained else {}
    return (cfg or {}).get("hf_hub", "").rstrip("/") or None


def _clip_cached(name: str, pretrained: str | None, folder: Path) -> bool:
    from huggingface_hub import try_to_load_from_cache

    hub = _clip_hub(name, pretrained)
    if hub is None:
        return False
    for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
        hit = try_to_load_from_cache(hub, filename, cache_dir=str(folder))
        if isinstance(hit, str):
            return True
    return False


def _clip_offline(name: str, pretrained: str | None, folder: Path, exc: Exception) -> str:
    hub = _clip_hub(name, pretrained)
    source = f"https://huggingface.co/{hub} (open_clip_pytorch_model.bin)" if hub else f"{name}/{pretrained}"
    return offline_message(f"CLIP weights {name} ({pretrained})", source, folder, reason=str(exc)[:80]) + (
        " A downloaded weights file can also be given as the pretrained value (--clip-pretrained FILE;"
        " for OpenAI weights in a file, name the model ViT-B-16-quickgelu).")
