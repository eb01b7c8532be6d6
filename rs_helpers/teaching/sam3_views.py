"""SAM 3 opened up for notebook 10: its raw head outputs for one view, the fusion's pieces as maps,
the query scores as bars, and the three methods side by side as a small text table.

:func:`sam3_heads` runs SAM 3 on one view (the image squashed to the model's input, as
:func:`rs_helpers.ovss.sam3_fusion.preprocess` does) and returns what its heads say before any
fusion: per prompt the query logits (DETR-style instance queries), the presence logit, the mask
logits of every query and the semantic logits, at the model's mask resolution. The notebook then
rebuilds SegEarth-OV3's fusion step by step from these arrays and compares it with the package's
(:meth:`Sam3Heads.fused`, which calls :func:`~rs_helpers.ovss.sam3_fusion.view_scores`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from rs_helpers.ovss.sam3_fusion import Sam3Settings, preprocess, view_scores


def sigmoid(x) -> np.ndarray:
    """The logistic function on a NumPy array (float32 stays float32, anything else becomes float64;
    no overflow warning for large logits)."""
    x = np.asarray(x)
    if x.dtype != np.float32:
        x = x.astype(np.float64)
    return np.exp(-np.logaddexp(x.dtype.type(0), -x))


def upsample(logits: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """``... x h x w`` logits resized to ``size_hw`` as the fusion resizes them (bilinear,
    ``align_corners=False``), float32. Resize logits, then take the sigmoid: that is the fusion's order."""
    array = np.asarray(logits, dtype=np.float32)
    lead, (h, w) = array.shape[:-2], array.shape[-2:]
    flat = torch.from_numpy(np.ascontiguousarray(array.reshape(-1, 1, h, w)))
    if flat.shape[0] == 0:
        return np.zeros(lead + tuple(size_hw), np.float32)
    out = F.interpolate(flat, size=tuple(size_hw), mode="bilinear", align_corners=False)
    return out.reshape(lead + tuple(size_hw)).numpy()


@dataclass
class Sam3Heads:
    """SAM 3's raw outputs for one view and a few prompts (P prompts, Q instance queries).

    ``query_logits`` P x Q (one score per query: does it hold an instance of the concept),
    ``presence_logits`` P (is the concept in the view at all), ``mask_logits`` P x Q x h x w (each
    query's mask), ``semantic_logits`` P x h x w (the dense map of the semantic head); h x w is the
    model's mask resolution (288 x 288 for the real SAM 3, 64 x 64 tiny), ``view_hw`` the view's size."""

    prompts: tuple[str, ...]
    query_logits: np.ndarray
    presence_logits: np.ndarray
    mask_logits: np.ndarray
    semantic_logits: np.ndarray
    view_hw: tuple[int, int]

    @property
    def n_queries(self) -> int:
        return int(self.query_logits.shape[1])

    def fused(self, settings: Sam3Settings = Sam3Settings()) -> np.ndarray:
        """P x H x W: the package's fusion of these heads at the view's size (``view_scores``)."""
        out = view_scores(torch.from_numpy(self.query_logits), torch.from_numpy(self.presence_logits[:, None]),
                          torch.from_numpy(self.mask_logits), torch.from_numpy(self.semantic_logits[:, None]),
                          self.view_hw, settings)
        return out.cpu().numpy()


