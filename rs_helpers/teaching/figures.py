"""The figures of notebooks 01, 02, 03 and 05: SAM's three candidates for one click, the score
histograms and the grid-density plot (01); label maps beside the ground truth, and what the
CLS-bias removal subtracts and where it changes the labels (02); the tau sweep drawn as errors over
the image (03); the target and SAM's mask with the clicks that made it (05).

Each figure function returns its figure; the pure helpers (:func:`label_changes`,
:func:`binary_errors`, :func:`bias_by_row`) return arrays and are what the tests pin down. Under
the tiny profile (``tiny_warning`` None = follow the active profile) a figure says in red that
what it shows is meaningless.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from rs_helpers.errors import BadInputError
from rs_helpers.teaching.plotting import (IGNORE, MASK_BLUE, TARGET_GOLD, _rgb01, show_image, show_mask,
                                          show_points, show_semantic, show_target, legend_handles)

TINY_NOTE = "TINY PROFILE: random models, what this figure shows is MEANINGLESS"
# binary_errors codes and their colours: true positive, false positive, false negative
ERROR_NAMES = {1: "true positive", 2: "false positive", 3: "false negative"}
ERROR_COLOURS = {1: (0, 200, 0), 2: (230, 30, 30), 3: (30, 110, 255)}
CHANGED = (255, 0, 255)


# --------------------------------------------------------------------------- pure helpers
def label_changes(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, float]:
    """Where two label maps of one image differ: (H x W bool, the fraction of pixels that differ)."""
    before, after = np.asarray(before), np.asarray(after)
    if before.shape != after.shape or before.ndim != 2:
        raise BadInputError(f"two label maps of the same H x W shape, got {before.shape} and {after.shape}")
    changed = before != after
    return changed, float(changed.mean()) if changed.size else 0.0


def binary_errors(prediction: np.ndarray, ground_truth: np.ndarray, ignore: int = IGNORE) -> np.ndarray:
    """A 0/1 prediction against a 0/1 ground truth, per pixel: 0 true negative, 1 true positive,
    2 false positive, 3 false negative; ``ignore`` where the ground truth is ``ignore``."""
    pred, gt = np.asarray(prediction), np.asarray(ground_truth)
    if pred.shape != gt.shape:
        raise BadInputError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    p, g = pred == 1, gt == 1
    out = np.where(p & g, 1, np.where(p & ~g, 2, np.where(~p & g, 3, 0))).astype(np.uint8)
    out[gt == ignore] = ignore
    return out


def bias_by_row(bias: np.ndarray, row_class: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The W x R subtracted scores of :func:`rs_helpers.ovss.clip_dense.cls_bias` ordered by class:
    (row order, grouped by class and stable inside a class; their mean over the windows)."""
    bias = np.asarray(bias, float)
    row_class = np.asarray(row_class).reshape(-1)
    if bias.ndim != 2 or bias.shape[1] != len(row_class):
        raise BadInputError(f"bias must be windows x {len(row_class)} rows, got {bias.shape}")
    order = np.argsort(row_class, kind="stable")
    return order, bias.mean(0)[order]


# --------------------------------------------------------------------------- shared pieces
def pixel_axes(ax):
    """Show an image's pixel coordinates (x = column, y = row), the ones clicks are given in."""
    ax.set_axis_on()
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    return ax


def _tiny(tiny_warning: bool | None) -> bool:
    from rs_helpers.profile import is_tiny

    return is_tiny() if tiny_warning is None else bool(tiny_warning)


def _finish(fig, suptitle: str | None, tiny_warning: bool | None, note: str = TINY_NOTE):
    if _tiny(tiny_warning):
        fig.suptitle(((suptitle + "\n") if suptitle else "") + note, color="#c00", fontweight="bold")
    elif suptitle:
        fig.suptitle(suptitle)
    return fig


def _class_legend(fig, palette, class_names: Sequence[str], extra=(), ground_truth=None):
    """One legend under the panels for every class (and ``extra`` handles); "unlabelled" too
    when ``ground_truth`` has 255 pixels (drawn hatched grey)."""
    import matplotlib.patches as patches

    handles = [patches.Patch(facecolor=_rgb01(palette[i]), edgecolor="grey", label=name)
               for i, name in enumerate(class_names)]
    if ground_truth is not None and (np.asarray(ground_truth) == IGNORE).any():
        handles += [h for h in legend_handles(ground_truth, palette, ()) if h.get_label() == "unlabelled"]
    handles += list(extra)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 8), fontsize=9)


