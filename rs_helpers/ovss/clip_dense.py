"""Stage 2 of open-vocabulary segmentation: a dense (per-pixel) CLIP class-probability map.

CLIP scores a whole image against text; its patch tokens carry a weaker, noisier version of the
same signal. Training-free methods (MaskCLIP, ClearCLIP, SegEarth-OV) sharpen it with a few
inference-time changes, each a switch in :class:`DenseSettings`:

- the image is resized so that its long side is 448 and read by a sliding 224 px window with
  stride 112 (all windows in one batch), or whole with interpolated positional embeddings;
- the last transformer block uses self-self attention (softmax(qq^T) + softmax(kk^T) +
  softmax(vv^T)) and drops its residual connection and MLP;
- the "global bias" is removed: ``lambda`` times the CLS token's class similarity is
  subtracted from every patch's similarity (SegEarth-OV; lambda 0.3);
- patch-text cosine similarities are multiplied by a logit scale (50), soft-maxed over every
  (class, synonym) row and max-pooled over each class's synonyms;
- pixels whose best probability is below a threshold go to the background class, if any.

Works on open_clip's ``VisionTransformer`` (ViT-B-16 and the tiny test model).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from rs_helpers.errors import BadInputError
from rs_helpers.ovss.vocabulary import (
    BACKGROUND_NAMES,
    TextEmbeddings,
    Vocabulary,
    encode_vocabulary,
    parse_classes,
)

ATTENTION_TERMS = ("qq", "kk", "vv", "qk")


@dataclass(frozen=True)
class DenseSettings:
    """Every ingredient of the dense map. Defaults follow SegEarth-OV (several unconfirmed for
    the paper: see method.md)."""

    long_side: int = 448
    sliding_window: bool = True
    window: int = 224
    stride: int = 112
    modified_last_block: bool = True
    attention: str = "qq+kk+vv"  # '+'-joined terms from qq, kk, vv, qk (qk = ordinary attention)
    cls_lambda: float = 0.3  # 0 switches the global-bias removal off
    templates: str | tuple[str, ...] = "imagenet80"
    synonyms: bool = True  # False: only the first name of each class
    logit_scale: float = 50.0
    background_names: tuple[str, ...] = BACKGROUND_NAMES
    background_threshold: float = 0.0  # pixels with max probability below go to background


@dataclass
class DenseMap:
    """Per-pixel class probabilities and labels of one image."""

    probs: np.ndarray  # C x H x W float32, sums to 1 over classes before max-pooling synonyms
    labels: np.ndarray  # H x W int64: argmax (with the background threshold applied)
    similarity: np.ndarray  # C x h x w float32: cosine similarity at CLIP's resolution (max over synonyms)
    class_names: list[str]
    background_index: int | None = None


# --------------------------------------------------------------------------- image -> tensor
def resize_long_side(height: int, width: int, long_side: int) -> tuple[int, int]:
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def to_tensor(image_rgb: np.ndarray, size_hw: tuple[int, int], mean, std, device) -> torch.Tensor:
    """uint8 H x W x 3 -> normalised 1 x 3 x h x w float tensor resized (antialiased) to ``size_hw``."""
    writable = np.require(image_rgb, requirements=["C", "W"])  # copies read-only (PIL) arrays only
    x = torch.from_numpy(writable).to(device).permute(2, 0, 1)[None].float() / 255
    if tuple(x.shape[-2:]) != tuple(size_hw):
        x = F.interpolate(x, size=size_hw, mode="bilinear", align_corners=False, antialias=True)
    mean_t = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=device).view(1, 3, 1, 1)
    return (x - mean_t) / std_t


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Window offsets covering ``length`` (the last window is flush with the end)."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window, stride)) + [length - window]
    return sorted(set(starts))


# --------------------------------------------------------------------------- the modified ViT
def _check_visual(visual) -> None:
    needed = ("conv1", "class_embedding", "positional_embedding", "transformer", "ln_post")
    if not all(hasattr(visual, n) for n in needed) or getattr(visual, "attn_pool", None) is not None:
        raise BadInputError("the dense CLIP map needs an open_clip VisionTransformer with a class "
                            f"token (got {type(visual).__name__})")


def interpolate_pos_embed(pos: torch.Tensor, grid: tuple[int, int], new_grid: tuple[int, int]) -> torch.Tensor:
    """(1 + gh*gw) x D positional embedding resampled (bicubic) to ``new_grid`` patches."""
    if tuple(grid) == tuple(new_grid):
        return pos
    cls_pos, patch_pos = pos[:1], pos[1:]
    dim = pos.shape[-1]
    patch_pos = patch_pos.reshape(1, grid[0], grid[1], dim).permute(0, 3, 1, 2)
    patch_pos = F.interpolate(patch_pos.float(), size=new_grid, mode="bicubic", align_corners=False)
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(-1, dim).to(pos.dtype)
    return torch.cat([cls_pos, patch_pos])


def _self_self_attention(block, x: torch.Tensor, terms: tuple[str, ...]) -> torch.Tensor:
    """The last block's attention with q-q / k-k / v-v affinities, no residual and no MLP
    (ClearCLIP / SegEarth-OV). ``x``: B x L x D after ``ln_1``."""
    attn = block.attn
    heads = attn.num_heads
    b, n, d = x.shape
    q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.reshape(b, n, heads, d // heads).transpose(1, 2) for t in (q, k, v))
    scale = (d // heads) ** -0.5
    pairs = {"qq": (q, q), "kk": (k, k), "vv": (v, v), "qk": (q, k)}
    weights = sum(torch.softmax(a @ c.transpose(-2, -1) * scale, dim=-1) for a, c in (pairs[t] for t in terms))
    out = (weights @ v).transpose(1, 2).reshape(b, n, d)
    out = attn.out_proj(out)
    ln_attn = getattr(block, "ln_attn", None)
    return ln_attn(out) if ln_attn is not None else out


def encode_tokens(visual, pixels: torch.Tensor, settings: DenseSettings = DenseSettings()) -> torch.Tensor:
    """Projected CLS and patch tokens of a batch: B x (1 + h*w) x E, with the modified last
    block when ``settings.modified_last_block``. One forward pass for the whole batch."""
    _check_visual(visual)
    grid = tuple(visual.grid_size)
    x = visual.conv1(pixels.to(visual.conv1.weight.dtype))
    new_grid = tuple(x.shape[-2:])
    x = x.flatten(2).transpose(1, 2)
    cls = visual.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
    x = torch.cat([cls, x], dim=1)
    x = x + interpolate_pos_embed(visual.positional_embedding, grid, new_grid).to(x.dtype)
    x = visual.ln_pre(x)
    batch_first = getattr(visual.transformer, "batch_first", False)
    blocks = list(visual.transformer.resblocks)
    last = blocks[-1] if settings.modified_last_block else None
    x = x if batch_first else x.transpose(0, 1)
    for block in blocks[:-1] if last is not None else blocks:
        x = block(x)
    x = x if batch_first else x.transpose(0, 1)
    if last is not None:
        terms = tuple(t.strip() for t in settings.attention.split("+") if t.strip())
        if not terms or any(t not in ATTENTION_TERMS for t in terms):
            raise BadInputError(f"attention {settings.attention!r}: join terms from {', '.join(ATTENTION_TERMS)} with '+'")
        x = _self_self_attention(last, last.ln_1(x), terms)
    x = visual.ln_post(x)
    if visual.proj is not None:
        x = x @ visual.proj
    return x


# --------------------------------------------------------------------------- similarity maps
def _window_logits(clip, batch: torch.Tensor, text: TextEmbeddings, settings: DenseSettings) -> torch.Tensor:
    """Row similarities (patch minus lambda * CLS) for a batch of crops: B x R x gh x gw."""
    tokens = F.normalize(encode_tokens(clip.model.visual, batch, settings).float(), dim=-1)
    emb = text.embeddings.to(tokens.device)
    logits = tokens[:, 1:] @ emb.T  # B x P x R
    if settings.cls_lambda:
        logits = logits - settings.cls_lambda * (tokens[:, :1] @ emb.T)
    patch = clip.patch_size
    gh, gw = batch.shape[-2] // patch, batch.shape[-1] // patch
    return logits.transpose(1, 2).reshape(batch.shape[0], -1, gh, gw)


@torch.no_grad()
def similarity_map(clip, image_rgb: np.ndarray, text: TextEmbeddings,
                   settings: DenseSettings = DenseSettings()) -> torch.Tensor:
    """Per-row (class synonym) similarity at the resized resolution: R x h x w, with h, w the
    image resized to ``settings.long_side``."""
    patch = clip.patch_size
    h, w = resize_long_side(image_rgb.shape[0], image_rgb.shape[1], settings.long_side)
    device = clip.device
    if settings.sliding_window:
        win = settings.window
        if win % patch or settings.stride < 1:
            raise BadInputError(f"window {win} must be a multiple of the patch size {patch}; stride >= 1")
        x = to_tensor(image_rgb, (h, w), clip.mean, clip.std, device)
        ph, pw = max(h, win), max(w, win)
        x = F.pad(x, (0, pw - w, 0, ph - h))  # zero = the mean colour after normalisation
        boxes = [(y, xx) for y in window_starts(ph, win, settings.stride) for xx in window_starts(pw, win, settings.stride)]
        batch = torch.cat([x[:, :, y:y + win, xx:xx + win] for y, xx in boxes])
        logits = _window_logits(clip, batch, text, settings)  # one forward pass for every window
        logits = F.interpolate(logits, size=(win, win), mode="bilinear", align_corners=False)
        total = logits.new_zeros((logits.shape[1], ph, pw))
        count = logits.new_zeros((1, ph, pw))
        for (y, xx), tile in zip(boxes, logits):
            total[:, y:y + win, xx:xx + win] += tile
            count[:, y:y + win, xx:xx + win] += 1
        return (total / count)[:, :h, :w]
    gh, gw = max(1, round(h / patch)), max(1, round(w / patch))
    x = to_tensor(image_rgb, (gh * patch, gw * patch), clip.mean, clip.std, device)
    logits = _window_logits(clip, x, text, settings)
    return F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)[0]


def probabilities(row_logits: torch.Tensor, text: TextEmbeddings, logit_scale: float,
                  out_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Softmax over rows of ``logit_scale * similarity`` then max over each class's synonyms:
    C x H x W (resized bilinearly to ``out_size`` before the softmax)."""
    if out_size is not None and tuple(row_logits.shape[-2:]) != tuple(out_size):
        row_logits = F.interpolate(row_logits[None], size=out_size, mode="bilinear", align_corners=False)[0]
    probs = torch.softmax(row_logits * logit_scale, dim=0)
    return text.pool(probs, dim=0)


