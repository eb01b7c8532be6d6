"""Plots in SAM's visual language: translucent masks with contours, positive clicks as green
stars and negative ones as red, green boxes, targets outlined in gold (never green, so the
positive stars stay visible on them); semantic maps with a fixed palette, unlabelled pixels
hatched grey, and a legend of every class (absent ones marked). Every function takes ``ax=``
(a new one is made if omitted) and returns it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from rs_helpers.errors import BadInputError
from rs_helpers.refer.click_sim import (
    ClickSimulation,
    check_mask,
    farthest_point,
    padded_distance,
)

IGNORE = 255
MASK_BLUE = (30, 144, 255)
TARGET_GOLD = (255, 190, 0)  # targets / ground truth: far from the green and red click stars
UNLABELLED = (210, 210, 210)  # ignore (255) pixels: neutral grey, drawn hatched
UNLABELLED_HATCH = "////"


def _ax(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 6))
    return ax


def _rgb01(color) -> np.ndarray:
    color = np.asarray(color, float)
    return color / 255.0 if color.max() > 1 else color


def colorize(labels: np.ndarray, palette: Sequence[Sequence[int]], ignore_color=(0, 0, 0)) -> np.ndarray:
    """Class indices to an RGB uint8 image; indices outside the palette (e.g. 255) get ``ignore_color``."""
    lut = np.tile(np.asarray(ignore_color, np.uint8), (256, 1))
    lut[: len(palette)] = np.asarray(palette, np.uint8)[:, :3]
    return lut[np.asarray(labels, np.uint8)]


def show_image(image: np.ndarray, ax=None, title: str | None = None):
    ax = _ax(ax)
    ax.imshow(image)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def show_mask(mask: np.ndarray, ax=None, color=None, alpha: float = 0.5, contour: bool = True):
    """Overlay a boolean mask as a translucent colour with a white contour (SAM notebooks' style)."""
    ax = _ax(ax)
    mask = np.asarray(mask, bool)
    rgb = _rgb01(MASK_BLUE if color is None else color)
    overlay = np.zeros(mask.shape + (4,))
    overlay[mask] = (*rgb, alpha)
    ax.imshow(overlay, interpolation="nearest")
    if contour and mask.any() and not mask.all():
        ax.contour(mask.astype(float), levels=[0.5], colors=["white"], linewidths=1.0)
    return ax


def show_points(coords_xy: np.ndarray, labels: Sequence[int], ax=None, marker_size: int = 250):
    """Positive clicks (label 1) as green stars, negative (label 0) as red stars."""
    ax = _ax(ax)
    coords = np.asarray(coords_xy, float).reshape(-1, 2)
    labels = np.asarray(labels).reshape(-1)
    for value, colour in ((1, "green"), (0, "red")):
        pts = coords[labels == value]
        if len(pts):
            ax.scatter(pts[:, 0], pts[:, 1], color=colour, marker="*", s=marker_size,
                       edgecolor="white", linewidth=1.25)
    return ax


def show_target(mask: np.ndarray, ax=None, color=TARGET_GOLD, alpha: float = 0.25, linewidth: float = 2.0):
    """A target (ground-truth) mask: a faint fill and a thick outline in gold, so that green
    positive and red negative click stars stay visible on it."""
    ax = _ax(ax)
    mask = np.asarray(mask, bool)
    rgb = _rgb01(color)
    overlay = np.zeros(mask.shape + (4,))
    overlay[mask] = (*rgb, alpha)
    ax.imshow(overlay, interpolation="nearest")
    if mask.any() and not mask.all():
        ax.contour(mask.astype(float), levels=[0.5], colors=[tuple(rgb)], linewidths=linewidth)
    return ax


def show_box(box_xyxy: Sequence[float], ax=None, color="green"):
    """A box outline (x0, y0, x1, y1)."""
    import matplotlib.patches as patches

    ax = _ax(ax)
    x0, y0, x1, y1 = [float(v) for v in box_xyxy]
    ax.add_patch(patches.Rectangle((x0, y0), x1 - x0, y1 - y0, edgecolor=color, facecolor=(0, 0, 0, 0), lw=2))
    return ax


def hatch_unlabelled(ax, labels: np.ndarray):
    """Hatch the ``IGNORE`` pixels of a label map (on top of their grey), so they read as 'no label'."""
    ignore = np.asarray(labels) == IGNORE
    if ignore.any():
        hatched = ax.contourf(ignore.astype(float), levels=[0.5, 1.5], colors="none", hatches=[UNLABELLED_HATCH])
        # matplotlib >= 3.8: the contour set is one collection; 3.7: one collection per level
        for artist in [hatched] if hasattr(hatched, "set_edgecolor") else hatched.collections:
            artist.set_edgecolor("dimgrey")
            artist.set_linewidth(0)
    return ax


def legend_handles(labels: np.ndarray, palette, class_names: Sequence[str], absent: str = "mark"):
    """Legend patches for a label map: every class (``absent="mark"``: those missing from the map
    faded and named "(absent)"; ``"hide"``: left out), then "unlabelled" if the map has ``IGNORE``."""
    import matplotlib.patches as patches

    present = set(np.unique(np.asarray(labels)).tolist())
    handles = []
    for i, name in enumerate(class_names):
        if i in present or absent != "hide":
            here = i in present
            handles.append(patches.Patch(facecolor=(*_rgb01(palette[i]), 1.0 if here else 0.3), edgecolor="grey",
                                         label=name if here else f"{name} (absent)"))
    if IGNORE in present:
        handles.append(patches.Patch(facecolor=_rgb01(UNLABELLED), edgecolor="dimgrey", hatch=UNLABELLED_HATCH,
                                     label="unlabelled"))
    return handles


def place_legend(ax, handles, loc: str = "lower right", fontsize: float = 8):
    """``loc="below"``: under the axes, outside the image (two columns); otherwise inside at ``loc``."""
    if not handles:
        return None
    if loc == "below":
        return ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=2,
                         fontsize=fontsize, frameon=False, handlelength=1.5, columnspacing=1.0)
    return ax.legend(handles=handles, loc=loc, fontsize=fontsize, framealpha=0.8)


