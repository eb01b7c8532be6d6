# %% [markdown]
# # 00 · Setup and data
# {{BADGE}}
#
# **Objectives.** After this notebook you can
# 1. install the suite locally or on Colab and check the environment (`rs-seg doctor`);
# 2. tell the three model profiles apart: *full* and *classroom* (real pretrained weights, the paper's or laptop-sized
#    settings) and *tiny* (random stand-ins for testing);
# 3. load the shipped remote-sensing samples, their ground truth and class palettes, and read any raster (PNG, JPEG, GeoTIFF) as 8-bit RGB.
#
# **Prerequisites.** Python and NumPy basics. No GPU needed.
#
# **Time.** About 10 minutes, plus 20 for the two exercises.
#
# {{COMPUTE}}

# %%
# {{SETUP}}

# %% [markdown]
# ## Settings
# Every cost knob of a notebook sits in one cell. `pick` returns the full-profile values, or the
# cheap ones when the tiny profile is active (as in CI).

# %%
from rs_helpers.teaching import pick

S = pick(full=dict(show_samples=13, figure_size=3.2), tiny=dict(show_samples=4))
S

# %% [markdown]
# ## 1. Environment check
# `rs-seg doctor` lists the library versions, the device (CUDA, then Apple MPS, then CPU), the cache
# folder for checkpoints (`$RS_HELPERS_CACHE`) and which pretrained weights are already there.
# Missing weights are downloaded once, on first use, with a progress bar and a checksum.

# %%
from rs_helpers.models import format_checks, run_checks

print(format_checks(run_checks()))

# %% [markdown]
# ## 2. Three profiles: full, classroom and tiny
# * **full** (default): SAM, CLIP and Qwen-VL with their real pretrained weights and the paper's
#   settings (SAM ViT-L, a 29 x 29 grid of prompts, images up to 1024 px). Best on a GPU.
# * **classroom**: the same real weights with laptop-sized settings: SAM ViT-B, a 16 x 16 grid, 512 px,
#   fewer samples and queries. Results are real but a little coarser; each notebook's settings cell shows
#   both, and its header the measured compute time.
# * **tiny**: the same architectures, tiny and *randomly initialised*. They run in seconds on a CPU
#   with no downloads, so CI can execute every notebook. **Their masks and labels are meaningless.**
#
# Choose with `PROFILE = ...` in the setup cell, `RS_HELPERS_PROFILE=classroom` (environment) or
# `--profile classroom` (command line). The banner printed by the setup cell tells you which one is active.

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
from rs_helpers.geo import describe, read_image

atlanta = next(s for s in samples if s.name == "atlanta_buildings")
print(describe(atlanta.image))
image = read_image(atlanta.image)
print("RGB:", image.rgb.shape, image.rgb.dtype, "| from", image.source_dtype, "| CRS:", image.crs)

# %% [markdown]
# ## 5. Images with their ground truth
# Each sample's ground truth is loaded as class indices `0..K-1`, with `255` for unlabelled pixels
# (drawn hatched grey). Each ground truth has its own legend: the sample's classes, "(absent)" for
# those it does not contain, and "unlabelled" where it has 255.

# %% tags=["gallery"]
from rs_helpers.teaching import show_image
from rs_helpers.teaching.scene_figures import plot_sample_grid

plot_sample_grid(samples[:S["show_samples"]], columns=4, size=S["figure_size"]);

# %% [markdown]
# ## 6. Referring and reasoning queries
# For the generative branch (notebooks 05 to 08) the samples come with 21 template-generated
# queries and their target masks. They are machine-made from the ground truth, not human
# annotations: good for learning, not a benchmark.

# %%
from rs_helpers.teaching import show_mask
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
# Each exercise has a task, a cell for your answer (tagged `solution`: in the student copy it is a stub that
# raises `NotImplementedError` until you replace it) and a check. Most ask for a function: the check runs it
# on inputs you have not seen, so it must work in general, not only on the example. `q1.hint()` gives a nudge,
# a second call a closer hint; `q1.solution()` shows our solution.

# %%
from rs_helpers.teaching.exercises.nb00 import q1, q2

# %% [markdown]
# **Exercise 1 · How much of the scene is one class?** A ground truth holds class indices 0..K-1, and **255
# for unlabelled pixels**. Write `class_fraction(labels, class_index)` returning the **fraction** (a number
# from 0 to 1) of the *labelled* pixels of `labels` (a 2-D uint8 array) that equal `class_index`: unlabelled
# pixels count neither above nor below the fraction line. Try it on the `vegas_roads` sample's road class (the
# setup cell loads it), then set `answer = class_fraction`: the check calls your function on label maps of its
# own, some with unlabelled pixels and one where the class does not occur.

# %%
import numpy as np

from rs_helpers.samples import get_sample

vegas = get_sample("vegas_roads")
labels = vegas.load_labels()
road = vegas.class_names.index("road")
print(vegas.class_names, labels.shape, "values:", np.unique(labels))

# %% tags=["solution"]
# class_fraction(labels, class_index) -> a fraction; then answer = class_fraction
def class_fraction(labels, class_index):
    labelled = labels[labels != 255]
    return float((labelled == class_index).mean())

print(f"road: {class_fraction(labels, road):.3f} of the labelled pixels")
answer = class_fraction

# %%
q1.check(answer)
# q1.hint()
# q1.solution()

# %% [markdown]
# **Exercise 2 · 16-bit to 8-bit with a 2-98 percentile stretch.** `raw` holds band 1 of the
# `atlanta_buildings` GeoTIFF as stored: **uint16**, with values far above 255. Write `stretch(band)` turning
# such a band (any 2-D array of integers or floats) into **uint8** the way `read_image` does: the 2nd
# percentile of the band maps to 0 and the 98th to 255, linearly; what falls outside is clipped; the result is
# rounded. A flat band (both percentiles equal) maps to 0. Write the stretch with NumPy, **without** the
# package's `stretch_to_uint8` (the check refuses it). Then set `answer = stretch`: the check calls your
# function on bands of its own, with outliers, a float band and a flat one.

# %%
import numpy as np
import rasterio

from rs_helpers.samples import get_sample

with rasterio.open(get_sample("atlanta_buildings").image) as src:
    raw = src.read(1)
print(raw.dtype, raw.shape, "min", raw.min(), "max", raw.max())

# %% tags=["solution"]
# stretch(band) -> uint8 band; then answer = stretch
def stretch(band):
    low, high = np.percentile(band, [2, 98])
    if high <= low:  # a flat band: no division by zero
        high = low + 1
    scaled = (band.astype(np.float64) - low) / (high - low)
    return np.round(np.clip(scaled, 0, 1) * 255).astype(np.uint8)

small = stretch(raw)
print(small.dtype, "min", small.min(), "max", small.max())
answer = stretch

# %%
q2.check(answer)
# q2.hint()
# q2.solution()

# %% [markdown]
# ## Summary
# * `rs-seg doctor` checks the installation; weights download once into a cache.
# * The tiny profile runs everything without weights, and its output is meaningless.
# * `read_image` gives 8-bit RGB plus georeferencing for any raster; samples carry class names and palettes.
#
# ## What's next
# **01 · SAM grid proposals**: how SAM turns a grid of point prompts into candidate masks.
