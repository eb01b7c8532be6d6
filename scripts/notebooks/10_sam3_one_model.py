# %% [markdown]
# # 10 · SAM 3: one model for where and what
# {{BADGE}}
#
# **Objectives.** After this notebook you can
# 1. say what SAM 3 changed from SAM 1: a **concept prompt** (a short noun phrase) instead of clicks, **instance
#    queries** that each come with a score, a **presence head** that says whether the concept is in the image
#    at all, and a **semantic head** that paints a dense map;
# 2. segment the shipped samples with SAM 3 and SegEarth-OV3's training-free fusion of those heads;
# 3. draw what each head contributes and rebuild the fusion step by step, from SAM 3's logits to the labels;
# 4. compare SAM + CLIP, CLIP alone and SAM 3 on the same images, by mIoU and by the time of each stage;
# 5. say where SAM 3 still fails on remote-sensing images (thin roads, many small objects) and why.
#
# **Prerequisites.** Notebooks 01-04 (SAM grid proposals, the dense CLIP map, CLIP as a mask selector, mIoU and
# protocols). For the full profile: a Hugging Face account that has accepted SAM 3's licence (section "Access to
# SAM 3" below).
#
# **Time.** About 25 minutes to read and 15 for the exercises. With real weights on a GPU the models run in
# a few minutes; the first run also downloads SAM 3 (about 3.5 GB) besides SAM and CLIP. Under the tiny
# profile everything runs in well under a minute on a CPU.
#
# {{COMPUTE}}

# %%
# {{SETUP}}

# %% [markdown]
# ## Settings
# Every cost knob sits here. `samples` are the images of the side-by-side comparison (section 4); `sample` and
# `head_class` the image and class whose heads section 3 takes apart; `confidence` is SegEarth-OV3's confidence
# threshold for instance queries and `prob_thd` the threshold below which section 3 sends a pixel to the
# background; `absent` are concepts to ask about that are not in the image (for the presence head). Under the
# tiny profile there are fewer samples, a coarser SAM grid, one CLIP template and a smaller CLIP map.

# %%
from rs_helpers.teaching import pick

S = pick(
    full=dict(model_id="facebook/sam3", sam="vit_l", clip="ViT-B-16", points_per_side=29, templates="imagenet80",
              max_side=1024, clip_long_side=448, sample="dubai_tile2_part001", head_class="road",
              samples=["dubai_tile2_part001", "chesapeake_0", "atlanta_buildings"],
              roads="vegas_roads", small_objects="atlanta_buildings",
              absent=["airplane", "ship", "swimming pool"], confidence=0.5, prob_thd=0.3,
              prompt_batch=None, device=None),
    # classroom: real weights, laptop-sized settings (SAM ViT-B, 16 x 16 grid, 512 px)
    classroom=dict(sam="vit_b", points_per_side=16, templates="short", max_side=512,
                   samples=["dubai_tile2_part001", "atlanta_buildings"]),
    # clip_long_side 224 (SegEarth-OV reads 448): one CLIP window per image keeps the random upsampler fast
    tiny=dict(points_per_side=4, templates="single", max_side=256, clip_long_side=224,
              samples=["dubai_tile2_part001", "atlanta_buildings"], absent=["airplane"]),
)
S

# %%
from rs_helpers.profile import is_tiny

TINY = is_tiny(S["profile"])
NOTE = " [tiny: meaningless]" if TINY else ""  # appended to every score shown below
if TINY:
    print("TINY PROFILE: SAM 3, SAM and CLIP are random here. Every map, score and number below is MEANINGLESS;\n"
          "only the mechanics (the heads, the fusion, the tables) are real. Switch to the full profile for results.")