# --------------------------------------------------------------------------- notebook 01
def plot_mask_candidates(image: np.ndarray, masks: np.ndarray, scores: Sequence[float], clicks_xy,
                         labels: Sequence[int] = (1,), size: float = 4.0, suptitle: str | None = None,
                         tiny_warning: bool | None = None):
    """SAM's candidate masks for one prompt side by side, each with its predicted IoU and the
    clicks; the candidate with the highest score (the one :func:`rs_helpers.sam.predict_mask`
    keeps) is marked."""
    import matplotlib.pyplot as plt

    masks = np.asarray(masks, bool)
    scores = [float(s) for s in scores]
    if masks.ndim != 3 or len(masks) != len(scores) or not len(scores):
        raise BadInputError(f"want N x H x W masks with N scores, got {masks.shape} and {len(scores)}")
    best = int(np.argmax(scores))
    fig, axes = plt.subplots(1, len(masks), figsize=(size * len(masks), size + 0.6), squeeze=False,
                             layout="constrained")
    for k, ax in enumerate(axes.flat):
        kept = ", kept (highest)" if k == best else ""
        show_image(image, ax, f"candidate {k + 1}\npredicted IoU {scores[k]:.3f}{kept}")
        show_mask(masks[k], ax, color=(255, 140, 0) if k == best else None)
        show_points(clicks_xy, labels, ax, marker_size=220)
        pixel_axes(ax)
        ax.text(0.02, 0.02, f"{100 * masks[k].mean():.1f}% of the image", transform=ax.transAxes,
                fontsize=8, color="white", backgroundcolor=(0, 0, 0, 0.5))
    return _finish(fig, suptitle, tiny_warning)


def plot_score_histograms(predicted_iou: np.ndarray, stability_score: np.ndarray, iou_thresh: float = 0.88,
                          stability_thresh: float = 0.95, bins: int = 30, tiny_warning: bool | None = None):
    """Histograms of the raw masks' two quality scores with SAM's default thresholds."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for ax, values, thresh, name, rule in ((axes[0], predicted_iou, iou_thresh, "predicted IoU", ">"),
                                           (axes[1], stability_score, stability_thresh, "stability score", ">=")):
        values = np.asarray(values, float)
        ax.hist(values, bins=bins, color="tab:blue", label=f"raw masks ({len(values)})")
        ax.axvline(thresh, color="red", label=f"default threshold: keep {rule} {thresh}")
        ax.set_xlabel(name)
        ax.set_ylabel("number of raw masks")
        ax.set_title(name)
        ax.legend(fontsize=8, loc="upper left")
    return _finish(fig, None, tiny_warning, "TINY PROFILE: random SAM, these scores are MEANINGLESS")


def plot_grid_density(prompts: Sequence[int], masks: Sequence[int], seconds: Sequence[float],
                      tiny_warning: bool | None = None):
    """Masks kept (left axis) and seconds (right axis) against the number of grid prompts, with
    one legend for both lines."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
    left = ax.plot(prompts, masks, "o-", color="tab:blue", label="masks kept (left axis)")
    ax.set_xlabel("prompts (n x n grid points)")
    ax.set_ylabel("masks kept", color="tab:blue")
    right_ax = ax.twinx()
    right = right_ax.plot(prompts, seconds, "s--", color="tab:red", label="seconds (right axis)")
    right_ax.set_ylabel("seconds", color="tab:red")
    lines = left + right
    ax.legend(lines, [line.get_label() for line in lines], loc="upper left", fontsize=8)
    ax.set_title("grid density vs masks and time")
    return _finish(fig, None, tiny_warning, "TINY PROFILE: random tiny SAM, the counts and times\n"
                                            "say nothing about the real model")


# --------------------------------------------------------------------------- notebook 02
def plot_label_maps(image: np.ndarray, ground_truth: np.ndarray | None, maps: Mapping[str, np.ndarray],
                    palette, class_names: Sequence[str], size: float = 4.0, suptitle: str | None = None,
                    tiny_warning: bool | None = None):
    """Image | ground truth | each label map of ``maps`` (title -> H x W labels), all in the same
    palette, with one legend for every class under the panels."""
    import matplotlib.pyplot as plt

    panels = 1 + (ground_truth is not None) + len(maps)
    fig, axes = plt.subplots(1, panels, figsize=(size * panels, size + 1.2), squeeze=False, layout="constrained")
    axes = list(axes.flat)
    show_image(image, axes[0], "image")
    if ground_truth is not None:
        show_semantic(ground_truth, palette, class_names, axes[1], legend=False, title="ground truth")
    for ax, (title, labels) in zip(axes[1 + (ground_truth is not None):], maps.items()):
        show_semantic(labels, palette, class_names, ax, legend=False, title=title)
    _class_legend(fig, palette, class_names, ground_truth=ground_truth)
    return _finish(fig, suptitle, tiny_warning)


