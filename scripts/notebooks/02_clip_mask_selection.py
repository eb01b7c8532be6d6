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
# **Time.** About 20 minutes, plus 40 for the four exercises.
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
# class score. Plain CLIP does this badly; training-free fixes (MaskCLIP, SCLIP, ClearCLIP,
# SegEarth-OV) help a lot. First why, then what they change.
#
# **Why CLIP's patches align poorly with text.** CLIP was trained on image-caption pairs with a
# contrastive loss on one vector per image and one per caption. For a ViT, the image's vector is
# the **CLS token** after the last transformer block, the final layer norm (`ln_post`) and a
# linear projection (`proj`) into the text space: only that vector was ever pulled towards its
# caption and away from the others. The patch tokens leave the same blocks and can be sent through
# the same `ln_post` and `proj` (the package does, in `encode_tokens`), so they *can* be compared
# with text, but no loss ever asked them to match it. And in the last block their attention is
# global: every patch attends to much the same few tokens of the image (ClearCLIP and SCLIP show
# near-identical attention maps for all queries), so a patch token carries image-level content
# rather than what lies under it. Compared with the class names, every patch then looks a little
# like the whole image.
#
# **What the training-free changes do** (this package's defaults, each a switch in
# `DenseSettings`; see `rs_helpers/ovss/clip_dense.py`):
# * the image at long side 448, read by 224 px windows with stride 112 (one batch);
# * **the last block only**: its attention weights become softmax(q q^T) + softmax(k k^T) +
#   softmax(v v^T) (`attention="qq+kk+vv"`) instead of softmax(q k^T). A token now attends to
#   tokens whose features resemble its own, so attention turns local and each patch keeps its own
#   content (SCLIP uses q-q + k-k, ClearCLIP q-q). The block's residual connection and its MLP
#   (the feed-forward part) are dropped as well: ClearCLIP found that the residual path brings most
#   of the noise into the last block's patch tokens and that the MLP does not help dense
#   prediction. What remains goes through `ln_post` and `proj` as usual;
# * **global-bias removal** (SegEarth-OV; `cls_lambda`, 0.3): what is left of the image-wide
#   content is shared by every patch of a window, and the CLS token is exactly that image-level
#   summary. So, window by window, the CLS token and the patch tokens (from the same modified pass)
#   are L2-normalised, each is compared with every text row by cosine similarity, and lambda times
#   the CLS token's similarity is subtracted from every patch's similarity;
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
from rs_helpers.teaching.figures import plot_label_maps

variants = {
    "our defaults (no upsampler)": DenseSettings(templates=S["templates"]),
    "no CLS bias removal": DenseSettings(templates=S["templates"], cls_lambda=0.0),
    "plain CLIP last block": DenseSettings(templates=S["templates"], modified_last_block=False, cls_lambda=0.0),
}
maps = {name: dense_map(clip, image, vocab, settings, text=text) for name, settings in variants.items()}

titled = {}
for name, dm in maps.items():
    miou = confusion_matrix(dm.labels, gt_work, len(vocab)).miou()
    titled[f"{name}\npixel mIoU {100 * miou:.1f}{NOTE}"] = dm.labels
plot_label_maps(image, gt_work, titled, sample.palette, vocab.names,
                suptitle="three dense CLIP maps beside the ground truth (same colours)");

# %% [markdown]
# ### What the bias removal changes
# Within one window the removal subtracts **one number per text row, the same for every patch**.
# So one class's similarity map only shifts by a constant there: drawn with and without the
# removal, each with its own colour bar, the two pictures look the same. What changes is the
# *competition between classes*. A row that matches the window as a whole (a high CLS similarity)
# loses more than the others, everywhere in that window, and a pixel whose local evidence for
# another class was nearly as strong changes label. The logit scale 50 multiplies these
# differences before the softmax (0.01 becomes 0.5). Windows overlap and are averaged, so across
# the image the amount varies from window to window.
#
# Below: (a) the amount subtracted for each text row, `cls_lambda` times the cosine similarity of
# the window's CLS token with that row (`rs_helpers.ovss.clip_dense.cls_bias`: the bar is the mean
# over the windows, the dots each window); (b, c) the labels without and with the removal; (d) the
# pixels whose label it changes. Under the tiny profile the amounts are random, so which labels
# change is too; only the mechanics are real.

# %%
from rs_helpers.ovss.clip_dense import cls_bias
from rs_helpers.teaching.figures import plot_cls_bias

defaults = variants["our defaults (no upsampler)"]
bias = cls_bias(clip, image, text, defaults)  # windows x text rows
print(f"{bias.shape[0]} windows x {bias.shape[1]} text rows; subtracted amounts from "
      f"{bias.min():+.3f} to {bias.max():+.3f}{NOTE}")
plot_cls_bias(image, bias, rows, text.row_class.cpu().numpy(), maps["no CLS bias removal"].labels,
              maps["our defaults (no upsampler)"].labels, sample.palette, vocab.names, defaults.cls_lambda);

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

target = vocab.names[0]  # the class whose probability is drawn below

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

# %% tags=["gallery"]
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

# %% [markdown]
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
bdense = dense_map(clip, bimage, bvocab, DenseSettings(templates=S["templates"]))
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
from rs_helpers.teaching.exercises.nb02 import q1, q2, q3, q4