def show_semantic(labels: np.ndarray, palette, class_names: Sequence[str], ax=None, legend: bool = True,
                  image: np.ndarray | None = None, alpha: float = 1.0, title: str | None = None,
                  legend_loc: str = "lower right", absent: str = "mark"):
    """A class-index map in fixed palette colours, optionally over ``image``; 255 (unlabelled) is
    hatched grey. The legend lists every class (see :func:`legend_handles`), at ``legend_loc``
    (``"below"``: outside, under the map)."""
    ax = _ax(ax)
    if image is not None:
        ax.imshow(image)
    coloured = colorize(labels, palette, ignore_color=UNLABELLED)
    if image is not None and alpha < 1:
        rgba = np.concatenate([coloured / 255.0, np.full(labels.shape + (1,), alpha)], axis=-1)
        rgba[np.asarray(labels) == IGNORE, 3] = 0
        ax.imshow(rgba, interpolation="nearest")
    else:
        ax.imshow(coloured, interpolation="nearest")
    hatch_unlabelled(ax, labels)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    if legend:
        place_legend(ax, legend_handles(labels, palette, class_names, absent), legend_loc)
    return ax


def show_proposals(image: np.ndarray, masks: np.ndarray, ax=None, seed: int = 0, alpha: float = 0.45):
    """Every proposal in its own random colour, larger masks underneath."""
    ax = show_image(image, _ax(ax))
    masks = np.asarray(masks, bool)
    if len(masks) == 0:
        return ax
    rng = np.random.default_rng(seed)
    order = np.argsort(-masks.reshape(len(masks), -1).sum(1))
    canvas = np.zeros(masks.shape[1:] + (4,))
    for i in order:
        canvas[masks[i]] = (*rng.random(3), alpha)
    ax.imshow(canvas, interpolation="nearest")
    return ax


