# %% [markdown]
# # 02 · CLIP as mask selector
# {{BADGE}}
#
# **Objectives.** After this notebook you can
# 1. embed class names with CLIP, with prompt templates and synonyms;
# 2. compute a dense (per-pixel) CLIP class map and say what each training-free trick changes, the CLS-token bias removal first, and what SegEarth-OV's feature upsampler adds;
# 3. turn SAM proposals into a semantic map by a majority vote, and into a binary map with a threshold tau;
# 4. compare the dense-map selector with the crop selector, and try your own vocabulary over cached proposals.
#
# **Prerequisites.** Notebook 01 (SAM grid proposals).
#
# **Time.** About 20 minutes.
#
# Stage 2 and 3 of the contrastive branch: nothing is trained. SAM says *where* the regions are,
# CLIP says *what* they are.

# %%
# {{SETUP}}

# %% [markdown]
# ## Settings

# %%
from rs_helpers.teaching import pick

S = pick(
    full=dict(sam="vit_l", clip="ViT-B-16", sample="dubai_tile2_part001", binary_sample="atlanta_buildings",
              points_per_side=29, templates="imagenet80", max_side=1024, long_side=448, device=None),
    # long_side: the SegEarth-OV map of section 2 (448 there); 224 keeps the random upsampler to one window
    tiny=dict(points_per_side=4, templates="single", max_side=256, long_side=224),
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
# ## 1. Text embeddings and prompt templates
# CLIP compares an image with *sentences*. A bare class name ("road") is a poor sentence, so each
# name is put into many templates ("a photo of a {}.", "a blurry photo of the {}.", ... the 80
# ImageNet templates), each is embedded, and the unit vectors are averaged. Synonyms
# ("building,roof,house") get one embedding each; later the best synonym wins (max-pooling).

# %%
from rs_helpers.ovss import encode_vocabulary, get_templates, parse_classes

vocab = parse_classes(classes)
templates = get_templates(S["templates"])
print(len(templates), "templates, e.g.", templates[:3])
text = encode_vocabulary(clip, vocab, templates=S["templates"])
rows = [name for syn in vocab.synonyms for name in syn]
print("embedding rows:", len(rows), "| dimension:", text.embeddings.shape[1])

similarity = (text.embeddings @ text.embeddings.T).cpu().numpy()
fig, ax = plt.subplots(figsize=(6, 5))
im = ax.imshow(similarity, vmin=-1, vmax=1, cmap="coolwarm")
ax.set_xticks(range(len(rows)), rows, rotation=90)
ax.set_yticks(range(len(rows)), rows)
ax.set_title("cosine similarity of the text embeddings")
fig.colorbar(im, ax=ax)
fig.tight_layout()

# %% [markdown]
# ## 2. The dense CLIP map
# CLIP's patch tokens can be compared with the text embeddings too, giving a coarse per-pixel
# class score. Plain CLIP does this badly; training-free fixes (MaskCLIP, ClearCLIP,
# SegEarth-OV) help a lot. Our defaults, each a switch in `DenseSettings`:
# * the image at long side 448, read by 224 px windows with stride 112 (one batch);
# * last block: q-q + k-k + v-v self-attention, no residual, no MLP;
# * **global-bias removal**: the CLS token's class scores, times lambda = 0.3, are subtracted
#   from every patch (the CLS token carries an image-wide bias that otherwise leaks everywhere);
# * logit scale 50, softmax over all (class, synonym) rows, max over each class's synonyms.
#
# These are SegEarth-OV's training-free tricks, but not all of SegEarth-OV: it also upsamples the
# window features with SimFeatUp (a small learned upsampler) and sends low-probability pixels to a
# background class. Neither is done in the three maps below, so the first is labelled "our defaults
# (no upsampler)", not "SegEarth-OV"; the upsampler comes right after them. See
# [`docs/method.md`](../docs/method.md).

# %%
from rs_helpers.ovss import DenseSettings, dense_map
from rs_helpers.evaluation import confusion_matrix
from rs_helpers.teaching import show_image, show_semantic

variants = {
    "our defaults (no upsampler)": DenseSettings(templates=S["templates"]),
    "no CLS bias removal": DenseSettings(templates=S["templates"], cls_lambda=0.0),
    "plain CLIP last block": DenseSettings(templates=S["templates"], modified_last_block=False, cls_lambda=0.0),
}
maps = {name: dense_map(clip, image, vocab, settings, text=text) for name, settings in variants.items()}

fig, axes = plt.subplots(1, 4, figsize=(18, 4.5))
show_image(image, axes[0], "image")
for ax, (name, dm) in zip(axes[1:], maps.items()):
    miou = confusion_matrix(dm.labels, gt_work, len(vocab)).miou()
    show_semantic(dm.labels, sample.palette, vocab.names, ax, legend=ax is axes[-1],
                  title=f"{name}\npixel mIoU {100 * miou:.1f}{NOTE}")
fig.tight_layout()

# %% [markdown]
# What the bias removal changes, for one class: its similarity map with and without it.

# %%
target = vocab.names[0]
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, name in zip(axes, ["our defaults (no upsampler)", "no CLS bias removal"]):
    im = ax.imshow(maps[name].similarity[0], cmap="viridis")
    ax.set_title(f"'{target}' similarity: {name}")
    ax.set_axis_off()
    fig.colorbar(im, ax=ax)
fig.tight_layout()

# %% [markdown]
# *Try it:* set `cls_lambda=0.6` or `sliding_window=False` in a `DenseSettings` above and compare.

# %% [markdown]
# ### SegEarth-OV's map, without and with its upsampler
# SegEarth-OV reads the image a little differently (`SEGEARTH_OV`: resized like OpenCV, straight
# from full resolution; a short side read at its own length instead of zero-padded; its pixel
# statistics) and, above all, **upsamples each window's features** before comparing them with the
# text. CLIP sees a 224 px window as 14 x 14 patches of 16 px; SimFeatUp, a small learned
# joint-bilateral upsampler, brings those features back to 224 x 224, each output pixel a weighted
# mean of its neighbours whose weights follow the image's colours. Class edges then follow the
# image's edges instead of the 16 px patch grid. Both maps below use SegEarth-OV's path with no
# threshold to the background, so the only difference is the upsampler. (Under the tiny profile
# the upsampler is random as well, and the long side is 224 instead of 448 to keep it fast.)

# %%
from dataclasses import replace

from rs_helpers.ovss import SEGEARTH_OV, load_upsampler

upsampler = load_upsampler("simfeatup", clip, profile=S["profile"])
segearth = replace(SEGEARTH_OV, templates=S["templates"], long_side=S["long_side"])
side = "" if S["long_side"] == 448 else f", long side {S['long_side']}"
random_up = " (random)" if TINY else ""
upsampled = {}
for name, up in [(f"SegEarth-OV path, no upsampler{side}", None),
                 (f"SegEarth-OV path + SimFeatUp{random_up}{side}", upsampler)]:
    start = time.perf_counter()
    upsampled[name] = dense_map(clip, image, vocab, segearth, text=text, upsampler=up)
    print(f"{name}: {time.perf_counter() - start:.1f} s")

fig, axes = plt.subplots(2, 2, figsize=(11, 9))
for col, (name, dm) in enumerate(upsampled.items()):
    miou = confusion_matrix(dm.labels, gt_work, len(vocab)).miou()
    show_semantic(dm.labels, sample.palette, vocab.names, axes[0, col], legend=col == 1,
                  title=f"{name}\npixel mIoU {100 * miou:.1f}{NOTE}")
    im = axes[1, col].imshow(dm.probs[0], vmin=0, vmax=1, cmap="viridis")
    axes[1, col].set_title(f"P('{target}'){NOTE}")
    axes[1, col].set_axis_off()
    fig.colorbar(im, ax=axes[1, col])
fig.tight_layout()

# %% [markdown]
# With real weights the upsampled map is smoother inside regions and sharper at their borders; the
# 16 px blocks of the map without it are gone. SegEarth-OV's full segmentation adds, per dataset, a
# probability threshold below which a pixel goes to the background class; `rs-seg ovss --method
# clip` runs exactly that (CLIP alone, no SAM), and notebook 03 compares it under two protocols.

# %% [markdown]
# **How long will SAM take here?** The next sections prompt SAM with a grid on each image. A
# small grid first (the image encoder plus a few prompts) gives a per-prompt rate, as in
# notebook 01, and from it the expected time of the full grid.

# %%
from rs_helpers.sam import format_seconds
from rs_helpers.teaching import GridExplorerState

probe = GridExplorerState(sam, image)
probe.raw(min(4, S["points_per_side"]))  # the encoder once, then a small grid through the decoder
sam_seconds = probe.expected_seconds(S["points_per_side"])
print(f"SAM encoder {format_seconds(probe.encoder_seconds)}; expected about {format_seconds(sam_seconds)} per image "
      f"for a {S['points_per_side']} x {S['points_per_side']} grid (plus the generator's post-processing)")
del probe

# %% [markdown]
# ## 3. Voting masks into a semantic map
# Each SAM mask takes the majority CLIP class of its pixels; masks are painted large first so
# small ones stay on top; pixels that no mask covers keep CLIP's own label. SAM supplies the
# boundaries, CLIP the names.

# %%
from rs_helpers.teaching import show_panels
from rs_helpers.sam import ProposalCache, ProposalSettings
from rs_helpers.ovss import SelectionSettings, select_semantic

cache = ProposalCache()
proposal_settings = ProposalSettings(points_per_side=S["points_per_side"])
start = time.perf_counter()
proposals = cache.get(sam, image, proposal_settings)
print(f"{len(proposals)} proposals in {time.perf_counter() - start:.1f} s (cached from now on)")

dense = maps["our defaults (no upsampler)"]
voted = select_semantic(proposals.masks, dense.labels, len(vocab), SelectionSettings())
for name, labels in [("CLIP pixels only", dense.labels), ("SAM masks + CLIP vote", voted.labels)]:
    print(f"{name:24s} mIoU {100 * confusion_matrix(labels, gt_work, len(vocab)).miou():.1f}{NOTE}")
show_panels(image, gt_work, voted.labels, sample.palette, sample.class_names,
            titles=("image", "ground truth", "SAM + CLIP vote"));

# %% [markdown]
# ## 4. Binary extraction
# For one class (building, road, water), a mask is kept when more than tau of its pixels are
# that class in the CLIP map; the answer is the union of kept masks. The paper does not give
# tau; 0.5 is our default, and the sweep shows how much it matters.

# %%
print(f"SAM on a second image next: expected about {format_seconds(sam_seconds)}")

# %%
from rs_helpers.ovss import select_binary

bsample = get_sample(S["binary_sample"])
braster, bgt = bsample.load()
bsize = work_size(braster.height, braster.width, S["max_side"])
bimage = resize_rgb(braster.rgb, bsize)
bgt_work = resize_labels(bgt, bsize)
bvocab = parse_classes(bsample.vocabulary)
bdense = dense_map(clip, bimage, bvocab, DenseSettings(templates=S["templates"]))
bproposals = cache.get(sam, bimage, proposal_settings)
target_index = bvocab.index(bsample.class_names[1])

fig, axes = plt.subplots(1, 4, figsize=(18, 4.5))
show_image(bimage, axes[0], f"{bsample.name} (target: {bsample.class_names[1]})")
for ax, tau in zip(axes[1:], (0.3, 0.5, 0.7)):
    sel = select_binary(bproposals.masks, bdense.labels, target_index, len(bvocab), SelectionSettings(tau=tau))
    iou = confusion_matrix(sel.labels, bgt_work, 2).foreground_iou()
    show_semantic(sel.labels, bsample.palette, bsample.class_names, ax, legend=False,
                  title=f"tau {tau}: {int((sel.mask_classes == 1).sum())} kept, IoU {100 * iou:.1f}{NOTE}")
fig.tight_layout()

# %% [markdown]
# ## 5. The crop selector beside it
# The other common SAM + CLIP design classifies each mask by itself: its box is cropped, pixels
# outside the mask are greyed, and all crops go through CLIP in one batch. It sees each region
# out of context, which helps for objects and hurts for stuff (roads, fields) whose crops look alike.
#
# What the timings compare: both selectors need the dense CLIP map (the crop selector uses it for
# the pixels no mask covers), so each title gives the map's time first, then what the selector adds
# on top: the **vote** (dense) or **one CLIP pass over all the crops** plus the choice (crop). SAM's
# time is left out: both use the same proposals, cached after the first run.

# %%
print(f"the fast generator's proposals are not cached yet: expected about {format_seconds(sam_seconds)} for SAM, "
      "then one CLIP batch of crops")

# %%
from rs_helpers.ovss import OvssSettings, segment

results = {}
for selector in ("dense", "crop"):
    settings = OvssSettings(proposals=proposal_settings, dense=DenseSettings(templates=S["templates"]),
                            selector=selector, max_side=S["max_side"])
    results[selector] = segment(raster, vocab, sam=sam, clip=clip, settings=settings, proposal_cache=cache,
                                palette=sample.palette)
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
show_semantic(gt, sample.palette, sample.class_names, axes[0], legend=False, title="ground truth")
for ax, (selector, result) in zip(axes[1:], results.items()):
    miou = confusion_matrix(result.labels, gt, len(vocab)).miou()
    t = result.timings
    added = t.get("clip_crops", 0.0) + t["selection"]
    step = "vote" if selector == "dense" else "CLIP on crops"
    show_semantic(result.labels, result.palette, result.class_names, ax, legend=selector == "crop",
                  title=f"{selector} selector: mIoU {100 * miou:.1f}{NOTE}\n"
                        f"dense CLIP map {t['clip_dense']:.2f} s + {step} {added:.2f} s")
    print(f"{selector:5s} selector: dense CLIP map {t['clip_dense']:.2f} s (both need it) + {step} {added:.2f} s "
          f"(SAM proposals not counted)")
fig.tight_layout()

# %% [markdown]
# ## 6. Your vocabulary, over cached proposals
# Edit the class list (`;` between classes, `,` between synonyms), tau and the selector. SAM does
# not run again: the proposals come from the cache. The cell shows the defaults first, so "Run
# all" never waits for you.

# %%
from rs_helpers.errors import BadInputError


def explore(classes: str = classes, tau: float = 0.5, selector: str = "dense", binary_target: str = ""):
    settings = OvssSettings(proposals=proposal_settings, dense=DenseSettings(templates=S["templates"]),
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

    display(widgets.interactive(
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
# raises `NotImplementedError` until you replace it) and a check. `q1.hint()` gives a hint; `q1.solution()`
# shows our solution.

# %%
from rs_helpers.teaching.exercises.nb02 import q1, q2

# %% [markdown]
# **Exercise 1 · A mask's majority class.** In multi-class selection each SAM mask takes the class that most
# of its pixels have in CLIP's label map (a vote). `clip_labels` is a 12 x 12 CLIP label map (class indices
# into `class_names`) and `mask` one SAM mask (boolean). Which class index does the mask take?

# %%
import numpy as np

from rs_helpers.teaching.exercises.nb02 import example_maps

clip_labels, mask, class_names = example_maps()
print(class_names)
print(clip_labels)
print(mask.astype(int))

# %% tags=["solution"]
votes = np.bincount(clip_labels[mask], minlength=len(class_names))
answer = int(votes.argmax())
print(dict(zip(class_names, votes.tolist())), "->", class_names[answer])

# %%
q1.check(answer)
# q1.hint()
# q1.solution()

# %% [markdown]
# **Exercise 2 · Binary selection with tau.** For one class (binary extraction), a SAM mask is **kept when the
# fraction of its pixels that CLIP labels as the target exceeds tau** (strictly), and the answer is the
# **union of the kept masks**. `masks` holds 5 SAM masks (5 x 16 x 16, boolean), `clip_labels` the CLIP label
# map and `target` the road index. With **tau = 0.5**, give the answer mask (16 x 16, boolean or 0/1). (The
# list of kept mask indices is accepted too.)

# %%
import numpy as np

from rs_helpers.teaching.exercises.nb02 import example_selection

clip_labels, masks, target, class_names = example_selection()
tau = 0.5
print("target:", class_names[target], "| mask areas:", masks.sum(axis=(1, 2)))

# %% tags=["solution"]
fractions = np.array([(clip_labels[m] == target).mean() for m in masks])
keep = fractions > tau
answer = masks[keep].any(axis=0)
print("road fraction per mask:", fractions.round(3), "-> kept:", np.flatnonzero(keep))

# %%
q2.check(answer)
# q2.hint()
# q2.solution()

# %% [markdown]
# ### More to explore
# 1. Add a synonym to one class (e.g. `road,street,asphalt`) and see whether its share changes.
# 2. Find the tau at which the binary building map of section 4 is best on this image.

# %% [markdown]
# ## Summary
# * Class names become text embeddings averaged over prompt templates; synonyms are max-pooled.
# * The dense CLIP map needs training-free fixes; removing the CLS token's global bias is one of them.
# * SegEarth-OV also upsamples CLIP's 14 x 14 window features to pixels (SimFeatUp), guided by the image.
# * Multi-class: each SAM mask takes its majority CLIP class. Binary: keep masks above tau, take the union.
# * The crop selector classifies masks out of context in one CLIP batch; compare it per dataset.
#
# ## What's next
# **03 · Open-vocabulary evaluation**: mIoU and foreground IoU, on the samples and on the benchmarks.
