# %% [markdown]
# # 02 · The dense CLIP map
# {{BADGE}}
#
# **Objectives.** After this notebook you can
# 1. embed class names with CLIP, with prompt templates and synonyms;
# 2. say why CLIP's patch tokens align poorly with text, and what each training-free change to the last block does;
# 3. compute a dense (per-pixel) CLIP class map, and show what the CLS-token bias removal subtracts and where it
#    changes the labels;
# 4. say what SegEarth-OV's feature upsampler adds to the map.
#
# **Prerequisites.** Notebook 00 (profiles, samples). Notebook 01 (SAM grid proposals) helps: its proposals
# are what this map names in notebook 03.
#
# **Time.** About 10 minutes (plus the CLIP download the first time under the full profile), plus 20 for the
# two exercises.
#
# {{COMPUTE}}
#
# Stage 2 of the contrastive branch of the method (see [`docs/method.md`](../docs/method.md)): nothing is
# trained. Notebook 01 cut the image into class-agnostic SAM proposals; here CLIP gives every pixel a score
# for each class name, the *dense CLIP map*. Notebook 03 then lets each SAM proposal vote on this map
# (stage 3, selection), so that SAM supplies the boundaries and CLIP the names. SAM does not run in this
# notebook. An optional appendix at the end measures what each map costs.

# %%
# {{SETUP}}

# %% [markdown]
# ## Settings

# %%
from rs_helpers.teaching import pick

S = pick(
    full=dict(clip="ViT-B-16", sample="dubai_tile2_part001", templates="imagenet80", max_side=1024, long_side=448,
              device=None),
    # classroom: real weights, laptop-sized settings (SAM ViT-B, 16 x 16 grid, 512 px)
    classroom=dict(templates="short", max_side=512),
    # long_side: the SegEarth-OV map of section 2 (448 there); 224 keeps the random upsampler to one window
    tiny=dict(templates="single", max_side=256, long_side=224),
)
S

# %%
from rs_helpers.profile import is_tiny

TINY = is_tiny(S["profile"])
NOTE = " [tiny: meaningless]" if TINY else ""  # appended to every score shown below
if TINY:
    print("TINY PROFILE: CLIP is random here. Every map below is MEANINGLESS; only the mechanics are real.")

# %%
import matplotlib.pyplot as plt

from rs_helpers.models import load_clip
from rs_helpers.ovss import resize_labels, resize_rgb, work_size
from rs_helpers.samples import get_sample

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


# %% tags=["gallery"]
from rs_helpers.ovss import DenseSettings, dense_map
from rs_helpers.evaluation import confusion_matrix
from rs_helpers.teaching import show_semantic
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
    upsampled[name] = dense_map(clip, image, vocab, segearth, text=text, upsampler=up)

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
# clip` runs exactly that (CLIP alone, no SAM), and notebook 04 compares it under two protocols.

# %% [markdown]
# ## Exercises
# Each exercise has a task, a cell for your answer (tagged `solution`: in the student copy it is a stub that
# raises `NotImplementedError` until you replace it) and a check. Most ask for a function: the check runs it
# on inputs you have not seen, so it must work in general, not only on the example. `q1.hint()` gives a nudge,
# a second call a closer hint; `q1.solution()` shows our solution.

# %%
from rs_helpers.teaching.exercises.nb02 import q1, q2

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
# ### More to explore
# 1. Add a synonym to one class (e.g. `road,street,asphalt` in `classes`), rerun sections 1 and 2 and see
#    whether the road pixels of the dense map change.
# 2. Which text row does the CLS token favour most on this image (the tallest bar of the bias figure), and
#    does its class lose pixels once the bias is removed?
# 3. Compare `templates="single"` with the 80 ImageNet templates (the `templates` setting): which classes move most?

# %% [markdown]
# ## Summary
# * Class names become text embeddings averaged over prompt templates; synonyms are max-pooled.
# * CLIP's image embedding is the projected CLS token, the only output trained to match text; the
#   patch tokens never were, and the last block mixes image-level content into all of them.
# * The dense CLIP map needs training-free fixes: self-self attention without residual and MLP in the last
#   block, and removing the CLS token's similarity, a bias shared by every patch of a window (lambda 0.3).
# * Within one window the removal shifts each text row by one constant: it changes labels only where
#   classes compete, by making a row that matches the whole window lose.
# * SegEarth-OV also upsamples CLIP's 14 x 14 window features to pixels (SimFeatUp), guided by the image.
#
# ## What's next
# **03 · CLIP as mask selector**: SAM's proposals vote on this map, giving a semantic map with SAM's
# boundaries, or a binary map for one class with a threshold tau.

# %% [markdown]
# ## Appendix (optional): what each map costs
# A detour for the curious, not needed for notebook 03. It computes the maps of section 2 once more and
# times each: the text embeddings (once per vocabulary; the package caches them, here they are computed
# afresh), our defaults, and SegEarth-OV's path without and with its upsampler. The upsampler runs at
# 224 x 224 per window, so under the full profile on a CPU it is the slow one. Under the tiny profile the
# models are tiny and random, so these seconds say nothing about the real cost.

# %%
import time

from rs_helpers.ovss import encode_vocabulary

# section 1's embeddings again, from the cache: the exercises above reused the name `text`
rows_text = encode_vocabulary(clip, vocab, templates=S["templates"])
steps = {
    "text embeddings (not cached)": lambda: encode_vocabulary(clip, vocab, templates=S["templates"], cache=None),
    "our defaults (no upsampler)": lambda: dense_map(clip, image, vocab, defaults, text=rows_text),
}
for name, up in zip(upsampled, (None, upsampler)):
    steps[name] = lambda up=up: dense_map(clip, image, vocab, segearth, text=rows_text, upsampler=up)
for name, step in steps.items():
    start = time.perf_counter()
    step()
    print(f"{name:50s} {time.perf_counter() - start:6.2f} s")