# %% [markdown]
# ## 1. What changed from SAM 1
# SAM 1 (notebooks 01-03) answers **where**: given a click or a box it returns the region under it, with no idea
# what that region is. So the suite's open-vocabulary pipeline prompts it with a grid of clicks and asks CLIP
# **what** each mask is. SAM 3 (Meta's *Segment Anything with Concepts*, 2025) answers both in one model:
#
# * **Concept prompts.** The prompt is a short noun phrase ("road", "swimming pool"), not clicks. A text encoder
#   turns it into tokens that the rest of the model attends to.
# * **Instance queries.** A DETR-style decoder runs a fixed set of learned queries over the image (200 in SAM 3).
#   Each query returns a mask, a box and a logit: how sure it is that it holds *one instance* of the concept. No
#   grid of clicks: the queries find the objects themselves.
# * **The presence head.** A separate presence token answers one question for the whole image: *is the concept
#   here at all?* Its probability multiplies every query's probability, so a confident query in an image without
#   the concept still scores low.
# * **The semantic head.** Beside the instance masks, a pixel decoder paints one dense map per prompt: coverage
#   for "stuff" (roads, water, fields) that does not come in countable pieces.
#
# **SegEarth-OV3** (Li et al., arXiv [2512.08730](https://arxiv.org/abs/2512.08730)) turns these heads into
# open-vocabulary semantic segmentation without any training: per class prompt, the masks of the confident
# queries are combined by a maximum, the semantic map joins them by another maximum, the result is multiplied by
# the presence score, and every pixel takes its best class (section 3 goes through it step by step).
# `rs_helpers.ovss.sam3_fusion` ports it and is tested against the official code.
#
# What SegEarth-OV3 reports (mIoU %, as quoted in issue #15), beside SegEarth-OV (CLIP alone, notebook 04) and
# the SAM + CLIP paper this suite follows:
#
# | set | SegEarth-OV3 (SAM 3) | SegEarth-OV (CLIP) | paper (SAM + CLIP) |
# | --- | --- | --- | --- |
# | OpenEarthMap | 42.9 | 40.3 | - |
# | LoveDA | 47.4 | 36.9 | 38.2 |
# | Potsdam | 57.8 | 47.1 to 48.5 | 50.2 |
# | Vaihingen | 60.8 | 29.1 to 40.0 | 40.6 |
#
# For Potsdam and Vaihingen two SegEarth-OV figures are quoted; the package's dataset classes keep the lower
# ones (47.1, 29.1). Either way SAM 3 leads on all four: by 2.6 points on OpenEarthMap, about 10 on LoveDA and
# Potsdam, 20 or more on Vaihingen. These are **reported**
# numbers, each made under its authors' own protocol (per-dataset thresholds, class names, windows): they have
# not been reproduced by this suite. The next cell prints what the package stores, and SegEarth-OV3's protocol
# for one dataset (`rs-seg eval ovss --method sam3 --protocol segearth-ov3` applies it).

# %%
from rs_helpers.evaluation.datasets.registry import dataset_class
from rs_helpers.evaluation.protocols_sam3 import REPORTED_MIOU, class_changes, describe_sam3, get_sam3_protocol

print(f"{'reported mIoU %':16s} {'SegEarth-OV3':>12s} {'SegEarth-OV':>12s} {'paper':>7s}   (published, not run here)")
for name, miou in REPORTED_MIOU.items():
    data = dataset_class(name)
    paper = getattr(data, "paper", None)
    print(f"{data.title:16s} {miou:12.1f} {data.segearth_ov:12.1f} {'-' if paper is None else f'{paper:.1f}':>7s}")
print()
print(describe_sam3(get_sam3_protocol("potsdam")))
print("Potsdam classes SegEarth-OV3 prompts under other names:", class_changes("potsdam"))

# %% [markdown]
# ### Access to SAM 3 (full profile only)
# `facebook/sam3` is **gated**: the weights download only for an account that accepted its licence. Once:
# 1. open https://huggingface.co/facebook/sam3, log in (or create a free account) and accept the licence; access
#    is granted by the model's owner, and the page shows whether the request is pending or accepted;
# 2. make a token with read access (Hugging Face: Settings > Access Tokens);
# 3. give it to this session. **Colab:** the key icon in the left bar (Secrets), add a secret named `HF_TOKEN`
#    with the token as its value and switch on "Notebook access"; `huggingface_hub` reads it from there.
#    **Elsewhere:** run `hf auth login` once in a terminal, or set the `HF_TOKEN` environment variable before
#    starting Jupyter.
#
# Without a token, or before access is granted, the next cell stops with **one message** (a
# `WeightsUnavailableError`, exit code 3 from the command line) that names the licence page and these steps; the
# notebook does not fall back to anything. The weights (about 3.5 GB) are then downloaded once into the Hugging
# Face cache; with `USE_DRIVE_CACHE = True` in the setup cell that cache lives on your Drive. The tiny profile
# needs none of this: its SAM 3 is a random model of the same design, built on the spot.

