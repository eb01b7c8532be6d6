# %% [markdown]
# # 01 · SAM grid proposals
# {{BADGE}}
#
# **Objectives.** After this notebook you can
# 1. explain what SAM computes once per image (the image embedding) and what it computes per prompt;
# 2. turn a regular n x n grid of points into candidate masks ("proposals") with SAM's automatic mask generator;
# 3. read what the quality thresholds (predicted IoU, stability, box NMS) keep and drop;
# 4. choose a grid density, knowing what it costs in masks and time.
#
# **Prerequisites.** Notebook 00 (profiles, samples, `read_image`).
#
# **Time.** About 15 minutes (plus model download the first time under the full profile).
#
# This is stage 1 of the open-vocabulary pipeline of the method (SAM proposals + CLIP selection,
# see [`docs/method.md`](../docs/method.md)): SAM cuts the image into regions without knowing any
# class names; CLIP names them in notebook 02. An optional appendix at the end measures where the
# time goes and compares SAM's own generator with the suite's faster one.

# %%
# {{SETUP}}

# %% [markdown]
# ## Settings
# Every cost knob is here. The paper uses SAM-L (`vit_l`) and a 29 x 29 grid; under the tiny
# profile (CI) the grids are tiny and the model is random.

# %%
from rs_helpers.teaching import pick

S = pick(
    full=dict(sam="vit_l", sample="dubai_tile2_part001", points_per_side=29, threshold_grid=8,
              grids=[8, 16, 29], device=None),
    tiny=dict(points_per_side=4, threshold_grid=3, grids=[2, 3, 4]),
)
S

# %%
from rs_helpers.profile import is_tiny

if is_tiny(S["profile"]):
    print("TINY PROFILE: SAM is random here. Every mask below is MEANINGLESS; only the mechanics are real.")

# %% [markdown]
# ## 1. One image embedding, many prompts
# SAM has three parts: a heavy **image encoder** (a ViT) that runs once per image and produces an
# embedding grid (64 x 64 x 256 for the real models, from a 1024 px input); a light **prompt
# encoder** for points, boxes or masks; and a small **mask decoder** that combines the two and
# returns three candidate masks with a predicted IoU each. Prompts are cheap once the image is
# embedded, which is what makes a grid of hundreds of prompts affordable.

# %%
import time

import matplotlib.pyplot as plt

from rs_helpers.models import load_sam
from rs_helpers.samples import get_sample

sam = load_sam(S["sam"], profile=S["profile"], device=S["device"])
sample = get_sample(S["sample"])
image = sample.load_image().rgb
print("image:", image.shape)

# %%
from rs_helpers.refer import Click
from rs_helpers.sam import make_predictor, predict_mask

start = time.perf_counter()
predictor = make_predictor(sam, image)  # runs the image encoder once
encode_seconds = time.perf_counter() - start
print(f"image embedding {tuple(predictor.features.shape)} in {encode_seconds:.2f} s")

