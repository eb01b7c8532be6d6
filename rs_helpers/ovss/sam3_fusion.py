"""SAM 3 as an open-vocabulary segmenter: SegEarth-OV3's training-free fusion of its three heads.

``segment_sam3(image, "building;road;water", sam3=load_sam3())`` returns the same
:class:`~rs_helpers.ovss.pipeline.OvssResult` as the SAM + CLIP pipeline. Per view (the whole image,
or each sliding window) and per prompt (every comma synonym of a class is its own prompt), as
SegEarth-OV3's ``segearthov3_segmentor.py`` and the ``Sam3Processor`` it calls do:

1. the view is squashed to the model's square input (1008 px; bilinear, antialiased, on uint8),
   scaled to [0, 1] and normalised with mean and std 0.5;
2. ``object_score = sigmoid(pred_logits) * sigmoid(presence)`` per query; the queries with
   ``object_score > confidence_threshold`` are kept;
3. instance head: each kept mask's logits are resized (bilinear) to the view, then
   ``sigmoid(mask) * object_score``; the element-wise max over kept queries (0 where none is kept);
4. semantic head: element-wise max with ``sigmoid(semantic_seg)`` resized the same way;
5. presence head: the map is multiplied by ``sigmoid(presence)``;
6. overlapping windows are averaged; a class is the max over its synonyms; a pixel takes the
   class of highest score (the first on ties), or ``bg_idx`` where that score is below ``prob_thd``.

SegEarth-OV3 encodes each view once (``set_image``) but encodes the text and runs the grounding
(DETR encoder and decoder, mask head) one prompt at a time; here each prompt's text is encoded once
per vocabulary (cached) and the prompts go through the grounding on the view's cached vision
features, ``prompt_batch`` at a time (``rs-seg bench --method sam3`` measures both). The grounding
depends on the text, so it cannot be shared between prompts. On a CPU the default is one prompt at
a time: batching gains nothing there (4.95 s a prompt at batch 1, 4.73-5.04 s at 2-8, full
architecture, 2 cores) and batch 1 keeps every float32 bit equal to SegEarth-OV3's loop; on a GPU,
where batch-1 kernels leave the chip idle, 8 at a time. :class:`Sam3Tiles` is its tile segmenter
for :func:`rs_helpers.geo.scene.segment_scene`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from rs_helpers.device import stage_timer
from rs_helpers.errors import BadInputError
from rs_helpers.ovss.pipeline import (
    BINARY_PALETTE,
    OvssResult,
    class_shares,
    default_palette,
    output_classes,
    peak_memory,
    resolve_binary,
)
from rs_helpers.ovss.vocabulary import TextCache, Vocabulary, parse_classes

HEADS = ("instance", "semantic", "presence")
MASK_BUDGET = 1 << 26  # resized mask values held at once (256 MiB in float32), whatever mask_chunk says
CPU_PROMPT_BATCH, GPU_PROMPT_BATCH = 1, 8  # prompt_batch=None: prompts per grounding pass (GPU: cuda, mps)


@dataclass(frozen=True)
class Sam3Settings:
    """The knobs of the fusion, with SegEarth-OV3's defaults (``SegEarthOV3Segmentation.__init__``).

    ``heads``: which of ``instance`` (``use_transformer_decoder``), ``semantic`` (``use_sem_seg``) and
    ``presence`` (``use_presence_score``) are used; the presence score always enters ``object_score``,
    the switch only drops the final multiplication, as there. ``bg_idx`` None: the class named
    "background", else 0. ``slide_crop``: window side in pixels; None slides windows of the model's
    input size over images larger than it, 0 never slides (SegEarth-OV3's default, ``slide_crop=0``).
    ``slide_stride`` None: the window side. ``prompt_batch``: prompts per grounding pass (None: 1 on
    a CPU, bit-equal to SegEarth-OV3's loop; 8 on a GPU, see :func:`resolve_prompt_batch`);
    ``mask_chunk``: kept masks resized at once (at most :data:`MASK_BUDGET` values; memory, not the
    result)."""

    confidence_threshold: float = 0.5
    prob_thd: float = 0.0
    bg_idx: int | None = None
    heads: tuple[str, ...] = HEADS
    slide_crop: int | None = None
    slide_stride: int | None = None
    prompt_batch: int | None = None
    mask_chunk: int = 32

    def __post_init__(self):
        for name in ("confidence_threshold", "prob_thd"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise BadInputError(f"SAM 3 {name} must be between 0 and 1, got {value!r}")
        unknown = [h for h in self.heads if h not in HEADS]
        if unknown:
            raise BadInputError(f"unknown SAM 3 head(s) {', '.join(map(str, unknown))}; choose from {', '.join(HEADS)}")
        if self.slide_crop is not None and self.slide_crop < 0:
            raise BadInputError(f"slide_crop must be 0 (no sliding) or a window side in pixels, got {self.slide_crop}")
        for name in ("slide_stride", "prompt_batch", "mask_chunk"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BadInputError(f"SAM 3 {name} must be a positive integer, got {value}")
        if self.bg_idx is not None and self.bg_idx < 0:
            raise BadInputError(f"bg_idx must be a class index (0 or more), got {self.bg_idx}")


def resolve_prompt_batch(settings: Sam3Settings, device) -> int:
    """Prompts per grounding pass: ``settings.prompt_batch``, else 1 on a CPU and 8 on a GPU. A
    batch of one runs the very kernels of SegEarth-OV3's per-prompt loop, so its scores are equal to
    the bit; larger batches sum in another order (scores within about 5e-6 in float32)."""
    if settings.prompt_batch is not None:
        return int(settings.prompt_batch)
    return CPU_PROMPT_BATCH if torch.device(device).type == "cpu" else GPU_PROMPT_BATCH


def parse_heads(text: str | tuple | list) -> tuple[str, ...]:
    """``"instance,semantic"`` -> ``("instance", "semantic")`` (``--sam3-heads``), checked."""
    items = text.split(",") if isinstance(text, str) else list(text)
    heads = tuple(dict.fromkeys(h.strip().lower() for h in items if str(h).strip()))
    if not heads or any(h not in HEADS for h in heads):
        raise BadInputError(f"SAM 3 heads {text!r}: give one or more of {', '.join(HEADS)}, separated by commas")
    return heads


def prompt_rows(vocabulary: Vocabulary) -> tuple[list[str], list[int]]:
    """Every synonym is its own prompt (``get_cls_idx``): the prompts and the class of each."""
    rows = [(ci, name) for ci, synonyms in enumerate(vocabulary.synonyms) for name in synonyms]
    return [name for _, name in rows], [ci for ci, _ in rows]


# --------------------------------------------------------------------------- the fusion itself
def view_scores(pred_logits: torch.Tensor, presence_logits: torch.Tensor, pred_masks: torch.Tensor,
                semantic_seg: torch.Tensor, size_hw: tuple[int, int], settings: Sam3Settings) -> torch.Tensor:
    """Per-prompt score maps (P x H x W, float32, in [0, 1]) of one view from SAM 3's raw outputs:
    ``pred_logits`` P x Q, ``presence_logits`` P x 1, ``pred_masks`` P x Q x h x w, ``semantic_seg``
    P x 1 x h x w (steps 2-5 of the module docstring)."""
    presence = presence_logits.float().sigmoid().reshape(-1)  # P
    object_score = pred_logits.float().sigmoid() * presence[:, None]  # P x Q
    out = torch.zeros((len(presence),) + tuple(size_hw), device=pred_masks.device, dtype=torch.float32)
    if "instance" in settings.heads:  # every kept (prompt, query) pair, resized a chunk at a time
        kept = torch.nonzero(object_score > settings.confidence_threshold)
        chunk = max(1, min(settings.mask_chunk, MASK_BUDGET // max(1, size_hw[0] * size_hw[1])))
        for start in range(0, len(kept), chunk):
            rows, queries = kept[start:start + chunk].unbind(1)
            masks = F.interpolate(pred_masks[rows, queries][:, None].float(), size=size_hw, mode="bilinear",
                                  align_corners=False)[:, 0].sigmoid()
            weighted = (masks * object_score[rows, queries][:, None, None]).flatten(1)
            out.view(len(out), -1).scatter_reduce_(0, rows[:, None].expand_as(weighted), weighted, "amax")
    if "semantic" in settings.heads:
        semantic = F.interpolate(semantic_seg.float(), size=size_hw, mode="bilinear", align_corners=False)
        out = torch.maximum(out, semantic[:, 0].sigmoid())
    if "presence" in settings.heads:
        out = out * presence[:, None, None]
    return out


def merge_synonyms(row_scores: torch.Tensor, row_class: list[int], n_classes: int) -> torch.Tensor:
    """Class score maps (C x H x W): the max over each class's prompt rows (scores are >= 0)."""
    out = row_scores.new_zeros((n_classes,) + tuple(row_scores.shape[1:]))
    for row, ci in enumerate(row_class):
        out[ci] = torch.maximum(out[ci], row_scores[row])
    return out


def labels_from_scores(class_scores: torch.Tensor, prob_thd: float, bg_idx: int) -> np.ndarray:
    """uint8 labels: the class of highest score (the first on ties); ``bg_idx`` where it is below ``prob_thd``."""
    best, labels = class_scores.max(0)[0], torch.argmax(class_scores, dim=0)
    labels[best < prob_thd] = bg_idx
    return labels.to(torch.uint8).cpu().numpy()


def slide_windows(height: int, width: int, crop: int, stride: int) -> list[tuple[int, int, int, int]]:
    """``(y1, y2, x1, x2)`` windows as ``slide_inference`` lays them: a grid of ``stride`` steps,
    the last row and column moved back inside the image (so they may overlap the one before)."""
    rows = max(height - crop + stride - 1, 0) // stride + 1
    cols = max(width - crop + stride - 1, 0) // stride + 1
    out = []
    for r in range(rows):
        for c in range(cols):
            y2, x2 = min(r * stride + crop, height), min(c * stride + crop, width)
            out.append((max(y2 - crop, 0), y2, max(x2 - crop, 0), x2))
    return out


# --------------------------------------------------------------------------- running the model
def preprocess(rgb: np.ndarray, size: int, device, dtype=torch.float32) -> torch.Tensor:
    """1 x 3 x size x size: squashed (bilinear, antialiased, on uint8, as torchvision's
    ``v2.Resize``), scaled to [0, 1], normalised with mean and std 0.5 (``Sam3Processor.transform``
    in Meta's ``sam3_image_processor.py``), in its order of operations so that every bit agrees:
    ``v2.ToDtype`` multiplies by 1/255 (not a division), ``v2.Normalize`` subtracts then divides."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).to(device)
    image = TF.resize(image, [size, size], interpolation=InterpolationMode.BILINEAR, antialias=True)
    return image.to(torch.float32).mul_(1.0 / 255).sub_(0.5).div_(0.5)[None].to(dtype)


@dataclass
class TextFeatures:
    """SAM 3's projected text features for a list of prompts (P x L x D) and their token masks."""

    features: torch.Tensor
    mask: torch.Tensor
    prompts: tuple[str, ...]


SAM3_TEXT_CACHE = TextCache()


@torch.no_grad()
def encode_prompts(sam3, prompts, cache: TextCache | None = SAM3_TEXT_CACHE) -> TextFeatures:
    """Tokenise (padded to SAM 3's 32 tokens) and encode ``prompts`` once; cached per model and list.
    Each prompt is encoded alone, as SegEarth-OV3's loop does, so that its features are the same to
    the bit (a batch of 8 moves them by up to 3e-6); it costs the same and happens once a vocabulary."""
    prompts = tuple(prompts)
    key = ("sam3", prompts, sam3.text_length)
    if cache is not None and (hit := cache.get(sam3.model, key)) is not None:
        return hit
    features, masks = [], []
    for prompt in prompts:
        tokens = sam3.tokenizer([prompt], padding="max_length", max_length=sam3.text_length, truncation=True,
                                return_tensors="pt")
        ids, mask = tokens["input_ids"].to(sam3.device), tokens["attention_mask"].to(sam3.device)
        features.append(sam3.model.get_text_features(input_ids=ids, attention_mask=mask).pooler_output)
        masks.append(mask)
    result = TextFeatures(torch.cat(features), torch.cat(masks), prompts)
    if cache is not None:
        cache.put(sam3.model, key, result)
    return result


def _text_embeds(features: torch.Tensor):
    """``text_embeds`` for ``Sam3Model.forward``: transformers 5.4 takes the tensor, later versions read
    ``.pooler_output`` from it; a view of the tensor carrying that attribute suits both."""
    view = features.view_as(features)
    view.pooler_output = features
    return view


@torch.no_grad()
def view_prompt_scores(sam3, rgb_view: np.ndarray, text: TextFeatures, settings: Sam3Settings,
                       timings: dict | None = None) -> torch.Tensor:
    """P x h x w score maps of one view: the image encoded once, the prompts grounded in batches
    (:func:`resolve_prompt_batch`)."""
    timings = {} if timings is None else timings
    size_hw = tuple(rgb_view.shape[:2])
    with stage_timer(timings, "resize", sam3.device):
        pixels = preprocess(rgb_view, sam3.input_size, sam3.device, sam3.dtype)
    with stage_timer(timings, "sam3_vision", sam3.device):
        vision = sam3.model.get_vision_features(pixel_values=pixels)
    out, batch = [], resolve_prompt_batch(settings, sam3.device)
    for start in range(0, len(text.prompts), batch):
        n = len(text.prompts[start:start + batch])
        shared = vision if n == 1 else type(vision)(
            fpn_hidden_states=tuple(f.expand(n, *f.shape[1:]) for f in vision.fpn_hidden_states),
            fpn_position_encoding=tuple(f.expand(n, *f.shape[1:]) for f in vision.fpn_position_encoding))
        with stage_timer(timings, "sam3_decoder", sam3.device):
            heads = sam3.model(vision_embeds=shared, text_embeds=_text_embeds(text.features[start:start + n]),
                               attention_mask=text.mask[start:start + n])
        with stage_timer(timings, "sam3_fusion", sam3.device):
            out.append(view_scores(heads.pred_logits, heads.presence_logits, heads.pred_masks, heads.semantic_seg,
                                   size_hw, settings))
    return torch.cat(out)


def windows_for(height: int, width: int, settings: Sam3Settings, input_size: int) -> list[tuple[int, int, int, int]]:
    """The views of an image: sliding windows when ``slide_crop`` (None: the model's input size)
    is smaller than a side, as ``predict`` decides, else the whole image."""
    crop = input_size if settings.slide_crop is None else settings.slide_crop
    if crop > 0 and (crop < width or crop < height):
        return slide_windows(height, width, crop, settings.slide_stride or crop)
    return [(0, height, 0, width)]


@torch.no_grad()
def prompt_scores(sam3, rgb: np.ndarray, text: TextFeatures, settings: Sam3Settings,
                  timings: dict | None = None) -> torch.Tensor:
    """P x H x W score maps of a whole image: per view, then averaged where views overlap."""
    height, width = rgb.shape[:2]
    windows = windows_for(height, width, settings, sam3.input_size)
    if len(windows) == 1:
        return view_prompt_scores(sam3, rgb, text, settings, timings)
    total = torch.zeros((len(text.prompts), height, width), device=sam3.device)
    count = torch.zeros((1, height, width), device=sam3.device)
    for y1, y2, x1, x2 in windows:
        total[:, y1:y2, x1:x2] += view_prompt_scores(sam3, rgb[y1:y2, x1:x2], text, settings, timings)
        count[:, y1:y2, x1:x2] += 1
    if bool((count == 0).any()):  # pragma: no cover - slide_windows always covers the image
        raise RuntimeError("sliding windows left pixels uncovered")
    return total / count


def _rgb(image) -> np.ndarray:
    rgb = np.asarray(getattr(image, "rgb", image))
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise BadInputError(f"image must be uint8 H x W x 3, got {rgb.dtype} {rgb.shape}")
    return rgb


def resolve_bg_idx(vocabulary: Vocabulary, settings: Sam3Settings) -> int:
    """The class that takes pixels below ``prob_thd``: ``bg_idx``, else the class named background, else 0."""
    bg = settings.bg_idx
    if bg is None:
        bg = vocabulary.background_index()
        bg = 0 if bg is None else bg
    if not 0 <= bg < len(vocabulary):
        raise BadInputError(f"bg_idx {bg} is not one of the {len(vocabulary)} classes ({'; '.join(vocabulary.names)})")
    return int(bg)


@torch.no_grad()
def class_scores(image, classes, *, sam3, settings: Sam3Settings = Sam3Settings(),
                 text_cache: TextCache | None = SAM3_TEXT_CACHE, timings: dict | None = None) -> torch.Tensor:
    """C x H x W class score maps (before the argmax): for showing each head's contribution."""
    vocab = parse_classes(classes)
    timings = {} if timings is None else timings
    prompts, row_class = prompt_rows(vocab)
    with stage_timer(timings, "sam3_text", sam3.device):
        text = encode_prompts(sam3, prompts, cache=text_cache)
    rows = prompt_scores(sam3, _rgb(image), text, settings, timings)
    return merge_synonyms(rows, row_class, len(vocab))


def segment_sam3(image, classes: str | list | Vocabulary, *, sam3, binary: bool = False, target: str | None = None,
                 settings: Sam3Settings = Sam3Settings(), text_cache: TextCache | None = SAM3_TEXT_CACHE,
                 palette=None) -> OvssResult:
    """Segment ``image`` (uint8 H x W x 3 or a RasterImage) into ``classes`` with SAM 3 (a
    :class:`~rs_helpers.models.sam3.Sam3Bundle`), SegEarth-OV3's fusion. ``binary=True``: a 0/1 map
    of ``target`` (a background class is added when the list holds only the target; every class is
    prompted and the labels equal to the target's become 1)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    rgb = _rgb(image)
    vocab, target_index, names, colours = output_classes(parse_classes(classes), binary, target, palette)
    bg_idx = resolve_bg_idx(vocab, settings)
    if sam3.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(sam3.device)
    scores = class_scores(rgb, vocab, sam3=sam3, settings=settings, text_cache=text_cache, timings=timings)
    with stage_timer(timings, "labels", sam3.device):
        labels = labels_from_scores(scores, settings.prob_thd, bg_idx)
        if binary:
            labels = (labels == target_index).astype(np.uint8)
    timings["total"] = time.perf_counter() - t0
    return OvssResult(
        labels=labels, class_names=names, palette=colours[:len(names)], shares=class_shares(labels, names),
        timings=timings, memory=peak_memory(sam3.device), vocabulary=vocab, binary=binary,
        target=names[1] if binary else None, selector="sam3", work_size=tuple(rgb.shape[:2]), work_labels=labels,
    )


class Sam3Tiles:
    """SAM 3 per tile (:func:`segment_sam3`), with one text cache for the whole scene: a segmenter
    for :func:`rs_helpers.geo.scene.segment_scene`. ``class_names`` and ``palette`` are known
    before the first tile; ``timings`` sums each stage over the tiles."""

    proposals = 0  # no SAM 1 masks

    def __init__(self, classes, *, sam3, binary: bool = False, target: str | None = None,
                 settings: Sam3Settings = Sam3Settings(), text_cache: TextCache | None = SAM3_TEXT_CACHE, palette=None):
        vocab = parse_classes(classes)
        if binary:
            vocab, index = resolve_binary(vocab, target)
            self.class_names = ["background", vocab.names[index]]
        elif len(vocab) < 2:
            raise BadInputError(f"only one class ({vocab.names[0]}): list several classes separated by ';' "
                                "or use binary mode (--binary)")
        else:
            self.class_names = vocab.names
        resolve_bg_idx(vocab, settings)  # a bad bg_idx stops here, before the first tile
        chosen = palette or (BINARY_PALETTE if binary else default_palette(len(self.class_names)))
        self.palette = [tuple(int(v) for v in c[:3]) for c in chosen][:len(self.class_names)]
        self.vocabulary, self.binary, self.target, self.sam3, self.settings = vocab, binary, target, sam3, settings
        self.text_cache = text_cache
        self.timings: dict[str, float] = {}

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        result = segment_sam3(rgb, self.vocabulary, sam3=self.sam3, binary=self.binary, target=self.target,
                              settings=self.settings, text_cache=self.text_cache, palette=self.palette)
        for key, value in result.timings.items():
            self.timings[key] = self.timings.get(key, 0.0) + value
        return result.labels