# %%
from rs_helpers.models import load_sam3, sam3_status

if not TINY:
    status = sam3_status(S["model_id"])
    print(f"Hugging Face token: {'found' if status['token'] else 'none found'} | weights in the cache: "
          f"{status['cached']} | licence page: {status['licence_url']}")
sam3 = load_sam3(S["model_id"], profile=S["profile"], device=S["device"])
queries = sam3.model.config.detr_decoder_config.num_queries
print(f"{sam3.model_id}: input {sam3.input_size} px, {queries} instance queries, on {sam3.device} in {sam3.dtype}")

# %% [markdown]
# ## 2. SAM 3 on a sample
# `segment_sam3(image, classes, sam3=...)` returns the same `OvssResult` as the SAM + CLIP pipeline (labels,
# class names, palette, shares, timings). Every synonym is its own prompt ("road,highway,street" is three); the
# image is encoded once per view and the prompts are grounded on it `prompt_batch` at a time (None: one at a time on
# a CPU, where batching gains nothing and every bit equals SegEarth-OV3's loop; 8 on a GPU). An image larger than
# the model's input (1008 px; 256 px tiny) is read in windows of that size, averaged where they overlap. The
# settings are SegEarth-OV3's defaults: confidence threshold 0.5, and `prob_thd` 0, so no pixel is sent to a
# background class (the samples have none).

# %%
from rs_helpers.evaluation import confusion_matrix
from rs_helpers.ovss import Sam3Settings, parse_classes, segment_sam3
from rs_helpers.samples import get_sample
from rs_helpers.teaching import show_panels

settings = Sam3Settings(confidence_threshold=S["confidence"], prompt_batch=S["prompt_batch"])
sample = get_sample(S["sample"])
raster, gt = sample.load()
vocab = parse_classes(sample.vocabulary)
result = segment_sam3(raster, vocab, sam3=sam3, settings=settings, palette=sample.palette)
miou = confusion_matrix(result.labels, gt, len(sample.class_names)).miou()
show_panels(raster.rgb, gt, result.labels, sample.palette, sample.class_names,
            titles=("image", "ground truth", f"SAM 3: mIoU {100 * miou:.1f}{NOTE}"), suptitle=sample.name);
print("classes (synonyms are separate prompts):", "; ".join(sample.vocabulary))
print("shares:", {name: f"{100 * share:.1f} %" for name, share in result.shares.items()}, NOTE)
print("seconds per stage:", {stage: round(seconds, 2) for stage, seconds in result.timings.items()})

# %% [markdown]
# *Try it:* change `S["sample"]` to `"chesapeake_0"` (land cover) and run this section again. The shares add up
# to 100 %: with `prob_thd` 0 every pixel gets one of the classes, even where none fits.

# %% [markdown]
# ## 3. What each head contributes
# One class (`head_class`) and one view (the whole image squashed to the model's input, `slide_crop=0`), so the
# maps below are what the fusion sees. `class_scores` returns the fused score of every class before the argmax;
# `heads` chooses which heads enter it:
# * **instance only**: the confident queries' masks, each weighted by its object score (the presence score is
#   inside the object score, so it is not gone entirely);
# * **semantic only**: the semantic head's dense map, nothing else;
# * **instance + semantic, no presence**: their element-wise max;
# * **all three** (SegEarth-OV3): that max times the presence score.
#
# With real weights, expect crisp objects with gaps between them in the instance map, more coverage with soft
# edges in the semantic map, and both in their max; for a concept that is absent, the presence factor turns the
# whole map down.

# %%
from dataclasses import replace

import numpy as np

from rs_helpers.ovss.sam3_fusion import class_scores
from rs_helpers.teaching.sam3_views import show_maps

one_view = replace(settings, slide_crop=0)
ci = vocab.index(S["head_class"])
variants = {"instance only": ("instance",), "semantic only": ("semantic",),
            "instance + semantic,\nno presence": ("instance", "semantic"),
            "all three (SegEarth-OV3)": ("instance", "semantic", "presence")}
