# %% [markdown]
# # 03 · CLIP as mask selector
# {{BADGE}}
#
# **Objectives.** After this notebook you can
# 1. turn SAM proposals into a semantic map by a majority vote on the dense CLIP map;
# 2. turn them into a binary map for one class with a threshold tau, and read its errors over the image;
# 3. compare the dense-map selector with the crop selector;
# 4. try your own vocabulary, tau and selector over cached proposals.
#
# **Prerequisites.** Notebook 01 (SAM grid proposals) and notebook 02 (the dense CLIP map).
#
# **Time.** About 10 minutes (longer under the full profile on a CPU: SAM prompts a grid on two images, one
# of them twice), plus 20 for the two exercises.
#
# {{COMPUTE}}
#
# Stage 3 of the contrastive branch of the method, selection (see [`docs/method.md`](../docs/method.md)):
# nothing is trained. SAM says *where* the regions are (its grid proposals, notebook 01), CLIP's dense map
# says *what* each pixel is (notebook 02); here each SAM mask takes its name from the map. The notebook
# rebuilds both inputs itself with the package's helpers, so it runs without 02. An optional appendix at
# the end estimates SAM's time here and compares what the two selectors cost.

# %%
# {{SETUP}}

# %% [markdown]
# ## Settings

# %%
from rs_helpers.teaching import pick

S = pick(
    full=dict(sam="vit_l", clip="ViT-B-16", sample="dubai_tile2_part001", binary_sample="atlanta_buildings",
              points_per_side=29, templates="imagenet80", max_side=1024, device=None),
    # classroom: real weights, laptop-sized settings (SAM ViT-B, 16 x 16 grid, 512 px)
    classroom=dict(sam="vit_b", points_per_side=16, templates="short", max_side=512),
    tiny=dict(points_per_side=4, templates="single", max_side=256),
)
S

# %%
from rs_helpers.profile import is_tiny

TINY = is_tiny(S["profile"])
NOTE = " [tiny: meaningless]" if TINY else ""  # appended to every score shown below
if TINY:
    print("TINY PROFILE: SAM and CLIP are random here. Every map below is MEANINGLESS; only the mechanics are real.")

# %%
import time

import matplotlib.pyplot as plt

from rs_helpers.models import load_clip
from rs_helpers.models import load_sam
from rs_helpers.ovss import resize_labels, resize_rgb, work_size
from rs_helpers.samples import get_sample

sam = load_sam(S["sam"], profile=S["profile"], device=S["device"])
clip = load_clip(S["clip"], profile=S["profile"], device=S["device"])
sample = get_sample(S["sample"])
raster, gt = sample.load()
size = work_size(raster.height, raster.width, S["max_side"])
image = resize_rgb(raster.rgb, size)
gt_work = resize_labels(gt, size)  # nearest neighbour, to compare with maps at the working size
classes = ";".join(sample.vocabulary)
print("classes:", classes)
print("image:", raster.rgb.shape, "-> working size", image.shape)

# %% [markdown]
# ## The dense CLIP map, rebuilt
# Notebook 02 built the dense CLIP map step by step. Here it is one call of the package's `dense_map` with
# its defaults: the changed last block and the CLS-bias removal, no upsampler ("our defaults" in 02). The
# text embeddings of the class names are computed once per vocabulary and cached.

# %%
from rs_helpers.evaluation import confusion_matrix
from rs_helpers.ovss import DenseSettings, dense_map, parse_classes
from rs_helpers.teaching import show_image, show_semantic

vocab = parse_classes(classes)
dense_settings = DenseSettings(templates=S["templates"])
dense = dense_map(clip, image, vocab, dense_settings)
miou = confusion_matrix(dense.labels, gt_work, len(vocab)).miou()
print(f"dense CLIP map of {dense.labels.shape[1]} x {dense.labels.shape[0]} px, {len(vocab)} classes: "
      f"pixel mIoU {100 * miou:.1f}{NOTE}")

# %% [markdown]
# ## 1. Voting masks into a semantic map
# Each SAM mask takes the majority CLIP class of its pixels; masks are painted large first so
# small ones stay on top; pixels that no mask covers keep CLIP's own label. SAM supplies the
# boundaries, CLIP the names.

