# %% [markdown]
# # 07 · Click simulation: SAM in the loop
# {{BADGE}}
#
# **Objectives.** After this notebook you can
# 1. say why the generative branch needs simulated clicks, and how the method makes them from masks;
# 2. turn a ground-truth mask into the clicks SAM needs to reproduce it (click simulation, SAM in the loop),
#    and explain where each click lands and why;
# 3. build a LoRA training file of (image, text, target answer) lines with `write_lora_data` or `rs-seg lora-data`.
#
# **Prerequisites.** Notebook 05 (the click format, the 0-1000 grid, the prompt). Notebook 01 helps (SAM's
# point prompts and its three candidate masks).
#
# **Time.** About 10 minutes to read and run on a CPU under the tiny profile, plus 10 for the two
# exercises. With real weights, the click simulation takes seconds per sample on a GPU (minutes on a CPU).
#
# {{COMPUTE}}
#
# Training data for the generative branch of the method (see [`docs/method.md`](../docs/method.md),
# "Click simulation"): in notebooks 05 and 06 a vision-language model writes click prompts for a frozen
# SAM. To tune that model (notebook 08) we need target answers, the clicks SAM needs for each training
# mask; this notebook makes them. Nothing is trained here.

# %%
# {{SETUP}}

# %% [markdown]
# ## Settings
# Every cost knob is here. Under the tiny profile (CI) SAM is random and the training set is three
# queries on two 256 px images: **every click, mask and score below is then meaningless**. The full
# column simulates clicks for the 21 shipped queries, far too few to train on; a real training set
# comes from RRSIS-D or EarthReason (notebook 08, "A real run").

# %%
from rs_helpers.teaching import pick

S = pick(
    full=dict(sam="vit_l", n_clicks=6, example="wv_1m_2014-m_3708035_ne_17_1-2_field_largest",
              sample_ids=None, holdout=0.3, work_dir="runs/07_clicks", figure_size=3.2),
    # classroom: real weights, laptop-sized settings (SAM ViT-B, 16 x 16 grid, 512 px)
    classroom=dict(sam="vit_b", sample_ids=["dubai_tile2_part001_building_centre", "dubai_tile3_part002_water_largest", "atlanta_sn4_building_centre",
                               "wv_1m_2014-m_3708035_ne_17_1-2_road", "wv_1m_2014-m_3708035_ne_17_1-2_field_largest",
                               "wv_1m_2014-m_3708035_ne_17_1-0_forest"]),
    tiny=dict(sample_ids=["wv_1m_2014-m_3708035_ne_17_1-2_road", "wv_1m_2014-m_3708035_ne_17_1-2_field_largest",
                          "wv_1m_2014-m_3708035_ne_17_1-0_forest"],
              holdout=0.5, work_dir=None),
)
S

# %%
import tempfile
from pathlib import Path

from rs_helpers.profile import is_tiny

WORK = Path(S["work_dir"] or tempfile.mkdtemp(prefix="rs_seg_07_"))
WORK.mkdir(parents=True, exist_ok=True)
print("outputs go to", WORK.resolve())
TINY = "TINY PROFILE: random SAM, MEANINGLESS" if is_tiny() else None
if TINY:
    print("TINY PROFILE: random SAM; every click, mask and IoU below is MEANINGLESS.")

# %% [markdown]
# ## 1. Why simulate clicks?
# In notebooks 05 and 06 a vision-language model writes click prompts and SAM turns them into a
# mask. To *teach* a model to write good clicks we need target clicks, but the datasets give masks.
# The method makes the targets by simulating a careful annotator with frozen SAM in the loop
# ([`docs/method.md`](../docs/method.md), "Click simulation"):
#
# 1. the first click is positive, at the point deepest inside the mask (the maximum of its distance transform);
# 2. SAM segments from the clicks so far;
# 3. the next click goes to the deepest point of the larger error: positive on the part SAM missed
#    (false negatives), negative on the part it wrongly added (false positives);
# 4. repeat until 6 clicks. The ordered list is the answer the model learns to write.
#
# The targets are thus the clicks *this SAM* needs, not clicks a person would choose.

# %%
from rs_helpers.teaching import plot_distance_maps
from rs_helpers.samples import load_referring