head_maps = {name: class_scores(raster.rgb, vocab, sam3=sam3, settings=replace(one_view, heads=heads))[ci].cpu().numpy()
             for name, heads in variants.items()}
show_maps(head_maps, suptitle=f"'{S['head_class']}' on {sample.name}: score maps by head");

# %% [markdown]
# **Is the concept there at all?** The presence head gives one number per prompt. Below: the first name of every
# class in the vocabulary, and concepts that are not in this image (`absent`). With real weights, expect the absent
# ones near 0 and the classes the tile shows near 1 (a class of the vocabulary can be absent from one tile too);
# this is what filters out the many classes of a large vocabulary that a given tile does not contain.

# %%
import matplotlib.pyplot as plt

from rs_helpers.teaching.sam3_views import sam3_heads, sigmoid, tiny_title

probe = [names[0] for names in vocab.synonyms] + list(S["absent"])
presence_all = sigmoid(sam3_heads(sam3, raster.rgb, probe).presence_logits)
fig, ax = plt.subplots(figsize=(6, 0.35 * len(probe) + 1))
ax.barh(probe, presence_all, color=["tab:blue"] * len(vocab) + ["tab:grey"] * len(S["absent"]))
ax.set_xlim(0, 1)
ax.invert_yaxis()
ax.set_xlabel("presence probability (blue: classes of the sample, grey: absent concepts)")
ax.set_title(tiny_title(f"presence on {sample.name}", TINY, "these scores are"), color="#c00" if TINY else "black",
             fontsize=9);

# %% [markdown]
# ### The fusion, step by step
# `sam3_heads` runs SAM 3 on one view and returns its raw outputs per prompt: the query logits (Q numbers), the
# presence logit, the mask logits of every query and the semantic logits, at the model's mask resolution. From
# them, for one prompt:
# 1. `object_score = sigmoid(query logit) * sigmoid(presence logit)`, one per query;
# 2. keep the queries with `object_score > confidence`;
# 3. resize each kept mask's logits to the view (bilinear), take the sigmoid, multiply by its object score, and
#    take the element-wise **max** over the kept queries (0 where none is kept);
# 4. the element-wise **max** with the semantic map (its logits resized the same way, then the sigmoid);
# 5. times the presence probability.
#
# The last line compares the result with the package's fusion (`view_scores`) on the same outputs.

# %%
from rs_helpers.teaching.sam3_views import show_query_scores, upsample

prompt = vocab.synonyms[ci][0]
heads = sam3_heads(sam3, raster.rgb, [prompt])
view_hw = heads.view_hw
presence = float(sigmoid(heads.presence_logits[0]))                      # is the concept here?
object_score = sigmoid(heads.query_logits[0]) * presence                 # step 1
kept = object_score > one_view.confidence_threshold                      # step 2
masks = sigmoid(upsample(heads.mask_logits[0][kept], view_hw))           # step 3: kept x H x W
instance = (masks * object_score[kept][:, None, None]).max(axis=0) if kept.any() else np.zeros(view_hw)
semantic = sigmoid(upsample(heads.semantic_logits[0], view_hw))          # step 4
fused = np.maximum(instance, semantic) * presence                        # step 5
package = heads.fused(one_view)[0]
print(f"prompt '{prompt}': presence {presence:.3f}; {kept.sum()} of {heads.n_queries} queries kept; "
      f"masks at {heads.mask_logits.shape[-2]} x {heads.mask_logits.shape[-1]}, view {view_hw[0]} x {view_hw[1]}{NOTE}")
print(f"largest difference from the package's fusion: {np.abs(fused - package).max():.1e}")

fig, ax = plt.subplots(figsize=(6, 2.8))
title = f"object scores of the {heads.n_queries} queries for '{prompt}'"
show_query_scores(object_score, one_view.confidence_threshold, ax=ax, title=tiny_title(title, TINY, "these scores are"))
show_maps({"step 3: kept instances": instance, "step 4: max with semantic": np.maximum(instance, semantic),
           f"step 5: x presence {presence:.2f}": fused}, suptitle=f"the fusion for '{prompt}'");

