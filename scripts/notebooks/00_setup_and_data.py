# %% [markdown]
# # 00 · Setup and data
# {{BADGE}}
#
# **Objectives.** After this notebook you can
# 1. install the suite locally or on Colab and check the environment (`rs-seg doctor`);
# 2. tell the two model profiles apart: *full* (real pretrained weights) and *tiny* (random stand-ins for testing);
# 3. load the shipped remote-sensing samples, their ground truth and class palettes, and read any raster (PNG, JPEG, GeoTIFF) as 8-bit RGB.
#
# **Prerequisites.** Python and NumPy basics. No GPU needed.
#
# **Time.** About 10 minutes.

# %%
# {{SETUP}}

# %% [markdown]
# ## Settings
# Every cost knob of a notebook sits in one cell. `pick` returns the full-profile values, or the
# cheap ones when the tiny profile is active (as in CI).

# %%
from rs_helpers.notebook import pick

S = pick(full=dict(show_samples=13, figure_size=3.2), tiny=dict(show_samples=4))
S

# %% [markdown]
# ## 1. Environment check
# `rs-seg doctor` lists the library versions, the device (CUDA, then Apple MPS, then CPU), the cache
# folder for checkpoints (`$RS_HELPERS_CACHE`) and which pretrained weights are already there.
# Missing weights are downloaded once, on first use, with a progress bar and a checksum.

# %%
from rs_helpers.doctor import format_checks, run_checks

print(format_checks(run_checks()))

# %% [markdown]
# ## 2. Two profiles: full and tiny
# * **full** (default): SAM, CLIP and Qwen-VL with their real pretrained weights.
# * **tiny**: the same architectures, tiny and *randomly initialised*. They run in seconds on a CPU
#   with no downloads, so CI can execute every notebook. **Their masks and labels are meaningless.**
#
# Choose with `RS_HELPERS_PROFILE=tiny` (environment) or `--profile tiny` (command line). The banner
# printed by the setup cell tells you which one is active.

# %%
from rs_helpers.profile import get_profile

print("active profile:", get_profile())

# %% [markdown]
# ## 3. The sample images
# The suite ships 13 real image / ground-truth pairs with redistributable licences: Dubai aerial
# tiles (CC0), Chesapeake NAIP land cover (public domain / CC0), and two SpaceNet panchromatic
# GeoTIFFs (CC BY-SA 4.0, kept in their own folder with their attribution).

# %%
from rs_helpers.samples import list_samples

samples = list_samples()
for s in samples:
    print(f"{s.name:22s} {s.license:32s} classes: {', '.join(s.class_names)}")

# %% [markdown]
# ## 4. Reading rasters
# `read_image` turns any raster into what SAM and CLIP expect, **8-bit RGB**, and keeps the
# georeferencing (CRS, transform) for writing results back. Grayscale is replicated to three
# channels, alpha dropped, 16-bit data stretched between the 2nd and 98th percentile, and images
# with more than three bands need a band choice.
#
# *Try it:* read the Atlanta GeoTIFF and compare its `source_dtype` with the RGB dtype.

# %%
from rs_helpers.images import describe, read_image

atlanta = next(s for s in samples if s.name == "atlanta_buildings")
print(describe(atlanta.image))
image = read_image(atlanta.image)
print("RGB:", image.rgb.shape, image.rgb.dtype, "| from", image.source_dtype, "| CRS:", image.crs)

# %% [markdown]
# ## 5. Images with their ground truth
# Each sample's ground truth is loaded as class indices `0..K-1`, with `255` for unlabelled pixels.

# %%
import matplotlib.pyplot as plt

from rs_helpers.plotting import show_image, show_semantic

n = S["show_samples"]
fig, axes = plt.subplots(2, n, figsize=(S["figure_size"] * n, 2 * S["figure_size"]))
for column, sample in enumerate(samples[:n]):
    img, gt = sample.load()
    show_image(img.rgb, axes[0, column], title=sample.name)
    show_semantic(gt, sample.palette, sample.class_names, axes[1, column], legend=column == n - 1)
fig.tight_layout()

# %% [markdown]
# ## 6. Referring and reasoning queries
# For the generative branch (notebooks 04 to 06) the samples come with 21 template-generated
# queries and their target masks. They are machine-made from the ground truth, not human
# annotations: good for learning, not a benchmark.

# %%
from rs_helpers.plotting import show_mask
from rs_helpers.samples import load_referring

queries = load_referring()
print(len(queries), "queries, e.g.:")
for q in queries[:4]:
    print(f"  [{q.task}] {q.text}")
img, target = queries[0].load()
ax = show_image(img.rgb, title=queries[0].text)
show_mask(target, ax)

# %% [markdown]
# ## Exercises
# The checked exercises for this notebook are added by the teaching layer (see notebook README).
# Meanwhile: load `vegas_roads` and find which fraction of its pixels are road.
#
# ## Summary
# * `rs-seg doctor` checks the installation; weights download once into a cache.
# * The tiny profile runs everything without weights, and its output is meaningless.
# * `read_image` gives 8-bit RGB plus georeferencing for any raster; samples carry class names and palettes.
#
# ## What's next
# **01 · SAM grid proposals**: how SAM turns a grid of point prompts into candidate masks.