queries = load_referring()
query = next(q for q in queries if q.id == S["example"])
image, target = query.load()
print(f"[{query.task}] {query.text} | {image.width} x {image.height} px, target {int(target.sum())} px")
plot_distance_maps(target, size=S["figure_size"], title=TINY);

# %% [markdown]
# The map above is the distance of each target pixel to the nearest non-target pixel; the star is
# its maximum, the first click. **Outside the image counts as background**, so a target cut off by
# the image border is bounded there too and the click keeps away from the border. Ties go to the
# first pixel in reading order (top row first), so the clicks are deterministic.

# %% [markdown]
# ## 2. SAM in the loop, click by click
# `simulate_clicks(gt, predict, n_clicks)` takes any `predict(points, labels) -> mask`;
# `sam_predictor_fn(sam, image)` embeds the image once and returns SAM as such a function.
# Each panel shows SAM's mask after that click (blue), the target outline (yellow) and the clicks.
# The loop stops early when SAM's mask equals the target (nothing left to correct).

# %% tags=["gallery"]
from rs_helpers.teaching import plot_click_simulation
from rs_helpers.refer import sam_predictor_fn, simulate_clicks
from rs_helpers.models import load_sam

sam = load_sam(S["sam"])
sim = simulate_clicks(target, sam_predictor_fn(sam, image.rgb), n_clicks=S["n_clicks"], keep_masks=True)
plot_click_simulation(image.rgb, target, sim, size=S["figure_size"], title=TINY);

# %%
print(f"stopped: {sim.stop_reason}")
print(" k  pixel (x, y)   grid (x, y)   label  chosen from         depth px  IoU after")
for k, (pixel, grid) in enumerate(zip(sim.clicks, sim.grid_clicks()), start=1):
    print(f"{k:2d}  ({pixel.x:4d}, {pixel.y:4d})   ({grid.x:4d}, {grid.y:4d})   {pixel.label:5d}  "
          f"{sim.sources[k - 1]:18s} {sim.distances[k - 1]:8.1f}  {sim.ious[k - 1]:.3f}")

# %% [markdown]
# Why did the second click land where it did? The distance maps of the two error regions after the
# first click; the larger maximum wins, and a tie goes to the negative click (RITM's rule, the
# standard simulator of interactive segmentation).
#
# *Try it:* set `multimask=False` in `sam_predictor_fn`, or pass `stop_iou=0.9` to `simulate_clicks`,
# and watch how many clicks are needed.

# %%
plot_distance_maps(target, sim.masks[0], size=S["figure_size"], title=TINY);

# %% [markdown]
# On the command line, for any image and mask (the clicks file uses pixel coordinates, like
# `rs-seg refer --clicks-out`):
# ```
# rs-seg clicks IMAGE.png MASK.png --n 6 --sam vit_l --out clicks.json
# ```

# %% [markdown]
# ## 3. The training set
# `write_lora_data` simulates clicks for every sample (one SAM embedding per image), moves them to
# the 0-1000 grid and writes one JSON line per sample: image, text, task, the target clicks and the
# **answer**, the exact string the model should write. A fraction of the *images* is held out, so no
# held-out image is seen in training.

# %%
from rs_helpers.lora import read_jsonl, write_lora_data

records = [q for q in queries if S["sample_ids"] is None or q.id in S["sample_ids"]]
train_file, eval_file = WORK / "train.jsonl", WORK / "heldout.jsonl"
data = write_lora_data(records, train_file, sam, S["n_clicks"], holdout=S["holdout"], holdout_out=eval_file)
print(f"{len(data.train)} training lines, {len(data.holdout)} held out "
      f"(mean SAM IoU with the simulated clicks: {data.mean_iou:.3f})")
line = read_jsonl(train_file)[0]
{k: line[k] for k in ("image", "text", "task", "answer")}

# %% [markdown]
# The answer parses back to exactly the target clicks; the trainer refuses a file where it does
# not (and reports missing images or empty texts by line number before training).

# %%
from rs_helpers.refer import Click, parse_clicks

assert parse_clicks(line["answer"]) == [Click(**c) for c in line["clicks"]]
print("answer == target clicks")