# %% [markdown]
# ### From class scores to labels
# After the fusion, a class is the max over its synonyms, and each pixel takes the class of highest score (the
# first on ties). SegEarth-OV3 adds one rule: where that best score is below `prob_thd` the pixel takes the class
# `bg_idx` instead, a background class of the dataset (Potsdam's protocol: clutter, class 5, below 0.1). The
# samples have no background class, so below, pixels that would go to it are drawn black: with real weights they
# are the doubtful ones, often borders and classes the vocabulary does not name.

# %%
from rs_helpers.ovss.sam3_fusion import labels_from_scores
from rs_helpers.teaching import show_semantic

scores = class_scores(raster.rgb, vocab, sam3=sam3, settings=one_view)
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
for ax, thd in zip(axes, (0.0, S["prob_thd"])):
    labels = labels_from_scores(scores, thd, 255)  # 255: drawn black, "would go to bg_idx"
    share = (labels == 255).mean()
    show_semantic(labels, sample.palette, sample.class_names, ax, legend=ax is axes[-1],
                  title=f"prob_thd {thd:g}: {100 * share:.1f} % below (black){NOTE}")
fig.tight_layout()

# %% [markdown]
# *Try it:* set `head_class` to a class that covers large areas ("land", "vegetation") and compare the instance
# and semantic maps again: which head carries stuff, which carries things?

# %% [markdown]
# ## 4. Side by side: SAM + CLIP, CLIP alone, SAM 3
# The same images through the three methods of this suite, scored against the shipped ground truth (mIoU, or
# foreground IoU for a building-only sample), with the seconds of each stage from `OvssResult.timings`, grouped:
# text encoders; image models (SAM's proposals and CLIP's dense map; SAM 3's image encoder and decoders);
# selection or fusion; the rest (resizing, bringing labels to full size).
# * **SAM + CLIP** (`segment`, notebooks 01-03): SAM's grid proposals voted by CLIP's dense map.
# * **CLIP alone** (`segment_clip`): SegEarth-OV's dense map with its SimFeatUp upsampler, no SAM.
# * **SAM 3** (`segment_sam3`): the fusion above.
#
# All three run with their own defaults (no per-dataset protocol: these are the samples). The first image pays
# for warm-up and for encoding the class names; the text is cached afterwards. With real weights, run this on a
# GPU: on a CPU SAM's 29 x 29 grid alone takes minutes per image, and SAM 3 is a large model too.
#
# **Under the tiny profile the scores and times are MEANINGLESS**: random models, small inputs, a 4 x 4 grid.
# The table only shows that each method ran and where its time goes in the code.

# %% tags=["gallery"]
from rs_helpers.models import load_clip, load_sam
from rs_helpers.ovss import (SEGEARTH_OV, ClipOnlySettings, DenseSettings, OvssSettings, load_upsampler, segment,
                             segment_clip)
from rs_helpers.sam import ProposalSettings, estimate_remaining
from rs_helpers.teaching.sam3_views import comparison_table, show_methods

sam = load_sam(S["sam"], profile=S["profile"], device=S["device"])
clip = load_clip(S["clip"], profile=S["profile"], device=S["device"])
upsampler = load_upsampler("simfeatup", clip, profile=S["profile"])
pipeline_settings = OvssSettings(proposals=ProposalSettings(points_per_side=S["points_per_side"]),
                                 dense=DenseSettings(templates=S["templates"]), max_side=S["max_side"])
clip_alone = ClipOnlySettings(dense=replace(SEGEARTH_OV, templates=S["templates"], long_side=S["clip_long_side"]))


def run_method(method, raster, sample):
    common = dict(binary=sample.binary, palette=sample.palette)
    if method == "SAM + CLIP":
        return segment(raster, sample.vocabulary, sam=sam, clip=clip, settings=pipeline_settings, **common)
    if method == "CLIP only":
        return segment_clip(raster, sample.vocabulary, clip=clip, settings=clip_alone, upsampler=upsampler, **common)
    return segment_sam3(raster, sample.vocabulary, sam3=sam3, settings=settings, **common)