def pixel_labels(probs: np.ndarray, background_index: int | None = None, threshold: float = 0.0) -> np.ndarray:
    """Argmax class per pixel; where the best probability is below ``threshold``, the
    background class (when there is one)."""
    labels = probs.argmax(0)
    if background_index is not None and threshold > 0:
        labels[probs.max(0) < threshold] = background_index
    return labels


def dense_map(clip, image_rgb: np.ndarray, classes: str | Vocabulary,
              settings: DenseSettings = DenseSettings(), out_size: tuple[int, int] | None = None,
              text: TextEmbeddings | None = None, text_cache=None) -> DenseMap:
    """The dense CLIP map of ``image_rgb`` (uint8 H x W x 3) for ``classes``, at ``out_size``
    (default: the image size). ``classes``: a class string or a :class:`Vocabulary`; ``text``:
    its embeddings when already computed, else they come from ``text_cache`` (a
    :class:`rs_helpers.ovss.vocabulary.TextCache`; default the shared one)."""
    vocab = parse_classes(classes)
    if text is None:
        kwargs = {} if text_cache is None else {"cache": text_cache}
        text = encode_vocabulary(clip, vocab, settings.templates, settings.synonyms, **kwargs)
    elif text.n_classes != len(vocab):
        raise BadInputError(f"text embeddings have {text.n_classes} classes, the vocabulary {len(vocab)}")
    out_size = tuple(out_size or image_rgb.shape[:2])
    rows = similarity_map(clip, image_rgb, text, settings)
    probs = probabilities(rows, text, settings.logit_scale, out_size).cpu().numpy().astype(np.float32)
    similarity = text.pool(rows, dim=0).cpu().numpy().astype(np.float32)
    background = vocab.background_index(settings.background_names)
    labels = pixel_labels(probs, background, settings.background_threshold)
    return DenseMap(probs=probs, labels=labels, similarity=similarity, class_names=vocab.names,
                    background_index=background)