# %% [markdown]
# **Exercise 1 · Prompt templates and the logit-scale softmax.** `template_embeddings` (C x T x D) is CLIP's
# text encoder output for class c in template t, **not normalised**; `patch_features` (P x D) are projected
# patch tokens, not normalised either. Write `class_probabilities(template_embeddings, patch_features,
# logit_scale)` returning the P x C class probabilities of sections 1 and 2: (1) L2-normalise every template
# embedding, average over the templates, normalise the mean again; (2) the cosine of every patch with every
# class; (3) per patch, the softmax over the classes of `logit_scale` times the cosine. Write it **without**
# the package's `encode_vocabulary` or `probabilities`, then set `answer = class_probabilities`: the check
# calls it on random embeddings of its own (one template only among them, `logit_scale` 50 or 100).

# %%
import numpy as np

from rs_helpers.teaching.exercises.nb02 import example_embeddings

template_embeddings, patch_features, class_names, templates = example_embeddings()
print("classes x templates x dimensions:", template_embeddings.shape, "| patches:", patch_features.shape)
print("norms of the template embeddings:\n", np.linalg.norm(template_embeddings, axis=-1).round(2))

# %% tags=["solution"]
# class_probabilities(template_embeddings, patch_features, logit_scale) -> P x C probabilities
def class_probabilities(template_embeddings, patch_features, logit_scale=50.0):
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    classes = unit(unit(template_embeddings).mean(axis=1))  # C x D
    logits = logit_scale * unit(patch_features) @ classes.T  # P x C
    logits = logits - logits.max(axis=1, keepdims=True)
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

print(class_probabilities(template_embeddings, patch_features).round(3))
answer = class_probabilities

# %%
q1.check(answer)
# q1.hint()
# q1.solution()

# %% [markdown]
# **Exercise 2 · Remove the CLS token's bias.** CLIP reads the image in windows; for each, `encode_tokens`
# returns the **CLS token first, then the P patch tokens**: `tokens` (W x (1 + P) x D) holds them, not
# normalised; `text` (R x D) holds one text embedding per (class, synonym) row, **of unit length**. Write
# `remove_cls_bias(tokens, text, cls_lambda)` returning the W x P x R similarities of section 2: the cosine of
# every patch with every row **minus `cls_lambda` times the cosine of that window's own CLS token with the
# same row**, **without** the package's `cls_bias`. Then set `answer = remove_cls_bias`: the check calls it on
# random tokens of its own (one or three windows, `cls_lambda` 0, 0.3 and 0.6).

# %%
import numpy as np

from rs_helpers.teaching.exercises.nb02 import example_tokens

tokens, text = example_tokens()
cls_lambda = 0.3
print("windows x (1 + patches) x dimensions:", tokens.shape, "| text rows:", text.shape)

# %% tags=["solution"]
# remove_cls_bias(tokens, text, cls_lambda) -> W x P x R similarities
def remove_cls_bias(tokens, text, cls_lambda=0.3):
    unit = tokens / np.linalg.norm(tokens, axis=-1, keepdims=True)
    cls_similarity = unit[:, :1] @ text.T  # W x 1 x R
    patch_similarity = unit[:, 1:] @ text.T  # W x P x R
    return patch_similarity - cls_lambda * cls_similarity

print(remove_cls_bias(tokens, text, cls_lambda).round(3))
answer = remove_cls_bias

# %%
q2.check(answer)
# q2.hint()
# q2.solution()

# %% [markdown]
# **Exercise 3 · A mask's majority class.** In multi-class selection each SAM mask takes the class that most
# of its pixels have in CLIP's label map (a vote). Write `majority_class(clip_labels, mask, n_classes)`
# (`clip_labels`: H x W class indices 0..n_classes-1; `mask`: one H x W boolean SAM mask) returning the
# **class index** (an integer) the mask takes, the lowest index on a tie, **without** the package's
# `class_fractions`. Then set `answer = majority_class`: the check calls it on maps of its own, a tie and a
# one-pixel mask among them.

# %%
import numpy as np

from rs_helpers.teaching.exercises.nb02 import example_maps

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
q3.check(answer)
# q3.hint()
# q3.solution()

# %% [markdown]
# **Exercise 4 · Binary selection with tau.** For one class (binary extraction), a SAM mask is **kept when the
# fraction of its pixels that CLIP labels as the target exceeds tau** (strictly); the answer is the **union of
# the kept masks**. Write `binary_selection(masks, clip_labels, target, tau)` (`masks`: N x H x W boolean;
# `clip_labels`: H x W; `target`: a class index) returning the H x W boolean answer, **without** the package's
# `select_binary` or `class_fractions`. Then set `answer = binary_selection`: the check calls it on masks of
# its own, with a fraction exactly at tau, tau = 0.3 and a case where no mask is kept.

# %%
import numpy as np

from rs_helpers.teaching.exercises.nb02 import example_selection

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
q4.check(answer)
# q4.hint()
# q4.solution()

# %% [markdown]
# ### More to explore
# 1. Add a synonym to one class (e.g. `road,street,asphalt`) and see whether its share changes.
# 2. Find the tau at which the binary building map of section 4 is best on this image.

# %% [markdown]
# ## Summary
# * Class names become text embeddings averaged over prompt templates; synonyms are max-pooled.
# * CLIP's image embedding is the projected CLS token, the only output trained to match text; the
#   patch tokens never were, and the last block mixes image-level content into all of them.
# * The dense CLIP map needs training-free fixes: self-self attention without residual and MLP in the last
#   block, and removing the CLS token's similarity, a bias shared by every patch of a window (lambda 0.3).
# * SegEarth-OV also upsamples CLIP's 14 x 14 window features to pixels (SimFeatUp), guided by the image.
# * Multi-class: each SAM mask takes its majority CLIP class. Binary: keep masks above tau, take the union.
# * The crop selector classifies masks out of context in one CLIP batch; compare it per dataset.
#
# ## What's next
# **03 · Open-vocabulary evaluation**: mIoU and foreground IoU, on the samples and on the benchmarks.