rows = []
for name in S["samples"]:
    one = get_sample(name)
    image, truth = one.load()
    maps = {}  # this image's label maps, drawn below the table (only the figure is kept)
    for method in ("SAM + CLIP", "CLIP only", "SAM 3"):
        out = run_method(method, image, one)
        cm = confusion_matrix(out.labels, truth, len(one.class_names))
        score = cm.foreground_iou() if one.binary else cm.miou()
        metric = "fg IoU" if one.binary else "mIoU"
        rows.append(dict(sample=name, method=method, metric=metric, score=score, timings=out.timings))
        maps[f"{method}\n{metric} {100 * score:.1f}{NOTE}"] = out
    show_methods(image.rgb, truth, maps, suptitle=name)
    if len(rows) == 3 and len(S["samples"]) > 1:  # the first image's time predicts the rest
        print(estimate_remaining(sum(r["timings"]["total"] for r in rows), 1, len(S["samples"]), unit="image"))
print(comparison_table(rows))

# %% [markdown]
# **Reading the table** (full profile). The reason SegEarth-OV3 gives for its gains over CLIP-based methods is
# localisation: the instance head outlines buildings and cars that CLIP's 16 px patches blur. SAM + CLIP gets SAM's
# boundaries too, but pays for a grid of prompts and a separate CLIP pass; SAM 3 pays once per view for its image
# encoder, then a decoder pass per prompt, so its time grows with the number of class names (synonyms count),
# not with a grid. Three images are a sanity check, not a benchmark: read the reported table of section 1 for
# that, and `rs-seg eval ovss --method sam3` to score a benchmark yourself.

# %% [markdown]
# ## 5. Where it fails
# Two kinds of remote-sensing scene are hard for SAM 3, and the numbers below say why. With real weights the
# maps show it; **under the tiny profile they are noise**, so read the printed sizes and counts (they are facts
# about the images and the model's design) and the notes on what to look for.
#
# **Thin roads.** Every view is squashed to the model's input and the masks come out at about a quarter of that
# resolution (288 px for 1008; 64 for the tiny 256). A road a few metres wide is then only a few mask pixels
# across, and the bilinear upsampling blurs it into its verges; narrower streets, coarser imagery, or a large
# image read whole as one view get one or two. A road network is also one connected region of "stuff" that no
# single instance query covers, so the semantic head's soft map has to carry it. Look for: roads broken into
# pieces, thin streets missing, wide blobs at junctions. (The Vegas labels are partial too: see
# `notebooks/README.md`.)

# %%
from scipy import ndimage

from rs_helpers.ovss.sam3_fusion import windows_for

roads = get_sample(S["roads"])
road_raster, road_truth = roads.load()
road_result = segment_sam3(road_raster, roads.vocabulary, sam3=sam3, settings=settings, binary=True,
                           palette=roads.palette)
road_iou = confusion_matrix(road_result.labels, road_truth, 2).foreground_iou()
mask_side = heads.mask_logits.shape[-1]  # the model's mask resolution (section 3's heads)
road = road_truth == 1
width = 4 * ndimage.distance_transform_edt(road).sum() / road.sum()  # a strip of width w has mean distance w / 4
windows = windows_for(road_raster.height, road_raster.width, settings, sam3.input_size)
view_side = windows[0][1] - windows[0][0]  # image pixels along one side of a view
print(f"{roads.name}: {road_raster.width} x {road_raster.height} px, read in {len(windows)} view(s) of {view_side} px, "
      f"each squashed to {sam3.input_size} px; masks at {mask_side} x {mask_side} per view")
print(f"labelled roads are about {width:.0f} px wide: about {width * mask_side / view_side:.1f} mask pixels")
show_panels(road_raster.rgb, road_truth, road_result.labels, roads.palette, roads.class_names,
            titles=("image", "ground truth roads", f"SAM 3: IoU {100 * road_iou:.1f}{NOTE}"), suptitle=roads.name);

# %% [markdown]
# **Many small objects.** The instance head has a fixed number of queries per view (200 real, 16 tiny). A tile
# of a dense city or a car park holds more separate objects than that, and they cannot be covered one by one:
# the rest must come from the semantic head, whose map is coarse and merges neighbours. Small objects are also
# only a few mask pixels across. Sliding windows help (each window has its own queries and a finer view), at the
# cost of one image encoding per window. Look for: dense blocks of houses merged into one region, small buildings
# missing while the large ones are outlined, and a number of kept queries (the bars below) close to the limit.