def show_panels(image: np.ndarray, ground_truth: np.ndarray | None, prediction: np.ndarray, palette,
                class_names: Sequence[str], titles: Sequence[str] = ("Image", "Ground truth", "Prediction"),
                suptitle: str | None = None, size: float = 4.5, tiny_warning: bool | None = None):
    """Image | Ground truth | Prediction side by side, each map with its own legend under it
    (every class of ``class_names``, absent ones marked; "unlabelled" where the ground truth has
    255); returns the figure. Under the tiny profile (``tiny_warning`` None = follow the active
    profile) the figure says, in red, that the prediction is meaningless."""
    import matplotlib.pyplot as plt

    from rs_helpers.profile import is_tiny

    n = 3 if ground_truth is not None else 2
    rows = -(-(len(class_names) + 1) // 2)  # the legends' height under the maps
    fig, axes = plt.subplots(1, n, figsize=(size * n, size + 0.25 * rows + 0.6), layout="constrained")
    show_image(image, axes[0], titles[0])
    if ground_truth is not None:
        show_semantic(ground_truth, palette, class_names, axes[1], title=titles[1], legend_loc="below")
    show_semantic(prediction, palette, class_names, axes[-1], title=titles[-1], legend_loc="below")
    if tiny_warning if tiny_warning is not None else is_tiny():
        suptitle = ((suptitle + "\n") if suptitle else "") + "TINY PROFILE: random models, the prediction is MEANINGLESS"
        fig.suptitle(suptitle, color="#c00", fontweight="bold")
    elif suptitle:
        fig.suptitle(suptitle)
    return fig


# --------------------------------------------------------------------------- click simulation
def plot_click_simulation(image_rgb: np.ndarray, gt_mask: np.ndarray, sim: ClickSimulation,
                          ncols: int = 3, size: float = 3.2, title: str | None = None):
    """One panel per click: SAM's mask after that click (blue), the ground-truth outline (yellow),
    the clicks so far (green positive, red negative) and the IoU. Needs ``keep_masks=True``.
    ``title``: a line above the panels (e.g. the tiny-profile warning)."""
    import matplotlib.pyplot as plt

    from rs_helpers.teaching.plotting import show_image, show_mask, show_points

    if not sim.masks:
        raise BadInputError("run simulate_clicks(..., keep_masks=True) to draw the masks")
    n = len(sim.masks)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    gt = np.asarray(gt_mask) > 0
    names = {"gt": "deepest in target", "fn": "missed part", "fp": "wrongly added"}
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.set_axis_off()
            continue
        click = sim.clicks[k]
        sign = "+" if click.label else "-"
        show_image(image_rgb, ax, title=f"click {k + 1} ({sign}, {names[sim.sources[k]]})\nIoU {sim.ious[k]:.2f}")
        show_mask(sim.masks[k], ax)
        ax.contour(gt.astype(float), levels=[0.5], colors=["yellow"], linewidths=1.0)
        show_points(sim.points[: k + 1], sim.labels[: k + 1], ax, marker_size=160)
    return _finish(fig, title)


def plot_distance_maps(gt_mask: np.ndarray, pred_mask: np.ndarray | None = None, size: float = 3.2,
                       title: str | None = None):
    """The maps that choose the clicks: the distance transform of the ground truth (first click),
    and, given a prediction, those of its false-negative and false-positive regions (next click);
    the maximum of each is marked, and each map has a colour bar in pixels."""
    import matplotlib.pyplot as plt

    gt = check_mask(gt_mask)
    maps = [("ground truth: first click", padded_distance(gt), 1)]
    if pred_mask is not None:
        pred = np.asarray(pred_mask, bool)
        maps += [("false negatives (+ click)", padded_distance(gt & ~pred), 1),
                 ("false positives (- click)", padded_distance(pred & ~gt), 0)]
    fig, axes = plt.subplots(1, len(maps), figsize=(size * 1.25 * len(maps), size), squeeze=False)
    for ax, (name, dist, label) in zip(axes.flat, maps):
        image = ax.imshow(dist, cmap="magma", vmin=0)
        ax.set_axis_off()
        bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
        bar.set_label("distance to the nearest pixel outside (pixels)", fontsize=8)
        bar.ax.tick_params(labelsize=7)
        x, y, value = farthest_point(dist)
        if value > 0:
            ax.scatter([x], [y], marker="*", s=200, color="green" if label else "red", edgecolor="white")
        ax.set_title(f"{name}\nmax {value:.1f} px")
    return _finish(fig, title)


def _finish(fig, title: str | None):
    if title:
        fig.suptitle(title, color="red" if "TINY" in title.upper() else "black")
    fig.tight_layout()
    return fig
