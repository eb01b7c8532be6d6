"""Build every model the suite uses, with real weights or as tiny random stand-ins.

One public function per model: :func:`load_sam`, :func:`load_clip`, :func:`load_qwen`.
Each takes ``profile`` ("full" or "tiny", default ``$RS_HELPERS_PROFILE`` or full) and goes
through the same code for real and tiny weights: the architecture is built, then a
checkpoint (downloaded, cached, a local file, or one a test wrote) is loaded into it.
Tiny models are seeded, small and meaningless; loading one prints a loud warning.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch

from .device import pick_device, pick_dtype
from .errors import BadInputError, WeightsUnavailableError
from .profile import announce_tiny, get_profile
from .weights import SAM_CHECKPOINTS, cache_dir, fetch, host_reachable, offline_message

SAM_VARIANTS = ("vit_b", "vit_l", "vit_h")
DEFAULT_SAM = "vit_l"
DEFAULT_CLIP = "ViT-B-16"
DEFAULT_CLIP_PRETRAINED = "openai"
DEFAULT_QWEN = "Qwen/Qwen3-VL-2B-Instruct"
TINY_SEED = 0
TINY_CLIP_NAME = "rs-tiny-clip"
_RESOURCES = Path(__file__).parent / "resources"


@contextlib.contextmanager
def _seeded(seed: int):
    """Fork the global RNG so that tiny models are identical on every build."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


# --------------------------------------------------------------------------- SAM
def build_tiny_sam() -> torch.nn.Module:
    """A SAM with the real architecture but tiny sizes (256 px input, 32-d prompts)."""
    from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder, Sam,
                                           TwoWayTransformer)

    img_size, patch, prompt_dim = 256, 16, 32
    grid = img_size // patch
    with _seeded(TINY_SEED):
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


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0][:limit] if text else type(exc).__name__)


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