def plot_cls_bias(image: np.ndarray, bias: np.ndarray, row_names: Sequence[str], row_class: Sequence[int],
                  labels_without: np.ndarray, labels_with: np.ndarray, palette, class_names: Sequence[str],
                  cls_lambda: float, size: float = 4.0, suptitle: str | None = None,
                  tiny_warning: bool | None = None):
    """What the CLS-bias removal does: (a) what it subtracts from every patch, per text row (bar:
    mean over the windows, dots: each window), coloured by class; (b, c) the label maps without
    and with it (one legend); (d) the pixels whose label it changes, over the image."""
    import matplotlib.patches as patches
    import matplotlib.pyplot as plt

    bias = np.asarray(bias, float)
    order, mean = bias_by_row(bias, row_class)
    row_class = np.asarray(row_class).reshape(-1)
    changed, fraction = label_changes(labels_without, labels_with)
    fig, axes = plt.subplots(1, 4, figsize=(size * 4.6, size + 1.4), layout="constrained",
                             gridspec_kw={"width_ratios": [1.6, 1, 1, 1]})
    ax = axes[0]
    x = np.arange(len(order))
    ax.bar(x, mean, color=[_rgb01(palette[row_class[r]]) for r in order], edgecolor="black", linewidth=0.5)
    for j, r in enumerate(order):
        ax.scatter(np.full(len(bias), x[j]), bias[:, r], s=10, color="black", zorder=3)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xticks(x, [row_names[r] for r in order], rotation=70, fontsize=8)
    ax.set_xlabel("text row (class name or synonym)")
    ax.set_ylabel(f"subtracted: {cls_lambda:g} x cos(CLS, text)")
    ax.set_title(f"(a) subtracted from every patch of a window\nbar: mean of {len(bias)} windows, dots: each window")
    show_semantic(labels_without, palette, class_names, axes[1], legend=False, title="(b) labels without the removal")
    show_semantic(labels_with, palette, class_names, axes[2], legend=False,
                  title=f"(c) labels with it (lambda {cls_lambda:g})")
    show_image(image, axes[3], f"(d) label changed by the removal\n{100 * fraction:.1f}% of the pixels")
    overlay = np.zeros(changed.shape + (4,))
    overlay[changed] = (*_rgb01(CHANGED), 0.7)
    axes[3].imshow(overlay, interpolation="nearest")
    _class_legend(fig, palette, class_names, [patches.Patch(color=_rgb01(CHANGED), label="label changed (d)")])
    return _finish(fig, suptitle, tiny_warning)


# --------------------------------------------------------------------------- notebook 03
def plot_binary_overlays(image: np.ndarray, ground_truth: np.ndarray, predictions: Mapping[str, np.ndarray],
                         palette, class_names: Sequence[str], size: float = 4.0, alpha: float = 0.55,
                         suptitle: str | None = None, tiny_warning: bool | None = None):
    """Image | ground truth | each 0/1 prediction of ``predictions`` (title -> map) drawn over the
    image as true positives, false positives and false negatives (:func:`binary_errors`), one
    legend for all panels."""
    import matplotlib.patches as patches
    import matplotlib.pyplot as plt

    panels = 2 + len(predictions)
    fig, axes = plt.subplots(1, panels, figsize=(size * panels, size + 1.2), squeeze=False, layout="constrained")
    axes = list(axes.flat)
    show_image(image, axes[0], "image")
    show_semantic(ground_truth, palette, class_names, axes[1], legend=False, title="ground truth")
    for ax, (title, prediction) in zip(axes[2:], predictions.items()):
        errors = binary_errors(prediction, ground_truth)
        show_image(image, ax, title)
        overlay = np.zeros(errors.shape + (4,))
        for code, colour in ERROR_COLOURS.items():
            overlay[errors == code] = (*_rgb01(colour), alpha)
        ax.imshow(overlay, interpolation="nearest")
    extra = [patches.Patch(color=_rgb01(ERROR_COLOURS[c]), label=name) for c, name in ERROR_NAMES.items()]
    _class_legend(fig, palette, [f"{name} (ground truth)" for name in class_names], extra, ground_truth)
    return _finish(fig, suptitle, tiny_warning)


# --------------------------------------------------------------------------- notebook 05
def plot_clicks_on_target(image: np.ndarray, target: np.ndarray, mask: np.ndarray, clicks_xy,
                          labels: Sequence[int], mask_title: str = "SAM mask", size: float = 4.0,
                          suptitle: str | None = None, tiny_warning: bool | None = None):
    """Target | SAM's mask, both with the clicks: the target in gold (fill and outline, so the
    green positive stars stay visible on it), the mask in blue with the target's outline, and one
    legend for the target, the mask and the two kinds of click."""
    import matplotlib.lines as lines
    import matplotlib.patches as patches
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(2 * size, size + 0.5), layout="constrained")
    show_image(image, axes[0], title="target")
    show_target(target, axes[0])
    show_points(clicks_xy, labels, axes[0])
    show_image(image, axes[1], title=mask_title)
    show_mask(mask, axes[1])
    show_target(target, axes[1], alpha=0.0, linewidth=1.2)
    show_points(clicks_xy, labels, axes[1])
    star = dict(marker="*", linestyle="none", markersize=13, markeredgecolor="white")
    handles = [patches.Patch(facecolor=(*_rgb01(TARGET_GOLD), 0.4), edgecolor=_rgb01(TARGET_GOLD), linewidth=2,
                             label="target (gold)"),
               patches.Patch(facecolor=(*_rgb01(MASK_BLUE), 0.5), edgecolor="white", label="SAM mask (blue)"),
               lines.Line2D([], [], color="green", label="positive click", **star),
               lines.Line2D([], [], color="red", label="negative click", **star)]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=9)
    return _finish(fig, suptitle, tiny_warning, "TINY PROFILE: random SAM, its mask is MEANINGLESS")