@torch.no_grad()
def sam3_heads(sam3, rgb: np.ndarray, prompts: Sequence[str]) -> Sam3Heads:
    """Run SAM 3 (a :class:`~rs_helpers.models.sam3.Sam3Bundle`) on ``rgb`` (uint8 H x W x 3, one
    view: squashed to the model's input whatever its size) with each of ``prompts``. The image is
    encoded once; each prompt goes through the text encoder and the decoders on its own."""
    prompts = tuple(str(p) for p in prompts)
    rgb = np.asarray(rgb)
    pixels = preprocess(rgb, sam3.input_size, sam3.device, sam3.dtype)
    vision = sam3.model.get_vision_features(pixel_values=pixels)
    tokens = sam3.tokenizer(list(prompts), padding="max_length", max_length=sam3.text_length, truncation=True,
                            return_tensors="pt")
    ids, mask = tokens["input_ids"].to(sam3.device), tokens["attention_mask"].to(sam3.device)
    parts: dict[str, list[np.ndarray]] = {"q": [], "p": [], "m": [], "s": []}
    for i in range(len(prompts)):
        out = sam3.model(vision_embeds=vision, input_ids=ids[i:i + 1], attention_mask=mask[i:i + 1])
        parts["q"].append(out.pred_logits[0].float().cpu().numpy())
        parts["p"].append(out.presence_logits.reshape(-1)[:1].float().cpu().numpy())
        parts["m"].append(out.pred_masks[0].float().cpu().numpy())
        parts["s"].append(out.semantic_seg[0, 0].float().cpu().numpy())
    return Sam3Heads(prompts, np.stack(parts["q"]), np.concatenate(parts["p"]), np.stack(parts["m"]),
                     np.stack(parts["s"]), tuple(int(v) for v in rgb.shape[:2]))


# --------------------------------------------------------------------------- plots
def tiny_title(title: str | None, tiny: bool | None = None, what: str = "these maps are") -> str | None:
    """``title`` with the tiny-profile warning added under the tiny profile (``tiny`` None: the active
    one); ``what`` names what is meaningless ("these scores are")."""
    from rs_helpers.profile import is_tiny

    if not (is_tiny() if tiny is None else tiny):
        return title
    warning = f"TINY PROFILE: random weights, {what} MEANINGLESS"
    return f"{title}\n{warning}" if title else warning


def show_maps(maps: Mapping[str, np.ndarray], vmin: float = 0.0, vmax: float = 1.0, size: float = 3.6,
              suptitle: str | None = None, tiny: bool | None = None, cmap: str = "viridis"):
    """Score maps side by side on one colour scale (0..1 by default), one colour bar; returns the figure.
    Under the tiny profile the title says, in red, that the maps are meaningless."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(maps), figsize=(size * len(maps) + 1, size + 0.6), squeeze=False,
                             layout="constrained")
    image = None
    for ax, (title, values) in zip(axes[0], maps.items()):
        image = ax.imshow(np.asarray(values, float), vmin=vmin, vmax=vmax, cmap=cmap)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    if image is not None:
        fig.colorbar(image, ax=list(axes[0]), shrink=0.8)
    title = tiny_title(suptitle, tiny)
    if title:
        fig.suptitle(title, color="#c00" if title != suptitle else "black", fontweight="bold" if title != suptitle
                     else "normal")
    return fig


def show_methods(image: np.ndarray, truth: np.ndarray | None, results: Mapping[str, object], size: float = 3.4,
                 suptitle: str | None = None, tiny: bool | None = None):
    """Image | ground truth | one label map per method (``{title: OvssResult}``, each drawn in its own
    classes and palette, the legend on the last); returns the figure. Under the tiny profile the
    title says, in red, that the maps are meaningless."""
    import matplotlib.pyplot as plt

    from rs_helpers.teaching.plotting import show_image, show_semantic

    results = dict(results)
    first = next(iter(results.values()))
    n = 1 + (truth is not None) + len(results)
    fig, axes = plt.subplots(1, n, figsize=(size * n, size), squeeze=False)
    axes = list(axes[0])
    show_image(image, axes.pop(0), "image")
    if truth is not None:
        show_semantic(truth, first.palette, first.class_names, axes.pop(0), legend=False, title="ground truth")
    for k, (title, result) in enumerate(results.items()):
        show_semantic(result.labels, result.palette, result.class_names, axes[k], legend=k == len(results) - 1,
                      title=title)
    title = tiny_title(suptitle, tiny)
    if title:
        warned = title != suptitle
        fig.suptitle(title, color="#c00" if warned else "black", fontweight="bold" if warned else "normal")
    fig.tight_layout()
    return fig


def show_query_scores(object_scores: np.ndarray, threshold: float, ax=None, title: str | None = None):
    """The object score of every query, highest first, as bars: kept queries (score > threshold) in
    blue, the others grey, the threshold as a red line. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    scores = np.sort(np.asarray(object_scores, float).ravel())[::-1]
    colours = ["tab:blue" if s > threshold else "lightgrey" for s in scores]
    ax.bar(np.arange(len(scores)), scores, color=colours, width=0.9)
    ax.axhline(threshold, color="red", linewidth=1, label=f"threshold {threshold:g}")
    ax.set_ylim(0, 1)
    ax.set_xlabel("queries, highest score first")
    ax.set_ylabel("object score")
    ax.legend(loc="upper right", fontsize=8)
    title = title or f"{int((scores > threshold).sum())} of {len(scores)} queries kept"
    ax.set_title(title, fontsize=9, color="#c00" if "TINY PROFILE" in title else "black")
    return ax


