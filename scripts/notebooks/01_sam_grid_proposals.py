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
# **Time.** About 15 minutes (plus model download the first time under the full profile), plus 35 for the
# four exercises.
#
# {{COMPUTE}}
#
# This is stage 1 of the open-vocabulary pipeline of the method (SAM proposals + CLIP selection,
# see [`docs/method.md`](../docs/method.md)): SAM cuts the image into regions without knowing any
# class names; CLIP names them in notebooks 02 and 03. An optional appendix at the end measures where the
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
    # classroom: real weights, laptop-sized settings (SAM ViT-B, 16 x 16 grid, 512 px)
    classroom=dict(sam="vit_b", points_per_side=16, grids=[8, 12, 16]),
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
# returns three candidate masks with a predicted IoU each (why three: below). Prompts are cheap
# once the image is embedded, which is what makes a grid of hundreds of prompts affordable.

# %%
import time

from rs_helpers.models import load_sam
from rs_helpers.samples import get_sample

sam = load_sam(S["sam"], profile=S["profile"], device=S["device"])
sample = get_sample(S["sample"])
image = sample.load_image().rgb
print("image:", image.shape)

# %%
from rs_helpers.refer import Click
from rs_helpers.sam import make_predictor, predict_mask
from rs_helpers.sam.from_clicks import clicks_to_arrays

start = time.perf_counter()
predictor = make_predictor(sam, image)  # runs the image encoder once
encode_seconds = time.perf_counter() - start
print(f"image embedding {tuple(predictor.features.shape)} in {encode_seconds:.2f} s")