# %%
from rs_helpers.teaching.sam3_views import region_areas

small = get_sample(S["small_objects"])
small_raster, small_truth = small.load()
target = small.vocabulary[1].split(",")[0]
small_heads = sam3_heads(sam3, small_raster.rgb, [target])
small_scores = sigmoid(small_heads.query_logits[0]) * sigmoid(small_heads.presence_logits[0])
areas = region_areas(small_truth == 1)
n_objects, n_kept = len(areas), int((small_scores > settings.confidence_threshold).sum())
side = np.sqrt(np.median(areas))  # the side of a square of the median area
scale = small_heads.mask_logits.shape[-1] / max(small_raster.height, small_raster.width)
print(f"{small.name}: {n_objects} separate {target}s in the ground truth, median about {side:.0f} x {side:.0f} px "
      f"({side * scale:.1f} mask pixels across, the whole image as one view); {small_heads.n_queries} queries, "
      f"{n_kept} kept for '{target}'{NOTE}")
fig, ax = plt.subplots(figsize=(6, 2.8))
show_query_scores(small_scores, settings.confidence_threshold, ax=ax,
                  title=tiny_title(f"'{target}' on {small.name}: {n_kept} of {small_heads.n_queries} queries kept "
                                   f"for {n_objects} buildings", TINY, "these scores are"));

# %% [markdown]
# ## Exercises
# Each exercise has a task, a cell for your answer (tagged `solution`: in the student copy it is a stub that
# raises `NotImplementedError` until you replace it) and a check. Most ask for a function: the check runs it
# on inputs you have not seen, so it must work in general, not only on the example. `q1.hint()` gives a nudge,
# a second call a closer hint; `q1.solution()` shows our solution.

# %%
from rs_helpers.teaching.exercises.nb10 import q1, q2, q3

# %% [markdown]
# **Exercise 1 · Object scores from logits.** SAM 3 scores each of its instance queries with a logit, and the
# whole prompt with a presence logit. Write `object_score(query_logits, presence_logit)`: `query_logits` is a
# 1-D NumPy array of Q query logits, `presence_logit` one number. Return the Q **object scores**
# `sigmoid(query logit) * sigmoid(presence logit)`, in the queries' order, where `sigmoid(x) = 1 / (1 +
# exp(-x))`. Then set `answer = object_score`: the check calls your function on inputs of its own.

# %%
import numpy as np

query_logits = np.array([2.0, -1.0, 0.5, 4.0, -3.0])
presence_logit = 1.5

# %% tags=["solution"]
# object_score(query_logits, presence_logit) -> Q scores; then answer = object_score
def object_score(query_logits, presence_logit):
    sigmoid = lambda x: 1 / (1 + np.exp(-np.asarray(x, float)))
    return sigmoid(query_logits) * sigmoid(presence_logit)

print(object_score(query_logits, presence_logit).round(3))
answer = object_score

# %%
q1.check(answer)
# q1.hint()
# q1.solution()

# %% [markdown]
# **Exercise 2 · Fuse the heads.** For one prompt on one view: `masks` holds Q instance masks (Q x H x W
# probabilities, already resized to the view), `scores` their Q object scores (exercise 1), `semantic` the
# semantic head's H x W probabilities, `presence` the presence probability (one number), `threshold` the
# confidence threshold. Write `fuse(masks, scores, semantic, presence, threshold)` returning SegEarth-OV3's H
# x W score map, in four steps: (1) keep the queries whose score is **above** `threshold` (strictly) and
# weight each kept mask by its score; (2) the instance map is the element-wise **max** over the kept, weighted
# masks (0 everywhere when no query is kept); (3) take the element-wise **max** with `semantic`; (4) multiply
# the result by `presence`. Then set `answer = fuse`: the check calls it on inputs of its own, one with no
# query kept.

# %%
import numpy as np

from rs_helpers.teaching.exercises.nb10 import example_heads

masks, scores, semantic, presence, threshold = example_heads()
print("object scores:", scores, "| threshold:", threshold, "| presence:", presence)