height, width = image.shape[:2]
click = Click(width // 2, height // 2, 1)
start = time.perf_counter()
answer = predict_mask(predictor, [click])
print(f"one point prompt: {time.perf_counter() - start:.3f} s; scores of the 3 candidates:",
      [round(s, 3) for s in answer.scores])

# %%
from rs_helpers.teaching import show_image, show_mask, show_points

ax = show_image(image, title=f"one click, best of 3 candidates (predicted IoU {answer.score:.2f})")
show_mask(answer.mask, ax)
show_points([[click.x, click.y]], [1], ax);

# %% [markdown]
# *Try it:* move the click (`Click(x, y, 1)`) onto another object and rerun the two cells.

# %% [markdown]
# ## 2. A grid of prompts
# For segmentation *without* a text query, SAM is prompted with a regular n x n grid of points
# (cell centres). Each point yields up to three masks, so a 29 x 29 grid asks 841 questions and
# gets 2,523 raw answers, most of them duplicates or poor.

# %%
from rs_helpers.sam import grid_points

points = grid_points(S["points_per_side"], width, height)
ax = show_image(image, title=f"{S['points_per_side']} x {S['points_per_side']} = {len(points)} prompts")
show_points(points, [1] * len(points), ax, marker_size=40);

# %% [markdown]
# ## 3. What the thresholds keep
# Three filters turn raw answers into proposals (SAM's own defaults; the paper does not state
# them):
# * **predicted IoU** (`pred_iou_thresh`, 0.88): the decoder's own guess of mask quality;
# * **stability** (`stability_score_thresh`, 0.95): how much the mask changes when its logit
#   threshold moves by +-1; ragged, uncertain masks change a lot;
#
# As in segment-anything, a mask is kept when `predicted_iou > 0.88` (strictly) and
# `stability_score >= 0.95` (greater or equal); the counts below use the same comparisons.
# * **box NMS** (`box_nms_thresh`, 0.7): of masks with overlapping boxes, keep the best.
#
# Below, one run with the filters switched off keeps every raw answer with its scores, so we can
# count what each threshold would keep without rerunning SAM.

# %%
import numpy as np

from rs_helpers.sam import ProposalSettings, generate_reference

loose = generate_reference(sam, image, ProposalSettings(points_per_side=S["threshold_grid"], pred_iou_thresh=0.0,
                                                        stability_score_thresh=0.0, box_nms_thresh=1.0))
print(f"{S['threshold_grid']}^2 points -> {len(loose)} raw masks")
for iou_t in (0.5, 0.88, 0.95):
    for stab_t in (0.8, 0.95):
        kept = np.sum((loose.predicted_iou > iou_t) & (loose.stability_score >= stab_t))
        print(f"  predicted IoU > {iou_t:4.2f} and stability >= {stab_t:4.2f}: {kept:5d} masks")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
axes[0].hist(loose.predicted_iou, bins=30)
axes[0].axvline(0.88, color="red")
axes[0].set_title("predicted IoU (red: default threshold)")
axes[1].hist(loose.stability_score, bins=30)
axes[1].axvline(0.95, color="red")
axes[1].set_title("stability score")
fig.tight_layout()

# %% [markdown]
# ## 4. Grid density: masks and time
# Denser grids find smaller objects but cost more decoder passes. The paper's ablation (SAM-L):
# LoveDA mIoU 36.2 / 38.1 / 38.2 for n = 10 / 20 / 29: most of the gain comes before n = 20.
# The smallest grid runs first and gives a per-point rate to estimate the others.

# %%
rows = []
rate = None
for n in S["grids"]:
    if rate is not None:
        print(f"grid {n} x {n}: expected about {rate * n * n:.0f} s ...", flush=True)
    start = time.perf_counter()
    proposals = generate_reference(sam, image, ProposalSettings(points_per_side=n))
    seconds = time.perf_counter() - start
    rate = seconds / (n * n)
    rows.append(dict(points_per_side=n, prompts=n * n, masks=len(proposals), seconds=round(seconds, 2)))
    print(rows[-1])

# %%
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot([r["prompts"] for r in rows], [r["masks"] for r in rows], "o-", label="masks")
ax.set_xlabel("prompts (n x n)")
ax.set_ylabel("masks kept")
ax2 = ax.twinx()
ax2.plot([r["prompts"] for r in rows], [r["seconds"] for r in rows], "s--", color="tab:red", label="seconds")
ax2.set_ylabel("seconds", color="tab:red")
ax.set_title("grid density vs masks and time")
fig.tight_layout()

# %% [markdown]
# ## 5. The proposals on the sample
# Each proposal in its own colour, larger ones underneath. With real weights they follow
# roofs, roads and fields; regions no mask covers are common, and notebook 02 fills them from CLIP.
#
# Proposals depend only on the image and SAM's settings, not on the class names, so the suite
# caches them: a new vocabulary in notebook 02 never reruns SAM.

# %%
from rs_helpers.teaching import show_proposals
from rs_helpers.sam import ProposalCache

cache = ProposalCache()
settings = ProposalSettings(points_per_side=S["points_per_side"])
proposals = cache.get(sam, image, settings)
again = cache.get(sam, image, settings)  # same image and settings: served from the cache
print(f"{len(proposals)} proposals; cache hits {cache.hits}, misses {cache.misses}")
ax = show_proposals(image, proposals.masks)
ax.set_title(f"{len(proposals)} SAM proposals ({S['points_per_side']}^2 grid)");

# %% [markdown]
# *Try it:* set `min_mask_region_area=100` in `ProposalSettings` to fill small holes and drop
# specks, and compare the count.

# %% [markdown]
# ## 6. Explore: grid density and thresholds
# The explorer embeds the image **once**, runs the decoder once per grid density (its raw
# answers are kept), and re-filters them when a threshold moves: only a new density costs a
# decoder pass, a threshold costs almost nothing. It shows the default settings at once, so
# "Run all" does not wait for you. The masks equal those of the suite's fast generator
# (`rs_helpers.sam.generate_fast`, see the appendix) for the same settings.
#
# *Try it:* lower the stability threshold and watch ragged masks appear; raise the box NMS IoU
# to 1.0 to see the duplicates NMS removes. Under the tiny profile the masks are meaningless.

# %%
from rs_helpers.sam import format_seconds
from rs_helpers.teaching import grid_explorer

explorer = grid_explorer(sam, image, points_per_side=S["threshold_grid"], max_points_per_side=S["points_per_side"])
if explorer is not None:
    n = S["points_per_side"]
    print(f"from this explorer's timings, a fresh {n} x {n} grid would take about "
          f"{format_seconds(explorer.state.expected_seconds(n))} here")
explorer

# %% [markdown]
# ## Exercises
# Each exercise has a task, a cell for your answer (tagged `solution`: in the student copy it is a stub that
# raises `NotImplementedError` until you replace it) and a check. `q1.hint()` gives a hint; `q1.solution()`
# shows our solution.

# %%
from rs_helpers.teaching.exercises.nb01 import q1, q2

# %% [markdown]
# **Exercise 1 · The grid of point prompts.** SAM's automatic mask generator prompts the decoder with an n x n
# grid of points. For an image of **width 640 and height 480** and **n = 4**, write the 16 points as an array
# of shape (16, 2) holding pixel **(x, y)** (x = column, y = row). As in segment-anything, each point sits at
# the **centre of its cell** when the image is cut into n x n equal cells. Any order of the points is
# accepted.

# %%
import numpy as np

n, width, height = 4, 640, 480

# %% tags=["solution"]
axis = (np.arange(n) + 0.5) / n  # cell centres, as fractions of the side
xs, ys = np.meshgrid(axis * width, axis * height)
answer = np.stack([xs.ravel(), ys.ravel()], axis=1)

# %%
q1.check(answer)
# q1.hint()
# q1.solution()

# %% [markdown]
# **Exercise 2 · Which proposals survive SAM's filters?** `predicted_iou` and `stability_score` hold the two
# quality scores of 25 proposals. With SAM's default thresholds, a proposal is kept when **`predicted_iou >
# 0.88`** (strictly greater) **and** **`stability_score >= 0.95`** (greater or equal), exactly as in
# segment-anything's `SamAutomaticMaskGenerator`. How many proposals are kept? (An integer.)

# %%
from rs_helpers.teaching.exercises.nb01 import example_scores

predicted_iou, stability_score = example_scores()
print("predicted IoU:  ", predicted_iou)
print("stability score:", stability_score)

# %% tags=["solution"]
keep = (predicted_iou > 0.88) & (stability_score >= 0.95)
answer = int(keep.sum())

# %%
q2.check(answer)
# q2.hint()
# q2.solution()

# %% [markdown]
# ### More to explore
# 1. Which threshold removes more masks on this image, predicted IoU or stability?
# 2. Estimate from section 4 how long a 64 x 64 grid would take here.

# %% [markdown]
# ## Summary
# * SAM embeds the image once; each point prompt is a cheap decoder pass with three candidates.
# * A regular grid of points gives class-agnostic proposals; predicted IoU, stability and box NMS prune them.
# * Denser grids give more, smaller masks at a cost that grows with the number of points.
# * Proposals are cached per (image, settings), so changing the class names costs nothing on the SAM side.
#
# ## What's next
# **02 · CLIP mask selection**: CLIP names the regions, turning proposals into a semantic or binary map.

# %% [markdown]
# ## Appendix (optional): the same masks, faster, and where the time goes
# A detour for the curious, not needed for notebook 02. It runs both generators once more on
# the full grid, so under the full profile on a CPU it takes minutes (the estimate is printed).
#
# segment-anything's `SamAutomaticMaskGenerator` repeats the image embedding for every prompt in
# the mask decoder, upsamples every candidate to full resolution before filtering, and round-trips
# masks through run-length encoding. `rs_helpers.sam.fast_proposals.generate_fast` computes the shared
# work once per image, filters on the low-resolution logits and upsamples only the survivors. It
# returns the same masks (the tests require at least 95% matched at IoU 0.95 both ways).
# `rs-seg bench` measures both against the *floor* (SAM's encoder plus one decoder pass per prompt).
#
# A `Timings` object records seconds and peak memory per stage; `rs-seg ovss --timings` prints the
# same for the whole pipeline.

# %%
from rs_helpers.sam import generate_fast, mask_match
from rs_helpers.sam import Timings

if rate is not None:
    print(f"expected: about {2 * rate * S['points_per_side'] ** 2:.0f} s for both generators", flush=True)
start = time.perf_counter()
reference = generate_reference(sam, image, settings)
reference_seconds = time.perf_counter() - start
timings = Timings(device=str(next(sam.parameters()).device))
fast = generate_fast(sam, image, settings, timings=timings)
print(timings.table(f"fast generator, {S['points_per_side']}^2 grid"))
a_in_b, b_in_a = mask_match(reference.masks, fast.masks)
print(f"reference {reference_seconds:.2f} s, fast {timings.total_seconds:.2f} s; "
      f"masks {len(reference)} vs {len(fast)}, matched {100 * a_in_b:.0f}% / {100 * b_in_a:.0f}%")