height, width = image.shape[:2]
click = Click(width // 2, height // 2, 1)  # x = column, y = row, label 1 = positive
coords, labels = clicks_to_arrays([click])
start = time.perf_counter()
candidates, candidate_scores, _ = predictor.predict(point_coords=coords, point_labels=labels,
                                                    multimask_output=True)
print(f"one point prompt: {time.perf_counter() - start:.3f} s; {len(candidates)} candidate masks, "
      f"predicted IoU {[round(float(s), 3) for s in candidate_scores]}")

# %% [markdown]
# ### One click, three answers
# A single point is **ambiguous**: a click on a window could mean the window (a subpart), the roof
# (a part) or the whole house. SAM does not guess one meaning; its decoder has three output
# tokens and returns three masks, which with real weights are often nested (subpart, part, whole;
# the order is not guaranteed), each with a **predicted IoU**: the decoder's own estimate of how
# well that mask fits what was meant. SAM's predictor notebook shows the three the same way.
#
# Below: the three candidates for the click (green star), with their scores; the one with the
# highest score is the one kept (orange). Under the tiny profile the masks and scores are random.

# %% tags=["gallery"]
from rs_helpers.teaching import show_image, show_mask, show_points
from rs_helpers.teaching.figures import pixel_axes, plot_mask_candidates

plot_mask_candidates(image, candidates, candidate_scores, [[click.x, click.y]], [1],
                     suptitle=f"one click at (x {click.x}, y {click.y}): SAM's three candidates");

# %% [markdown]
# **Which mask is used.** When a single mask is needed, the package keeps the candidate with the
# highest predicted IoU (`rs_helpers.sam.predict_mask`, rule `multimask="auto"`). With **two or
# more clicks** the target is much less ambiguous, so SAM is asked for one mask instead
# (`multimask_output=False`): the three candidates would mostly agree, and segment-anything's
# documentation notes that for such prompts the single output can do better (SAM's paper trains a
# fourth output token for exactly this case). Negative clicks (label 0) mark what is *not* wanted.
# The grid in section 2 is different again: the automatic generator keeps all three candidates of
# every point and lets the quality filters of section 3 choose.

# %%
answer = predict_mask(predictor, [click])  # one click: the best of three
print(f"one click:  {len(answer.scores)} candidates, kept the one with predicted IoU {answer.score:.3f}")
second = Click(width // 2 + width // 8, height // 2, 1)  # a second positive click to the right
both = predict_mask(predictor, [click, second])
print(f"two clicks: {len(both.scores)} mask asked for (multimask_output={both.multimask_output}), "
      f"predicted IoU {both.score:.3f}")

ax = show_image(image, title="two positive clicks: one mask")
show_mask(both.mask, ax)
show_points([[click.x, click.y], [second.x, second.y]], [1, 1], ax)
pixel_axes(ax);

# %% [markdown]
# *Try it:* move the click (`Click(x, y, 1)`, read x and y off the axes) onto another object and
# rerun the cells of this section; add a negative click (`Click(x, y, 0)`) to the two-click cell.

# %% [markdown]
# ## 2. A grid of prompts
# For segmentation *without* a text query, SAM is prompted with a regular n x n grid of points
# (cell centres). Each point yields up to three masks, so a 29 x 29 grid asks 841 questions and
# gets 2,523 raw answers, most of them duplicates or poor.

# %%
from rs_helpers.sam import grid_points

points = grid_points(S["points_per_side"], width, height)
ax = show_image(image, title=f"{S['points_per_side']} x {S['points_per_side']} = {len(points)} prompts")
show_points(points, [1] * len(points), ax, marker_size=40)
pixel_axes(ax);

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

# %% [markdown]
# The same raw masks as histograms: everything right of a red line passes that filter.

# %%
from rs_helpers.teaching.figures import plot_score_histograms

plot_score_histograms(loose.predicted_iou, loose.stability_score, iou_thresh=0.88, stability_thresh=0.95);

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
from rs_helpers.teaching.figures import plot_grid_density

plot_grid_density([r["prompts"] for r in rows], [r["masks"] for r in rows], [r["seconds"] for r in rows]);

# %% [markdown]
# ## 5. The proposals on the sample
# Each proposal in its own colour, larger ones underneath. With real weights they follow
# roofs, roads and fields; regions no mask covers are common, and notebook 03 fills them from CLIP's dense map.
#
# Proposals depend only on the image and SAM's settings, not on the class names, so the suite
# caches them: a new vocabulary in notebook 03 never reruns SAM.

# %%
from rs_helpers.teaching import show_proposals
from rs_helpers.sam import ProposalCache

cache = ProposalCache()
settings = ProposalSettings(points_per_side=S["points_per_side"])
proposals = cache.get(sam, image, settings)
again = cache.get(sam, image, settings)  # same image and settings: served from the cache
print(f"{len(proposals)} proposals; cache hits {cache.hits}, misses {cache.misses}")
ax = show_proposals(image, proposals.masks)
ax.set_title(f"{len(proposals)} SAM proposals ({S['points_per_side']}^2 grid)")
pixel_axes(ax);

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
# raises `NotImplementedError` until you replace it) and a check. Most ask for a function: the check runs it
# on inputs you have not seen, so it must work in general, not only on the example. `q1.hint()` gives a nudge,
# a second call a closer hint; `q1.solution()` shows our solution.

# %%
from rs_helpers.teaching.exercises.nb01 import q1, q2, q3, q4

# %% [markdown]
# **Exercise 1 · Which of SAM's answers is kept?** Asked with `multimask_output=True`, SAM returns three
# candidate masks and their predicted IoUs; asked with `multimask_output=False`, one mask. Write
# `kept_mask(three, three_scores, single, n_clicks, multimask)` returning the mask the package keeps for
# `n_clicks` clicks (1 or more): `three` is the 3 x H x W boolean array of candidates, `three_scores` their 3
# predicted IoUs, `single` the H x W mask of the one-mask answer, and `multimask` the package's rule,
# `"auto"`, `"always"` or `"never"` (the rule of section 1: `"auto"` asks for three masks for a single click
# only). When three masks are asked for, the kept one is the candidate of highest predicted IoU. Write the
# rule yourself, **without** `use_multimask` or `predict_mask`. Then set `answer = kept_mask`: the check calls
# it on candidates of its own, for each rule and several numbers of clicks.

# %%
import numpy as np

from rs_helpers.teaching.exercises.nb01 import example_candidates

three, three_scores, single = example_candidates()
print("areas of the three candidates:", three.sum(axis=(1, 2)), "| predicted IoU:", three_scores)
print("area of the single mask:", single.sum())

# %% tags=["solution"]
# kept_mask(three, three_scores, single, n_clicks, multimask) -> the kept H x W mask
def kept_mask(three, three_scores, single, n_clicks, multimask="auto"):
    ask_for_three = multimask == "always" or (multimask == "auto" and n_clicks < 2)
    if not ask_for_three:
        return single
    return three[int(np.argmax(three_scores))]

for clicks in (1, 2):
    print(clicks, "click(s): kept mask of area", kept_mask(three, three_scores, single, clicks).sum())
answer = kept_mask

# %%
q1.check(answer)
# q1.hint()
# q1.solution()

# %% [markdown]
# **Exercise 2 · The grid of point prompts.** SAM's automatic mask generator prompts the decoder with an n x n
# grid of points. Write `grid(n, width, height)` returning the n * n points as an array of shape (n * n, 2)
# holding pixel **(x, y)** (x = column, y = row). As in segment-anything, each point sits at the **centre of
# its cell** when the image is cut into n x n equal cells. Any order of the points is accepted; pixel
# positions may be fractional or rounded. Write it **without** the package's `grid_points` (or
# segment-anything's `build_point_grid`). Then set `answer = grid`: the check calls it for other sizes, a grid
# of one point and non-square images among them.

# %%
import numpy as np

n, width, height = 4, 640, 480

# %% tags=["solution"]
# grid(n, width, height) -> (n * n, 2) pixel (x, y); then answer = grid
def grid(n, width, height):
    axis = (np.arange(n) + 0.5) / n  # cell centres, as fractions of the side
    xs, ys = np.meshgrid(axis * width, axis * height)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)

print(grid(n, width, height))
answer = grid

# %%
q2.check(answer)
# q2.hint()
# q2.solution()

# %% [markdown]
# **Exercise 3 · Which proposals survive SAM's filters?** Each proposal has two quality scores. As in
# segment-anything's `SamAutomaticMaskGenerator`, a proposal is kept when **`predicted_iou > iou_thresh`**
# (strictly greater) **and** **`stability_score >= stability_thresh`** (greater or equal). Write
# `keep_filter(predicted_iou, stability_score, iou_thresh, stability_thresh)`: the two scores are 1-D arrays
# (one value per proposal, possibly none); return the **boolean keep mask**, one True or False per proposal.
# Then set `answer = keep_filter`: the check calls it with other scores and thresholds, values sitting exactly
# on a threshold among them.

# %%
from rs_helpers.teaching.exercises.nb01 import example_scores

predicted_iou, stability_score = example_scores()
print("predicted IoU:  ", predicted_iou)
print("stability score:", stability_score)

# %% tags=["solution"]
# keep_filter(predicted_iou, stability_score, iou_thresh, stability_thresh) -> boolean keep mask
def keep_filter(predicted_iou, stability_score, iou_thresh=0.88, stability_thresh=0.95):
    return (predicted_iou > iou_thresh) & (stability_score >= stability_thresh)

keep = keep_filter(predicted_iou, stability_score)
print(f"{keep.sum()} of {len(keep)} proposals kept")
answer = keep_filter

# %%
q3.check(answer)
# q3.hint()
# q3.solution()

# %% [markdown]
# **Exercise 4 · Non-maximum suppression.** Many grid points find the same object, so SAM's generator ends
# with **box NMS**: of proposals whose boxes overlap too much, only the best survives. Write `nms(boxes,
# scores, iou_thresh)`: `boxes` is an N x 4 float array of boxes (x1, y1, x2, y2), x2 and y2 *exclusive*, so a
# box's area is (x2 - x1) * (y2 - y1); `scores` the N scores (all different). Greedily: take the best
# remaining box, keep it, remove every remaining box whose IoU with it is **greater than** `iou_thresh`,
# repeat. Return the indices of the kept boxes, **best score first**. N may be 0. Write it **without** the
# package's `box_nms` or torchvision's `nms` (the check refuses them). Then set `answer = nms`: the check
# calls it on boxes of its own, with an IoU exactly at the threshold and a chain of overlaps.

# %%
import numpy as np

from rs_helpers.teaching.exercises.nb01 import example_boxes

boxes, scores = example_boxes()
print(boxes, "\nscores:", scores)

# %% tags=["solution"]
# nms(boxes, scores, iou_thresh) -> kept indices, best first; then answer = nms
def nms(boxes, scores, iou_thresh):
    x1, y1, x2, y2 = np.asarray(boxes, float).T
    area = (x2 - x1) * (y2 - y1)
    kept = []
    for i in np.argsort(-np.asarray(scores)):  # best first
        w = np.clip(np.minimum(x2[kept], x2[i]) - np.maximum(x1[kept], x1[i]), 0, None)
        h = np.clip(np.minimum(y2[kept], y2[i]) - np.maximum(y1[kept], y1[i]), 0, None)
        if not (w * h / (area[kept] + area[i] - w * h) > iou_thresh).any():
            kept.append(int(i))
    return np.array(kept, int)

print("kept:", nms(boxes, scores, 0.7))
answer = nms

# %%
q4.check(answer)
# q4.hint()
# q4.solution()

# %% [markdown]
# ### More to explore
# 1. Which threshold removes more masks on this image, predicted IoU or stability?
# 2. Estimate from section 4 how long a 64 x 64 grid would take here.

# %% [markdown]
# ## Summary
# * SAM embeds the image once; each point prompt is a cheap decoder pass with three candidates.
# * One click is ambiguous (subpart, part, whole): SAM answers with three masks and their predicted IoU;
#   the best one is kept for a single click, and several clicks ask for one mask.
# * A regular grid of points gives class-agnostic proposals; predicted IoU, stability and box NMS prune them.
# * Denser grids give more, smaller masks at a cost that grows with the number of points.
# * Proposals are cached per (image, settings), so changing the class names costs nothing on the SAM side.
#
# ## What's next
# **02 · The dense CLIP map**: CLIP scores every pixel for each class name; notebook 03 then names the
# proposals with it, turning them into a semantic or binary map.

# %% [markdown]
# ## Appendix (optional): the same masks, faster, and where the time goes
# A detour for the curious, not needed for notebooks 02 and 03. It runs both generators once more on
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