# %% tags=["gallery"]
from rs_helpers.teaching import show_panels
from rs_helpers.sam import ProposalCache, ProposalSettings
from rs_helpers.ovss import SelectionSettings, select_semantic

cache = ProposalCache()
proposal_settings = ProposalSettings(points_per_side=S["points_per_side"])
start = time.perf_counter()
proposals = cache.get(sam, image, proposal_settings)
print(f"{len(proposals)} proposals in {time.perf_counter() - start:.1f} s (cached from now on)")

voted = select_semantic(proposals.masks, dense.labels, len(vocab), SelectionSettings())
for name, labels in [("CLIP pixels only", dense.labels), ("SAM masks + CLIP vote", voted.labels)]:
    print(f"{name:24s} mIoU {100 * confusion_matrix(labels, gt_work, len(vocab)).miou():.1f}{NOTE}")
show_panels(image, gt_work, voted.labels, sample.palette, sample.class_names,
            titles=("image", "ground truth", "SAM + CLIP vote"));

# %% [markdown]
# ## 2. Binary extraction
# For one class (building, road, water), a mask is kept when more than tau of its pixels are
# that class in the CLIP map; the answer is the union of kept masks. The paper does not give
# tau; 0.5 is our default, and the sweep shows how much it matters. SAM prompts its grid on a
# second image here.
#
# Each tau panel draws the answer over the image against the ground truth: green where it finds
# the target (true positive), red where it adds something that is not the target (false positive),
# blue where it misses the target (false negative). A higher tau keeps a subset of the masks, so
# never more red and never less blue.

# %%
from rs_helpers.ovss import select_binary
from rs_helpers.teaching.figures import plot_binary_overlays

bsample = get_sample(S["binary_sample"])
braster, bgt = bsample.load()
bsize = work_size(braster.height, braster.width, S["max_side"])
bimage = resize_rgb(braster.rgb, bsize)
bgt_work = resize_labels(bgt, bsize)
bvocab = parse_classes(bsample.vocabulary)
bdense = dense_map(clip, bimage, bvocab, dense_settings)
bproposals = cache.get(sam, bimage, proposal_settings)
target_index = bvocab.index(bsample.class_names[1])

swept = {}
for tau in (0.3, 0.5, 0.7):
    sel = select_binary(bproposals.masks, bdense.labels, target_index, len(bvocab), SelectionSettings(tau=tau))
    iou = confusion_matrix(sel.labels, bgt_work, 2).foreground_iou()
    kept = int((sel.mask_classes == 1).sum())
    swept[f"tau {tau}: kept {kept} of {len(bproposals)} masks\nIoU {100 * iou:.1f}{NOTE}"] = sel.labels
plot_binary_overlays(bimage, bgt_work, swept, bsample.palette, bsample.class_names,
                     suptitle=f"{bsample.name}, target '{bsample.class_names[1]}': the answer for each tau over the image");

# %% [markdown]
# ## 3. The crop selector beside it
# The other common SAM + CLIP design classifies each mask by itself: its box is cropped, pixels
# outside the mask are greyed, and all crops go through CLIP in one batch. It sees each region
# out of context, which helps for objects and hurts for stuff (roads, fields) whose crops look alike.
#
# Both runs go through the package's whole pipeline, `segment`, which uses the suite's fast
# generator (notebook 01's appendix): its proposals are not cached yet, so SAM runs once more on the
# first image, and the second selector reuses them. What each selector costs is in the appendix.

# %%
from rs_helpers.ovss import OvssSettings, segment

results = {}
for selector in ("dense", "crop"):
    settings = OvssSettings(proposals=proposal_settings, dense=dense_settings, selector=selector,
                            max_side=S["max_side"])
    results[selector] = segment(raster, vocab, sam=sam, clip=clip, settings=settings, proposal_cache=cache,
                                palette=sample.palette)
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
show_semantic(gt, sample.palette, sample.class_names, axes[0], legend=False, title="ground truth")
for ax, (selector, result) in zip(axes[1:], results.items()):
    miou = confusion_matrix(result.labels, gt, len(vocab)).miou()
    show_semantic(result.labels, result.palette, result.class_names, ax, legend=selector == "crop",
                  title=f"{selector} selector: mIoU {100 * miou:.1f}{NOTE}")