# --------------------------------------------------------------------------- the comparison table
STAGE_GROUPS = {  # OvssResult.timings keys of the three methods, in four columns
    "text": ("clip_text", "sam3_text"),
    "image model": ("proposals", "clip_dense", "clip_crops", "sam3_vision", "sam3_decoder"),
    "select / fuse": ("selection", "sam3_fusion", "labels"),
}


def stage_seconds(timings: Mapping[str, float]) -> dict[str, float]:
    """A method's ``OvssResult.timings`` in the table's columns: text encoders, image models (SAM's
    proposals and CLIP's dense map; SAM 3's image encoder and decoders), selection or fusion, the rest
    (resizing, upsampling labels) and the total. Sub-stages (``proposals.sam encoder``) are left out:
    their stage already counts them."""
    out = {group: float(sum(timings.get(key, 0.0) for key in keys)) for group, keys in STAGE_GROUPS.items()}
    total = float(timings.get("total", sum(v for k, v in timings.items() if "." not in k)))
    out["other"] = max(0.0, total - sum(out.values()))
    out["total"] = total
    return out


def comparison_table(rows: Sequence[Mapping], tiny: bool | None = None) -> str:
    """Rows of ``dict(sample=, method=, metric=, score=, timings=)`` (score a fraction, timings an
    ``OvssResult.timings``) as a text table: the score in %, then seconds per stage group. Under the
    tiny profile the header says the numbers are meaningless."""
    from rs_helpers.profile import is_tiny

    columns = list(STAGE_GROUPS) + ["other", "total"]
    header = (f"{'sample':22s} {'method':11s} {'metric':7s} {'score %':>8s} "
              + " ".join(f"{c + ' s':>15s}" for c in columns))
    lines = []
    if is_tiny() if tiny is None else tiny:
        lines.append("TINY PROFILE: random models, every score and time below is MEANINGLESS "
                     "(the code ran, that is all)")
    lines += [header, "-" * len(header)]
    for row in rows:
        seconds = stage_seconds(row.get("timings", {}))
        score = row.get("score")
        cell = "-" if score is None or not np.isfinite(score) else f"{100 * score:.1f}"
        lines.append(f"{row['sample']:22s} {row['method']:11s} {row.get('metric', ''):7s} {cell:>8s} "
                     + " ".join(f"{seconds[c]:15.2f}" for c in columns))
    return "\n".join(lines)


def region_areas(mask: np.ndarray) -> np.ndarray:
    """The pixel area of every separate region (8-connected) of a boolean mask, in label order."""
    from scipy import ndimage

    mask = np.asarray(mask, bool)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return np.zeros(0, int)
    return np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(int)


def count_regions(mask: np.ndarray) -> int:
    """The number of separate regions (8-connected) of a boolean mask: objects a method must find one by one."""
    return int(len(region_areas(mask)))