def load_weights_file(path: str | Path, what: str, fix: str, tensors_only: bool = True,
                      mmap: bool = False) -> dict:
    """A state dict from a torch checkpoint, loaded with ``weights_only=True``: tensors and plain
    values only, so a pickle that would run code is refused, never run. Every failure (an empty,
    truncated or text file, a pickle of other objects, not a dict [of tensors, with
    ``tensors_only``]) is a :class:`WeightsUnavailableError` naming ``path`` and ``fix`` (what to
    do). ``mmap``: map the file instead of reading it (a check that costs no memory)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise WeightsUnavailableError(f"{what} checkpoint {path} cannot be read ({exc.strerror or exc}); "
                                      f"{fix}") from None
    if size == 0:
        raise WeightsUnavailableError(f"{what} checkpoint {path} is empty (0 bytes); {fix}")
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except RuntimeError as exc:
            if not (mmap and "mmap" in str(exc)):
                raise
            state = torch.load(path, map_location="cpu", weights_only=True)  # an old (non-zip) file
    except Exception as exc:  # noqa: BLE001 - EOFError, UnpicklingError, RuntimeError, zip errors, ...
        raise WeightsUnavailableError(
            f"{what} checkpoint {path} cannot be loaded ({type(exc).__name__}: {_first_line(exc, 160)}); {fix}"
        ) from None
    usable = isinstance(state, dict) and bool(state)
    if usable and tensors_only:
        usable = all(isinstance(v, torch.Tensor) for v in state.values())
    if not usable:
        raise WeightsUnavailableError(f"{what} checkpoint {path} does not hold a state dict of tensors "
                                      f"(it holds {type(state).__name__}); {fix}")
    return state


# --------------------------------------------------------------------------- CLIP
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
    clip_cache = cache_dir() / "open_clip"
    if pretrained and not local_file and not _clip_cached(name, pretrained, clip_cache):
        from .weights import check_cache_folder

        check_cache_folder(clip_cache)  # a download will be written there
        if not host_reachable("huggingface.co"):
            raise WeightsUnavailableError(_clip_offline(name, pretrained, clip_cache, OSError("offline")))
    if local_file and Path(pretrained).suffix not in (".safetensors", ".npz", ".npy"):
        # read it safely first: a bad file is named (not reported as "offline"), and a pickle that
        # would run code is refused here whatever open_clip's loader falls back to
        load_weights_file(pretrained, f"CLIP {name}", _clip_fix(name), tensors_only=False, mmap=True)
    try:
        with _seeded(TINY_SEED):
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=pretrained, device=device, cache_dir=str(clip_cache),
                force_quick_gelu=clip_quick_gelu(name, pretrained), weights_only=True,
            )
    except Exception as exc:  # noqa: BLE001 - network, hub and loading errors differ between versions
        if local_file:
            raise WeightsUnavailableError(
                f"CLIP weights file {pretrained} does not fit {name} ({type(exc).__name__}: "
                f"{_first_line(exc, 160)}); {_clip_fix(name)}") from None
        if isinstance(exc, RuntimeError) and ("Unknown model" in str(exc) or "not found in built-ins" in str(exc)):
            raise BadInputError(f"CLIP {name!r} with pretrained={pretrained!r}: {_first_line(exc)}") from None
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


# --------------------------------------------------------------------------- Qwen-VL
@dataclass
class QwenVL:
    """A Qwen-VL model and its processor (tokenizer, image processor, chat template)."""

    model: Any
    processor: Any
    model_id: str
    adapter: str | None = None


def load_qwen(model_id: str = DEFAULT_QWEN, profile: str | None = None,
              device: str | torch.device | None = None, dtype: torch.dtype | None = None,
              adapter: str | Path | None = None) -> QwenVL:
    """Qwen3-VL (or Qwen2.5-VL) from a hub id or a local folder, with its processor.

    Tiny profile: a 2-layer Qwen3-VL built from ``Qwen3VLConfig`` with a small byte-level
    tokenizer carrying the real special tokens and chat template, unless ``model_id`` is a
    local folder (a tiny model a test saved loads through the same path as a real one).
    ``adapter``: a LoRA adapter folder made by ``rs-seg train-lora``.
    """
    device = pick_device(device)
    local = Path(model_id).expanduser()
    if get_profile(profile) == "tiny" and not local.is_dir():
        announce_tiny(f"Qwen-VL (asked for {model_id})")
        from .tiny_qwen import build_tiny_qwen

        model, processor = build_tiny_qwen(seed=TINY_SEED)
        model_id = "tiny-qwen3-vl"
        if dtype is not None:  # like a real load in bf16: exercises the same half-precision paths
            model = model.to(dtype)
    else:
        if not local.is_dir() and not _qwen_cached(model_id) and not host_reachable("huggingface.co"):
            raise WeightsUnavailableError(_qwen_offline(model_id, OSError("offline")))
        model, processor = _from_pretrained(str(local) if local.is_dir() else model_id, device, dtype)
    if adapter is not None:
        from peft import PeftModel

        adapter_dir = Path(adapter).expanduser()
        if not (adapter_dir / "adapter_config.json").is_file():
            raise BadInputError(f"{adapter_dir} is not a LoRA adapter folder (no adapter_config.json)")
        model = PeftModel.from_pretrained(model, str(adapter_dir))
    model = model.to(device).eval()
    return QwenVL(model=model, processor=processor, model_id=model_id,
                  adapter=str(adapter) if adapter else None)


def _from_pretrained(source: str, device: torch.device, dtype: torch.dtype | None):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if dtype is None:
        dtype = pick_dtype(device)
    if Path(source).is_dir():
        config_file = Path(source) / "config.json"
        if not config_file.is_file():
            raise BadInputError(f"{source} is not a saved model folder (no config.json)")
    try:
        processor = AutoProcessor.from_pretrained(source)
        model = AutoModelForImageTextToText.from_pretrained(source, dtype=dtype)
    except OSError as exc:
        if Path(source).is_dir():
            raise BadInputError(f"cannot load a model from {source}: {str(exc).splitlines()[0]}") from None
        raise WeightsUnavailableError(_qwen_offline(source, exc)) from None
    return model, processor


def _qwen_cached(model_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(model_id, "config.json"), str)


def _qwen_offline(model_id: str, exc: Exception) -> str:
    from huggingface_hub.constants import HF_HUB_CACHE

    return offline_message(f"Qwen-VL weights {model_id}", f"https://huggingface.co/{model_id}",
                           Path(HF_HUB_CACHE), reason=str(exc)[:80], cache_env="HF_HOME") + (
        " A downloaded model folder can also be passed instead of the hub id.")