fig.tight_layout()

# %% [markdown]
# ## 4. Your vocabulary, over cached proposals
# Edit the class list (`;` between classes, `,` between synonyms), tau and the selector. SAM does
# not run again: the proposals come from the cache. The cell shows the defaults first, so "Run
# all" never waits for you.

# %%
from rs_helpers.errors import BadInputError


def explore(classes: str = classes, tau: float = 0.5, selector: str = "dense", binary_target: str = ""):
    settings = OvssSettings(proposals=proposal_settings, dense=dense_settings,
                            selection=SelectionSettings(tau=tau), selector=selector, max_side=S["max_side"])
    try:
        result = segment(raster, classes, sam=sam, clip=clip, settings=settings, proposal_cache=cache,
                         binary=bool(binary_target.strip()), target=binary_target.strip() or None)
    except BadInputError as exc:  # an empty or duplicated class list, an unknown target
        print("cannot segment:", exc)
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    show_image(raster.rgb, axes[0], "image")
    show_semantic(result.labels, result.palette, result.class_names, axes[1], title=f"{selector} selector{NOTE}")
    plt.show()
    print({name: f"{100 * share:.1f} %" for name, share in result.shares.items()},
          f"| SAM cache hits so far: {cache.hits}")


try:
    import ipywidgets as widgets
    from IPython.display import display

    from rs_helpers.teaching import interactive_view

    display(interactive_view(
        explore,
        classes=widgets.Text(value=classes, description="classes", layout=widgets.Layout(width="90%")),
        tau=widgets.FloatSlider(value=0.5, min=0.05, max=0.95, step=0.05, description="tau"),
        selector=widgets.Dropdown(options=["dense", "crop"], value="dense", description="selector"),
        binary_target=widgets.Text(value="", description="binary target", placeholder="e.g. building"),
    ))
except ImportError:  # no ipywidgets: run once with the defaults
    explore()

# %% [markdown]
# ## Exercises
# Each exercise has a task, a cell for your answer (tagged `solution`: in the student copy it is a stub that
# raises `NotImplementedError` until you replace it) and a check. Most ask for a function: the check runs it
# on inputs you have not seen, so it must work in general, not only on the example. `q1.hint()` gives a nudge,
# a second call a closer hint; `q1.solution()` shows our solution.

# %%
from rs_helpers.teaching.exercises.nb03 import q1, q2

# %% [markdown]
# **Exercise 1 · A mask's majority class.** In multi-class selection each SAM mask takes the class that most
# of its pixels have in CLIP's label map (a vote). Write `majority_class(clip_labels, mask, n_classes)`
# (`clip_labels`: H x W class indices 0..n_classes-1; `mask`: one H x W boolean SAM mask) returning the
# **class index** (an integer) the mask takes, the lowest index on a tie, **without** the package's
# `class_fractions`. Then set `answer = majority_class`: the check calls it on maps of its own, a tie and a
# one-pixel mask among them.

# %%
import numpy as np

from rs_helpers.teaching.exercises.nb03 import example_maps

clip_labels, mask, class_names = example_maps()
print(class_names, clip_labels, mask.astype(int), sep="\n")

# %% tags=["solution"]
# majority_class(clip_labels, mask, n_classes) -> a class index
def majority_class(clip_labels, mask, n_classes):
    votes = np.bincount(clip_labels[mask], minlength=n_classes)
    return int(votes.argmax())

winner = majority_class(clip_labels, mask, len(class_names))
print(winner, class_names[winner])
answer = majority_class

# %%
q1.check(answer)
# q1.hint()
# q1.solution()

# %% [markdown]
# **Exercise 2 · Binary selection with tau.** For one class (binary extraction), a SAM mask is **kept when the
# fraction of its pixels that CLIP labels as the target exceeds tau** (strictly); the answer is the **union of
# the kept masks**. Write `binary_selection(masks, clip_labels, target, tau)` (`masks`: N x H x W boolean;
# `clip_labels`: H x W; `target`: a class index) returning the H x W boolean answer, **without** the package's
# `select_binary` or `class_fractions`. Then set `answer = binary_selection`: the check calls it on masks of
# its own, with a fraction exactly at tau, tau = 0.3 and a case where no mask is kept.

