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

Window logits are stitched (mean over overlaps) at the resized size, then resized bilinearly to
the output size (default: the image's) *before* the softmax, as SegEarth-OV does.

SegEarth-OV's exact path (``segearth_segmentor.py`` ``forward_slide`` / ``forward_feature``,
``configs/cfg_*.py``) is :data:`SEGEARTH_OV`: the image resized straight from full resolution
like ``cv2.resize`` (bilinear on uint8, no antialiasing; mmcv's rounding of the size); a side
shorter than the window read at its own length (padded centrally to a multiple of the patch
size, SegEarth-OV's position-embedding rule), not zero-padded to 224; its pixel statistics; and,
passed to :func:`dense_map`, the SimFeatUp upsampler (:mod:`rs_helpers.ovss.simfeatup`), which
brings each window's features from 14 x 14 back to 224 x 224 before the text comparison.
Per call, :func:`dense_map` takes SegEarth-OV's per-dataset ``prob_thd``, ``bg_idx`` and lambda.

Works on open_clip's ``VisionTransformer`` (ViT-B-16 and the tiny test model).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

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
CHOICES = {"resize": ("antialias", "opencv"), "short_crop": ("zero-pad", "own-size"),
           "pos_embed": ("size", "segearth")}
# segearth_segmentor.py SegDataPreProcessor(mean=..., std=...): CLIP's statistics rounded, 0-255 scale
SEGEARTH_PIXEL_STATS = ((122.771, 116.746, 104.094), (68.501, 66.632, 70.323))


@dataclass(frozen=True)
class DenseSettings:
    """Every ingredient of the dense map. Defaults: this package's native map (SegEarth-OV's
    attention and CLS-bias changes, its own resize and padding; see method.md); SegEarth-OV's
    exact inference is :data:`SEGEARTH_OV` plus the SimFeatUp upsampler."""

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
    # "antialias": float bilinear with antialiasing; "opencv": cv2.resize INTER_LINEAR on uint8 (SegEarth-OV)
    resize: str = "antialias"
    # a side shorter than the window: "zero-pad" to the window, or read at its "own-size" (SegEarth-OV)
    short_crop: str = "zero-pad"
    # position embeddings for another grid: bicubic to the "size", or SegEarth-OV's scale-factor rule
    pos_embed: str = "size"
    pixel_stats: tuple | None = None  # (mean, std) per channel on the 0-255 scale; None: the model's


# segearth_segmentor.py + configs/base_config.py (the upsampler is passed to dense_map)
SEGEARTH_OV = DenseSettings(resize="opencv", short_crop="own-size", pos_embed="segearth",
                            pixel_stats=SEGEARTH_PIXEL_STATS)


def check_settings(settings: DenseSettings) -> None:
    for field, allowed in CHOICES.items():
        if getattr(settings, field) not in allowed:
            raise BadInputError(f"dense {field} {getattr(settings, field)!r}: choose one of {', '.join(allowed)}")


@dataclass
class DenseMap:
    """Per-pixel class probabilities and labels of one image."""

    probs: np.ndarray  # C x H x W float32, sums to 1 over classes before max-pooling synonyms
    labels: np.ndarray  # H x W int64: argmax (with the background threshold applied)
    similarity: np.ndarray  # C x h x w float32: cosine similarity at CLIP's resolution (max over synonyms)
    class_names: list[str]
    background_index: int | None = None


# --------------------------------------------------------------------------- image -> tensor
def resize_long_side(height: int, width: int, long_side: int, rule: str = "round") -> tuple[int, int]:
    """(h, w) with the long side ``long_side``; ``rule="mmcv"``: mmcv's ``rescale_size``
    (``int(x * scale + 0.5)``, which SegEarth-OV's ``Resize(keep_ratio=True)`` uses)."""
    scale = long_side / max(height, width)
    if rule == "mmcv":
        return max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _cv_taps(dst: int, src: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and 11-bit fixed-point weights of OpenCV's bilinear resize along one axis."""
    pos = ((np.arange(dst, dtype=np.float64) + 0.5) * (1.0 / (dst / src)) - 0.5).astype(np.float32)
    first = np.floor(pos).astype(np.int64)
    frac = (pos - first.astype(np.float32)).astype(np.float32)
    return (first, frac, np.rint(frac * np.float32(2048)).astype(np.int32),
            np.rint((np.float32(1) - frac) * np.float32(2048)).astype(np.int32))


def resize_uint8_opencv(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """``cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)`` for uint8 H x W (x C), bit
    for bit: pixel centres aligned, no antialiasing, OpenCV's fixed-point arithmetic (weights in
    1/2048, the vertical pass as its vectorised code rounds it)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise BadInputError(f"the OpenCV-style resize takes a uint8 H x W (x C) image, not {image.dtype} {image.shape}")
    flat = image if image.ndim == 3 else image[:, :, None]
    (h, w), (src_h, src_w) = size_hw, flat.shape[:2]
    sx, fx, _, _ = _cv_taps(w, src_w)
    fx[sx < 0], sx[sx < 0] = 0, 0  # horizontally the border pixel is taken whole
    fx[sx >= src_w - 1], sx[sx >= src_w - 1] = 0, src_w - 1
    a1 = np.rint(fx * np.float32(2048)).astype(np.int32)
    a0 = np.rint((np.float32(1) - fx) * np.float32(2048)).astype(np.int32)
    sy, _, b1, b0 = _cv_taps(h, src_h)  # vertically the rows are clamped, the weights kept
    x1 = np.minimum(sx + 1, src_w - 1)

    def rows(index):  # horizontal pass on the needed rows only: exact integers
        picked = flat[np.clip(index, 0, src_h - 1)].astype(np.int32)
        return picked[:, sx] * a0[None, :, None] + picked[:, x1] * a1[None, :, None]

    top = ((rows(sy) >> 4) * b0[:, None, None]) >> 16
    bottom = ((rows(sy + 1) >> 4) * b1[:, None, None]) >> 16
    out = np.clip((top + bottom + 2) >> 2, 0, 255).astype(np.uint8)
    return out if image.ndim == 3 else out[:, :, 0]


def to_tensor(image_rgb: np.ndarray, size_hw: tuple[int, int], mean, std, device) -> torch.Tensor:
    """uint8 H x W x 3 -> normalised 1 x 3 x h x w float tensor resized (antialiased) to ``size_hw``."""
    writable = np.require(image_rgb, requirements=["C", "W"])  # copies read-only (PIL) arrays only
    x = torch.from_numpy(writable).to(device).permute(2, 0, 1)[None].float() / 255
    if tuple(x.shape[-2:]) != tuple(size_hw):
        x = F.interpolate(x, size=size_hw, mode="bilinear", align_corners=False, antialias=True)
    mean_t = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=device).view(1, 3, 1, 1)
    return (x - mean_t) / std_t


def image_tensor(image_rgb: np.ndarray, size_hw: tuple[int, int], clip, settings: DenseSettings) -> torch.Tensor:
    """The normalised 1 x 3 x h x w input at ``size_hw``, resized as ``settings.resize`` says."""
    mean, std = clip.mean, clip.std
    if settings.pixel_stats is not None:
        mean, std = (tuple(v / 255 for v in stats) for stats in settings.pixel_stats)
    if settings.resize != "opencv":
        return to_tensor(image_rgb, size_hw, mean, std, clip.device)
    small = image_rgb if tuple(image_rgb.shape[:2]) == tuple(size_hw) else resize_uint8_opencv(image_rgb, size_hw)
    small = np.require(small, requirements=["C", "W"])  # copies read-only arrays only
    x = torch.from_numpy(small).to(clip.device).permute(2, 0, 1)[None].float()
    if settings.pixel_stats is not None:
        mean255, std255 = settings.pixel_stats
    else:
        mean255, std255 = tuple(v * 255 for v in mean), tuple(v * 255 for v in std)
    return (x - torch.tensor(mean255, device=x.device).view(1, 3, 1, 1)) / torch.tensor(std255, device=x.device).view(1, 3, 1, 1)


def centre_pad(height: int, width: int, multiple: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) zero padding up to a multiple, split as SegEarth-OV's
    ``compute_padsize`` does (the smaller half first)."""
    lr, tb = -width % multiple, -height % multiple
    return lr // 2, lr - lr // 2, tb // 2, tb - tb // 2


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


def interpolate_pos_embed(pos: torch.Tensor, grid: tuple[int, int], new_grid: tuple[int, int],
                          rule: str = "size") -> torch.Tensor:
    """(1 + gh*gw) x D positional embedding resampled (bicubic) to ``new_grid`` patches.
    ``rule="segearth"``: SegEarth-OV's ``interpolate_pos_encoding`` (open_clip/transformer.py):
    kept whenever the patch count is unchanged, else resampled with the scale factor
    (n + 0.1) / sqrt(N), which places the samples differently from resampling to a size."""
    if tuple(grid) == tuple(new_grid) or (rule == "segearth" and grid[0] * grid[1] == new_grid[0] * new_grid[1]):
        return pos
    cls_pos, patch_pos = pos[:1], pos[1:]
    dim = pos.shape[-1]
    patch_pos = patch_pos.reshape(1, grid[0], grid[1], dim).permute(0, 3, 1, 2).float()
    if rule == "segearth":
        side = math.sqrt(grid[0] * grid[1])
        scale = ((new_grid[0] + 0.1) / side, (new_grid[1] + 0.1) / side)
        patch_pos = F.interpolate(patch_pos, scale_factor=scale, mode="bicubic", align_corners=False)
    else:
        patch_pos = F.interpolate(patch_pos, size=new_grid, mode="bicubic", align_corners=False)
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
    x = x + interpolate_pos_embed(visual.positional_embedding, grid, new_grid, settings.pos_embed).to(x.dtype)
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
def _window_logits(clip, batch: torch.Tensor, text: TextEmbeddings, settings: DenseSettings,
                   upsampler=None) -> torch.Tensor:
    """Row similarities (patch minus lambda * CLS) for a batch of crops: B x R x gh x gw, or with
    ``upsampler`` B x R x H x W (the features upsampled, guided by each crop, one crop at a time)."""
    tokens = encode_tokens(clip.model.visual, batch, settings).float()
    emb = text.embeddings.to(tokens.device).float()
    cls = F.normalize(tokens[:, :1], dim=-1) @ emb.T  # B x 1 x R
    patch = clip.patch_size
    b, gh, gw = batch.shape[0], batch.shape[-2] // patch, batch.shape[-1] // patch
    if upsampler is None:
        logits = F.normalize(tokens[:, 1:], dim=-1) @ emb.T  # B x P x R
        if settings.cls_lambda:
            logits = logits - settings.cls_lambda * cls
        return logits.transpose(1, 2).reshape(b, -1, gh, gw)
    out = []
    for i in range(b):  # the upsampled features of one crop are the big tensor: one at a time
        feats = tokens[i:i + 1, 1:].transpose(1, 2).reshape(1, -1, gh, gw)
        up = F.normalize(upsampler(feats, batch[i:i + 1].float()).float(), dim=1)
        logits = torch.einsum("bdhw,rd->brhw", up, emb)
        if settings.cls_lambda:
            logits = logits - settings.cls_lambda * cls[i].view(1, -1, 1, 1)
        out.append(logits)
    return torch.cat(out)


def _resized(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


class Crops(NamedTuple):
    """CLIP's input (see :func:`crops`)."""
    batch: torch.Tensor
    boxes: list | None
    size: tuple[int, int]
    padded: tuple[int, int] = (0, 0)
    crop: tuple[int, int] = (0, 0)
    offset: tuple[int, int] = (0, 0)


def crops(clip, image_rgb: np.ndarray, settings: DenseSettings = DenseSettings()) -> Crops:
    """The image at ``settings.long_side`` (``size``) cut into the windows CLIP reads, as one ``batch``;
    ``boxes``: their (y, x) in the ``padded`` image (None: the whole image, no window)."""
    check_settings(settings)
    patch = clip.patch_size
    rule = "mmcv" if settings.resize == "opencv" else "round"
    h, w = resize_long_side(image_rgb.shape[0], image_rgb.shape[1], settings.long_side, rule)
    if not settings.sliding_window:
        gh, gw = max(1, round(h / patch)), max(1, round(w / patch))
        return Crops(image_tensor(image_rgb, (gh * patch, gw * patch), clip, settings), None, (h, w))
    win, stride = settings.window, settings.stride
    if win % patch or stride < 1:
        raise BadInputError(f"window {win} must be a multiple of the patch size {patch}; stride >= 1")
    x = image_tensor(image_rgb, (h, w), clip, settings)
    if settings.short_crop == "zero-pad":
        ph, pw = max(h, win), max(w, win)
        x = F.pad(x, (0, pw - w, 0, ph - h))  # zero = the mean colour after normalisation
        ch, cw = win, win
    else:  # segearth_segmentor.py forward_slide: a short side is read whole, at its own length
        ph, pw, ch, cw = h, w, min(h, win), min(w, win)
    boxes = [(y, xx) for y in window_starts(ph, ch, stride) for xx in window_starts(pw, cw, stride)]
    batch = torch.cat([x[:, :, y:y + ch, xx:xx + cw] for y, xx in boxes])
    left, right, top, bottom = centre_pad(ch, cw, patch)  # compute_padsize: only when not a multiple
    if left or right or top or bottom:
        batch = F.pad(batch, (left, right, top, bottom))
    return Crops(batch, boxes, (h, w), (ph, pw), (ch, cw), (top, left))


@torch.no_grad()
def similarity_map(clip, image_rgb: np.ndarray, text: TextEmbeddings,
                   settings: DenseSettings = DenseSettings(), upsampler=None) -> torch.Tensor:
    """Per-row (class synonym) similarity R x h x w, the image resized to ``settings.long_side``;
    ``upsampler``: e.g. :class:`rs_helpers.ovss.simfeatup.SimFeatUp` (``upsampler(features, crop)``) or None."""
    cut = crops(clip, image_rgb, settings)
    logits = _window_logits(clip, cut.batch, text, settings, upsampler)  # one CLIP pass for every window
    if cut.boxes is None:
        return _resized(logits, cut.size)[0]
    (h, w), (ph, pw), (ch, cw), (top, left) = cut.size, cut.padded, cut.crop, cut.offset
    logits = _resized(logits, tuple(cut.batch.shape[-2:]))[:, :, top:top + ch, left:left + cw]
    total, count = logits.new_zeros((logits.shape[1], ph, pw)), logits.new_zeros((1, ph, pw))
    for (y, xx), tile in zip(cut.boxes, logits):
        total[:, y:y + ch, xx:xx + cw] += tile
        count[:, y:y + ch, xx:xx + cw] += 1
    return (total / count)[:, :h, :w]


@torch.no_grad()
def cls_bias(clip, image_rgb: np.ndarray, text: TextEmbeddings,
             settings: DenseSettings = DenseSettings()) -> np.ndarray:
    """What the global-bias removal subtracts, W x R: ``cls_lambda`` x cos(window's CLS token, text
    row), windows in :func:`crops` order; within a window one number per row, the same for every patch."""
    tokens = encode_tokens(clip.model.visual, crops(clip, image_rgb, settings).batch, settings).float()
    cos = F.normalize(tokens[:, 0], dim=-1) @ text.embeddings.to(tokens.device).float().T
    return (settings.cls_lambda * cos).cpu().numpy()


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
    background class (when there is one): SegEarth-OV's ``prob_thd`` / ``bg_idx`` rule."""
    labels = probs.argmax(0)
    if background_index is not None and threshold > 0:
        labels[probs.max(0) < threshold] = background_index
    return labels


def dense_map(clip, image_rgb: np.ndarray, classes: str | Vocabulary,
              settings: DenseSettings = DenseSettings(), out_size: tuple[int, int] | None = None,
              text: TextEmbeddings | None = None, text_cache=None, *, prob_thd: float | None = None,
              bg_idx: int | None = None, cls_lambda: float | None = None, upsampler=None) -> DenseMap:
    """The dense CLIP map of ``image_rgb`` (uint8 H x W x 3) for ``classes``, at ``out_size``
    (default: the image size; the logits are resized to it before the softmax). ``classes``: a
    class string or a :class:`Vocabulary`; ``text``: its embeddings when already computed, else
    they come from ``text_cache`` (a :class:`rs_helpers.ovss.vocabulary.TextCache`; default the
    shared one).

    Per call (None: from ``settings``): ``prob_thd`` (pixels whose best probability is below it
    take the background), ``bg_idx`` (the background class index; default the class named by
    ``settings.background_names``), ``cls_lambda`` (the CLS share removed; SegEarth-OV's
    ``cls_token_lambda`` is its negative) and ``upsampler`` (see :func:`similarity_map`)."""
    vocab = parse_classes(classes)
    if cls_lambda is not None:
        settings = replace(settings, cls_lambda=float(cls_lambda))
    if bg_idx is not None and not 0 <= int(bg_idx) < len(vocab):
        raise BadInputError(f"background index {bg_idx} is not a class of {'; '.join(vocab.names)}")
    if text is None:
        kwargs = {} if text_cache is None else {"cache": text_cache}
        text = encode_vocabulary(clip, vocab, settings.templates, settings.synonyms, **kwargs)
    elif text.n_classes != len(vocab):
        raise BadInputError(f"text embeddings have {text.n_classes} classes, the vocabulary {len(vocab)}")
    out_size = tuple(out_size or image_rgb.shape[:2])
    rows = similarity_map(clip, image_rgb, text, settings, upsampler)
    probs = probabilities(rows, text, settings.logit_scale, out_size).cpu().numpy().astype(np.float32)
    similarity = text.pool(rows, dim=0).cpu().numpy().astype(np.float32)
    background = vocab.background_index(settings.background_names) if bg_idx is None else int(bg_idx)
    threshold = settings.background_threshold if prob_thd is None else float(prob_thd)
    labels = pixel_labels(probs, background, threshold)
    return DenseMap(probs=probs, labels=labels, similarity=similarity, class_names=vocab.names,
                    background_index=background)