# %% [markdown]
# The same from the command line, on the shipped samples or a benchmark:
# ```
# rs-seg lora-data --dataset samples --out train.jsonl --holdout 0.3 --holdout-out heldout.jsonl
# rs-seg lora-data --dataset rrsisd --root /data/RRSIS-D --split train --out rrsisd_train.jsonl
# ```


# %% [markdown]
# ## Exercises
# Each exercise has a task, a cell for your answer (tagged `solution`: in the student copy it is a stub that
# raises `NotImplementedError` until you replace it) and a check. Most ask for a function: the check runs it
# on inputs you have not seen, so it must work in general, not only on the example. `q1.hint()` gives a nudge,
# a second call a closer hint; `q1.solution()` shows our solution.

# %%
from rs_helpers.teaching.exercises.nb07 import q1, q2

# %% [markdown]
# **Exercise 1 · The first simulated click.** The first simulated click is positive, at the mask pixel
# **farthest from the mask's boundary**: the maximum of the distance transform, where **outside the image
# counts as background** (pad the mask with one ring of background first). Write `deepest_pixel(mask)`
# returning that pixel as `(x, y)` (x = column, y = row) for a boolean mask, with `np.pad` and
# `distance_transform_edt`, without the package's click simulation (`first_click`, `padded_distance`, ...).
# Any pixel that ties for the maximum is accepted. The check calls it on masks of its own (touching the
# border, a ring, a single pixel, ...).

# %%
import numpy as np
from scipy.ndimage import distance_transform_edt

from rs_helpers.teaching.exercises.nb07 import example_target, mask_text

target = example_target()
print(mask_text(target))  # '#' target, '.' background; row 0 at the top

# %% tags=["solution"]
def deepest_pixel(mask):
    """(x, y) of the mask pixel farthest from the background, outside the image counting as background."""
    depth = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(depth.argmax(), depth.shape)
    return int(col), int(row)

print(deepest_pixel(target))
answer = deepest_pixel

# %%
q1.check(answer)
# q1.hint()
# q1.solution()

# %% [markdown]
# **Exercise 2 · The next corrective click.** After some clicks SAM predicts `pred` for the target `target`.
# The next click goes to the deepest point (padded distance transform, as in exercise 1) of the **larger
# error**: the false negatives (target SAM missed: a **positive** click, label 1) or the false positives
# (background SAM took: a **negative** click, label 0), whichever has the larger maximum (on a tie, the
# negative one). Write `corrective_click(target, pred)` returning `(x, y, label)`, without the package's click
# simulation (your `deepest_pixel` may help). The check calls it on masks of its own.

# %%
import numpy as np
from scipy.ndimage import distance_transform_edt

from rs_helpers.teaching.exercises.nb07 import example_prediction, mask_text

target, pred = example_prediction()
print(mask_text(target, pred))  # '#' right, '-' target SAM missed, '+' background SAM took

# %% tags=["solution"]
def corrective_click(target, pred):
    """(x, y, label) of the next click: the deepest pixel of the larger error region."""
    def depth(region):
        return distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]

    fn, fp = depth(target & ~pred), depth(pred & ~target)
    region, label = (fn, 1) if fn.max() > fp.max() else (fp, 0)
    row, col = np.unravel_index(region.argmax(), region.shape)
    return int(col), int(row), label

print(corrective_click(target, pred))
answer = corrective_click

# %%
q2.check(answer)
# q2.hint()
# q2.solution()

# %% [markdown]
# ### More to explore
# 1. Simulate clicks for the other sample queries. Which ones stop early, and why?
# 2. Change the border convention in your head: where would the first click of a target touching the
#    image border land if the outside counted as target? Check with `padded_distance` on a padded mask.

# %% [markdown]
# ## Summary
# * Click simulation turns masks into the clicks SAM needs: deepest point first, then the deepest
#   point of the larger error, positive or negative. Deterministic; stops early when SAM is perfect.
# * The targets are the clicks *this SAM* needs, not the clicks a person would choose.
# * A training line holds the image, the text, the task and the exact answer string, which parses
#   back to the target clicks; held-out lines never share an image with training lines.
# * Under the tiny profile all of this runs in CI and every result is meaningless.
#
# ## What's next
# **08 · LoRA tuning of Qwen-VL**: a training file like the one of section 3 teaches Qwen3-VL to write
# these clicks.