# %% tags=["solution"]
# fuse(masks, scores, semantic, presence, threshold) -> H x W map; then answer = fuse
def fuse(masks, scores, semantic, presence, threshold):
    kept = scores > threshold
    instance = np.zeros(semantic.shape)
    if kept.any():
        instance = (masks[kept] * scores[kept][:, None, None]).max(axis=0)
    return np.maximum(instance, semantic) * presence

print(fuse(masks, scores, semantic, presence, threshold).round(3))
answer = fuse

# %%
q2.check(answer)
# q2.hint()
# q2.solution()

# %% [markdown]
# **Exercise 3 · Labels, with prob_thd and the background.** `class_scores` is a C x H x W array of fused
# scores, one map per class (after the max over each class's synonyms). Write `choose_labels(class_scores,
# prob_thd, bg_idx)` returning the H x W label map: each pixel takes the class of highest score (the **first**
# class on ties), except where that best score is **below** `prob_thd` (strictly): there it takes the class
# `bg_idx`. Write it with NumPy, without the package's `labels_from_scores`. Then set `answer =
# choose_labels`: the check calls it on inputs of its own (with a `bg_idx` that is not 0, as Potsdam's clutter
# is class 5 under SegEarth-OV3's protocol).

# %%
import numpy as np

from rs_helpers.teaching.exercises.nb10 import example_scores

class_scores = example_scores()
print(class_scores)

# %% tags=["solution"]
# choose_labels(class_scores, prob_thd, bg_idx) -> H x W labels; then answer = choose_labels
def choose_labels(class_scores, prob_thd, bg_idx):
    labels = class_scores.argmax(axis=0)
    labels[class_scores.max(axis=0) < prob_thd] = bg_idx
    return labels

print(choose_labels(class_scores, prob_thd=0.3, bg_idx=0))
answer = choose_labels

# %%
q3.check(answer)
# q3.hint()
# q3.solution()


# %% [markdown]
# ### More to explore
# 1. In section 3, set `one_view = replace(settings, slide_crop=0, confidence_threshold=0.2)` and then `0.8`: how many
#    queries are kept, and which of the maps changes?
# 2. Run section 4 with `settings = replace(settings, heads=("semantic",))` for SAM 3: how much of its score is
#    the semantic head alone, on land cover (Chesapeake) and on buildings (Atlanta)?
# 3. Add a class that is not in the image (e.g. `"swimming pool"`) to the Dubai vocabulary and segment again, with
#    and without the presence head (`heads=("instance", "semantic")`): where do its pixels go?
# 4. From a terminal: `rs-seg ovss IMAGE --method sam3 --classes "building;road;tree;water" --out map.png`
#    (`--sam3-heads`, `--sam3-confidence` and `--sam3-prob-thd` set the fusion), and on a benchmark
#    `rs-seg eval ovss --dataset potsdam --root DIR --method sam3` (the `segearth-ov3` protocol by default).

# %% [markdown]
# ## Summary
# * SAM 3 takes a noun phrase as its prompt and answers where and what at once: DETR-style instance queries
#   (a mask and a score each), a presence head (is the concept in the image at all) and a semantic head (a
#   dense map).
# * SegEarth-OV3 fuses them without training: `object_score = sigmoid(logit) * presence`, queries above the
#   confidence threshold, max over their weighted masks, max with the semantic map, times the presence; the
#   argmax over classes, and `bg_idx` below `prob_thd`.
# * It reports 42.9 / 47.4 / 57.8 / 60.8 mIoU on OpenEarthMap, LoveDA, Potsdam and Vaihingen, above SegEarth-OV
#   on all four (by 2.6 to over 20 points); not reproduced here.
# * One image encoding per view and one decoder pass per prompt: its cost grows with the vocabulary, not with a
#   grid of clicks.
# * Thin roads (a few mask pixels wide) and scenes with more objects than queries remain hard.
# * Under the tiny profile all of it runs, and none of its numbers mean anything.
#
# ## What's next
# This is the last notebook. Run section 4 with the full profile on a GPU (Colab) and compare with the reported
# table; score a benchmark with `rs-seg eval ovss --method sam3`; for whole scenes, notebook 09's tiling works
# with SAM 3 too (`rs-seg ovss scene.tif --method sam3 --tile 1024 ...`). For sentences rather than class
# names ("the largest building"), go back to the referring branch of notebooks 05-08.