# %%
import numpy as np

from rs_helpers.teaching.exercises.nb03 import example_selection

clip_labels, masks, target, class_names = example_selection()
tau = 0.5
print("target:", class_names[target], "| mask areas:", masks.sum(axis=(1, 2)))

# %% tags=["solution"]
# binary_selection(masks, clip_labels, target, tau) -> H x W boolean answer
def binary_selection(masks, clip_labels, target, tau=0.5):
    fractions = np.array([(clip_labels[m] == target).mean() if m.any() else 0.0 for m in masks])
    return masks[fractions > tau].any(axis=0)  # all False when no mask is kept

selected = binary_selection(masks, clip_labels, target, tau)
print("pixels selected:", selected.sum())
answer = binary_selection

# %%
q2.check(answer)
# q2.hint()
# q2.solution()

# %% [markdown]
# ### More to explore
# 1. Add a synonym to one class (e.g. `road,street,asphalt`) in the explorer of section 4 and see whether its
#    share changes.
# 2. Find the tau at which the binary building map of section 2 is best on this image.

# %% [markdown]
# ## Summary
# * Multi-class: each SAM mask takes its majority CLIP class; masks are painted large first, and pixels that
#   no mask covers keep CLIP's own label. SAM supplies the boundaries, CLIP the names.
# * Binary: keep the masks whose target fraction exceeds tau and take their union; a higher tau keeps a
#   subset of the masks.
# * The crop selector classifies masks out of context in one CLIP batch; compare it per dataset.
# * Proposals are cached per image, settings and generator, so a new vocabulary, tau or selector never
#   reruns SAM.
#
# ## What's next
# **04 · Open-vocabulary evaluation**: mIoU and foreground IoU, on the samples and on the benchmarks.

# %% [markdown]
# ## Appendix (optional): how long SAM takes here, and what each selector adds
# A detour for the curious, not needed for notebook 04. This notebook prompts SAM's grid three times: on
# the first image in section 1, on the second in section 2, and on the first again in section 3 (the fast
# generator). A small grid first (the image encoder plus a few prompts) gives a per-prompt rate, as in
# notebook 01, and from it the expected time of the full grid on one image. It runs the image encoder
# once more, so under the full profile on a CPU it takes about a minute.

# %%
from rs_helpers.sam import format_seconds
from rs_helpers.teaching import GridExplorerState

probe = GridExplorerState(sam, image)
probe.raw(min(4, S["points_per_side"]))  # the encoder once, then a small grid through the decoder
sam_seconds = probe.expected_seconds(S["points_per_side"])
print(f"SAM encoder {format_seconds(probe.encoder_seconds)}; expected about {format_seconds(sam_seconds)} per image "
      f"for a {S['points_per_side']} x {S['points_per_side']} grid (plus the generator's post-processing), "
      f"so about {format_seconds(3 * sam_seconds)} for this notebook's three grids")
del probe

# %% [markdown]
# What the two selectors of section 3 cost: both need the dense CLIP map (the crop selector uses it for
# the pixels no mask covers), so each bar gives the map's time first, then what the selector adds on
# top: the **vote** (dense) or **one CLIP pass over all the crops** plus the choice (crop). SAM's time is
# left out: both use the same proposals, cached after the first run.

# %%
fig, ax = plt.subplots(figsize=(7, 2.5))
for row, (selector, result) in enumerate(results.items()):
    t = result.timings
    added = t.get("clip_crops", 0.0) + t["selection"]
    step = "vote" if selector == "dense" else "CLIP on crops"
    print(f"{selector:5s} selector: dense CLIP map {t['clip_dense']:.2f} s (both need it) + {step} {added:.2f} s "
          f"(SAM proposals not counted)")
    ax.barh(row, t["clip_dense"], color="tab:gray", label="dense CLIP map" if row == 0 else None)
    ax.barh(row, added, left=t["clip_dense"], color="tab:orange" if row == 0 else "tab:blue", label=step)
ax.set_yticks(range(len(results)), [f"{s} selector" for s in results])
ax.set_xlabel("seconds (SAM not counted)")
ax.legend(loc="lower right", fontsize=8)
fig.tight_layout();
