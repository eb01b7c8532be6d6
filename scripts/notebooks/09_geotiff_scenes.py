# %% [markdown]
# # 09 · Large GeoTIFF scenes: tiles, seamless stitching, maps and polygons
# {{BADGE}}
#
# **Objectives.** After this notebook you can
# 1. read a GeoTIFF's georeferencing (CRS, affine transform, bands, data type) and turn 16-bit
#    bands into the 8-bit RGB that SAM and CLIP expect, with one stretch for the whole scene;
# 2. cut a scene of any size into overlapping tiles and explain which tile decides each pixel;
# 3. map buildings (SpaceNet Atlanta) and land cover (Chesapeake) into GeoTIFFs that keep the
#    input's CRS, transform and size;
# 4. see a stitching seam appear without overlap and disappear with it;
# 5. export the map as GeoJSON polygons (simplified, slivers dropped, holes kept) and draw them
#    over the image in map coordinates.
#
# **Prerequisites.** Notebooks 00 (data, profiles) and 03 (CLIP as a mask selector); 01 and 02 help.
#
# **Time.** About 15 minutes to read; a few minutes of compute with real models on a GPU
# (under a minute on the CPU with the tiny profile).
#
# {{COMPUTE}}

# %%
# {{SETUP}}

# %% [markdown]
# ## Settings
# Every cost knob sits here. `tile` and `overlap` are in pixels; `simplify` is a tolerance in
# metres and `min_area` an area in square metres (the units of both sample CRSs). The tile sizes
# and overlaps are chosen so that the tiles fall on a regular grid (section 2): Atlanta is
# 900 px = 512 + 388 with a step of 512 - 124 = 388 (2 x 2 tiles), Chesapeake 260 px = 192 + 68
# with a step of 192 - 124 = 68, and the no-overlap comparison of section 5 uses 450 px tiles
# that just touch.
# Under the tiny profile the SAM grid is coarse and the models are random: the maps are
# **meaningless**, only the mechanics (tiles, georeferencing, polygons) are real.

# %%
from rs_helpers.teaching import pick

S = pick(
    full=dict(sam="vit_l", clip="ViT-B-16", points_per_side=29, points_per_batch=64,
              atlanta_tile=512, atlanta_overlap=124, atlanta_plain_tile=450, chesapeake_tile=192,
              chesapeake_overlap=124,
              seam_with_models=True, simplify=1.0, min_area=20.0, figure_size=5),
    # classroom: real weights, laptop-sized settings (SAM ViT-B, 16 x 16 grid, 512 px)
    classroom=dict(sam="vit_b", points_per_side=16),
    tiny=dict(points_per_side=4, points_per_batch=16, seam_with_models=False, figure_size=4),
)
S

# %% [markdown]
# ## 1. What a GeoTIFF carries
# A GeoTIFF is an image plus the facts that pin it to the Earth: a **CRS** (coordinate reference
# system; here UTM zone 16N, EPSG:32616, in metres) and an **affine transform** that maps pixel
# (column, row) to map (x, y). For a north-up image it holds the pixel size and the map
# coordinates of the top-left corner. `describe` reads these from the header without decoding
# the pixels.

# %%
from rs_helpers.geo import describe
from rs_helpers.samples import get_sample

atlanta = get_sample("atlanta_buildings")
chesapeake = get_sample("chesapeake_tile")
for sample in (atlanta, chesapeake):
    facts = describe(sample.image)
    print(f"{sample.name}: {facts['width']} x {facts['height']} px, {facts['bands']} band(s) of {facts['dtype']}, "
          f"{facts['crs']}, colours {facts['colorinterp']}, nodata {facts['nodata']}")
    print("   transform (a, b, c, d, e, f):", facts["transform"])

# %% [markdown]
# Read the transform as `x = a * col + b * row + c`, `y = d * col + e * row + f`. For Atlanta,
# `a = 0.5` and `e = -0.5`: 0.5 m pixels, with y (northing) decreasing downwards. The Chesapeake
# tile has about 24 x 29 m pixels (a whole NAIP quarter-quad shrunk to 260 px) and four bands:
# red, green, blue and near-infrared.
#
# *Try it:* where on the map is pixel (col 450, row 450) of Atlanta?

# %%
import rasterio

with rasterio.open(atlanta.image) as src:
    t = src.transform
    print("pixel (450, 450) -> map", (t.a * 450 + t.b * 450 + t.c, t.d * 450 + t.e * 450 + t.f))
    print("scene bounds (m):", src.bounds)

# %% [markdown]
# ### 16-bit bands and the stretch
# The Atlanta image is panchromatic `uint16` with values around a few hundred to a few thousand.
# Dividing by 256 would leave it almost black. We map the 2nd..98th percentile range onto
# 0..255 instead. For a scene read in tiles, the percentiles must be computed **once for the
# whole scene** (`SceneReader` does it from a decimated read, `out_shape`), then applied to every
# tile: with a stretch per tile, each tile gets its own contrast and the mosaic shows edges
# before any model has run. Below, the scene is cut into 150 px tiles (6 x 6) and each is
# stretched on its own (c): brightness jumps at the tile borders (the ticks), and the titles
# measure it as the mean step between neighbouring pixels across the borders against elsewhere.
# Panel (d) shows how far each tile's own stretch is from the scene's: a different error in every
# tile, changing abruptly at its borders.

# %%
import matplotlib.pyplot as plt
import numpy as np

from rs_helpers.teaching import show_box, show_image
from rs_helpers.teaching.scene_figures import plot_stretch_comparison
from rs_helpers.geo import SceneReader, tile_grid

with SceneReader(atlanta.image) as reader:
    print("bands used:", reader.bands, "| scene stretch (low, high):", reader.stretch.low, reader.stretch.high)
    scene_rgb = reader.overview(max_side=reader.width)  # 900 px: small enough to hold whole
    raw = reader.src.read(1)

fs = S["figure_size"]
plot_stretch_comparison(raw, scene_rgb, tile=150, size=fs);

# %% [markdown]
# Bands are chosen by number (1-based). The Chesapeake tile has four; `bands=(1, 2, 3)` gives
# true colour, `bands=(4, 1, 2)` a false-colour composite where vegetation glows red.
# With more than three bands and no choice, the first three are used with a warning.

# %%
fig, axes = plt.subplots(1, 2, figsize=(2 * fs, fs))
for ax, bands, title in zip(axes, [(1, 2, 3), (4, 1, 2)], ["true colour (1, 2, 3)", "false colour (4, 1, 2)"]):
    with SceneReader(chesapeake.image, bands=bands) as reader:
        show_image(reader.overview(), ax, title=title)
fig.tight_layout()

# %% [markdown]
# ## 2. Tiling a scene
# SAM and CLIP see one tile at a time, so memory depends on the tile, not the scene: a 20,000 px
# satellite scene goes through the same 1024 px window as a small chip. Tiles are
# `tile` x `tile` pixels and neighbours share `overlap` pixels, so along each axis a tile starts
# every `tile - overlap` pixels. Where that step does not fit the scene, the last row and column
# are shifted back inside it so every tile is full size, and they then share more with their
# neighbours. With `tile=512` and `overlap=128` Atlanta's starts would be 0, 384 and **388**: nine
# tiles, the third row and column only 4 px from the second, paid for in full for 4 new pixels.
# The settings here avoid that: 900 - 512 = 388 is exactly one step of 512 - 124, so the tiles sit
# on a regular 2 x 2 grid and every pair of neighbours shares exactly 124 px.
#
# **Who decides a pixel?** The tile whose centre is nearest. Near its border a tile sees objects
# cut in half (SAM) and little context (CLIP), so its labels there are the least reliable; the
# tile whose centre is nearest sees at least `overlap / 2` pixels of context around the pixel.
# These "cores" (solid boxes below) are rectangles that partition the scene: each tile writes
# its core straight into the output file, and nothing is blended or kept for later.
#
# *Try it:* in the next cell set `overlap_px = 256` (starts 0, 256, 388: the last tile shifted
# back) or `0` (starts 0, 388: the shift makes them overlap anyway), then `tile_px = 450` with
# overlap 0 (two tiles that just touch), and watch the starts and the cores. The later sections
# use the settings cell's values whatever you set here.

# %%
tile_px, overlap_px = S["atlanta_tile"], S["atlanta_overlap"]
tiles = tile_grid(scene_rgb.shape[0], scene_rgb.shape[1], tile_px, overlap_px)
starts = sorted({tile.col_off for tile in tiles})  # the same along rows: the scene is square
step = tile_px - overlap_px
regular = all(b - a == step for a, b in zip(starts, starts[1:]))
print(f"tile starts along each axis: {starts}, step tile - overlap = {step}: "
      + ("a regular grid" if regular else "the last tile is shifted back, so it shares more with its neighbour"))
fig, ax = plt.subplots(figsize=(fs + 1, fs + 1))
show_image(scene_rgb, ax, title=f"{len(tiles)} tiles of {tile_px} px, overlap {overlap_px}")
colours = ["tab:red", "tab:orange", "tab:green", "tab:blue", "tab:purple", "tab:cyan", "tab:olive", "tab:pink"]
middle = tiles[len(tiles) // 2]
for k, tile in enumerate(tiles):
    r0, c0, r1, c1 = tile.core
    ax.add_patch(plt.Rectangle((c0, r0), c1 - c0, r1 - r0, color=colours[k % len(colours)], alpha=0.3))
    print(f"tile {tile.index}: window rows {tile.row_off}..{tile.row_off + tile.height}, "
          f"cols {tile.col_off}..{tile.col_off + tile.width}; core {tile.core}")
show_box((middle.col_off, middle.row_off, middle.col_off + middle.width, middle.row_off + middle.height), ax,
         color="yellow")
print(f"yellow frame: tile {middle.index}; shaded: the cores (each pixel belongs to exactly one)")

# %% [markdown]
# ## 3. Buildings in Atlanta
# `segment_scene` runs the pipeline of notebooks 01-03 on every tile, with one text cache so the
# class embeddings are computed once for the scene, a progress bar over the tiles, and writes a
# GeoTIFF with the input's CRS, transform and size, a colour table and the class names in its
# tags. Binary mode writes 0/1.

# %%
atlanta_tiles = len(tile_grid(scene_rgb.shape[0], scene_rgb.shape[1], S["atlanta_tile"], S["atlanta_overlap"]))
print(f"Atlanta: {atlanta_tiles} tiles, each through SAM ({S['points_per_side']} x {S['points_per_side']} grid) "
      "and CLIP. The progress bar shows the time left; the time per tile measured on this scene "
      "gives the estimates printed before the next model runs.")

# %%
import tempfile
from pathlib import Path

from rs_helpers.models import load_clip
from rs_helpers.models import load_sam
from rs_helpers.ovss import OvssSettings
from rs_helpers.profile import is_tiny
from rs_helpers.sam import ProposalSettings
from rs_helpers.geo import segment_scene

work = Path(tempfile.mkdtemp())
sam = load_sam(S["sam"])
clip = load_clip(S["clip"])
settings = OvssSettings(proposals=ProposalSettings(points_per_side=S["points_per_side"],
                                                   points_per_batch=S["points_per_batch"]))
buildings = segment_scene(atlanta.image, "building,roof,house", sam=sam, clip=clip, binary=True,
                          out=work / "atlanta_buildings.tif", tile=S["atlanta_tile"],
                          overlap=S["atlanta_overlap"], settings=settings)
print(f"{buildings.tiles} tiles, {buildings.timings['total']:.1f} s; shares:", buildings.shares)
with rasterio.open(buildings.path) as out, rasterio.open(atlanta.image) as src:
    print("same CRS:", out.crs == src.crs, "| same transform:", out.transform == src.transform,
          "| same size:", out.shape == src.shape)
    print("tags:", {k: v for k, v in out.tags().items() if k in ("class_names", "stitching", "tile", "overlap")})
    building_map = out.read(1)
if is_tiny():
    print("TINY PROFILE: random models, this building map is MEANINGLESS.")

# %%
from rs_helpers.evaluation import foreground_iou
from rs_helpers.teaching import show_mask

truth = atlanta.load_labels()
fig, axes = plt.subplots(1, 2, figsize=(2 * fs, fs))
show_image(scene_rgb, axes[0], title="SpaceNet buildings (ground truth)")
show_mask(truth == 1, axes[0], color=(0, 200, 0))
show_image(scene_rgb, axes[1], title=f"ours (IoU {foreground_iou(building_map, truth):.2f})")
show_mask(building_map == 1, axes[1])
fig.tight_layout()

# %% [markdown]
# ## 4. Land cover on the Chesapeake tile
# The same call with a vocabulary and the land-cover palette. `bands=(1, 2, 3)` picks true colour
# (without it the four-band image would be read as its first three bands, with a warning).

# %%
from rs_helpers.sam import estimate_remaining

facts = describe(chesapeake.image)
chesapeake_tiles = len(tile_grid(facts["height"], facts["width"], S["chesapeake_tile"], S["chesapeake_overlap"]))
# SAM and CLIP resize every tile to their own input size, so a tile costs about the same on both scenes
print(f"Chesapeake: {chesapeake_tiles} tiles; at Atlanta's rate, "
      + estimate_remaining(buildings.timings["total"], buildings.tiles, buildings.tiles + chesapeake_tiles, "tile"))

# %% tags=["gallery"]
from rs_helpers.evaluation import mean_iou
from rs_helpers.teaching import show_panels

cover = segment_scene(chesapeake.image, chesapeake.vocabulary, sam=sam, clip=clip, bands=(1, 2, 3),
                      palette=chesapeake.palette, out=work / "chesapeake_cover.tif", tile=S["chesapeake_tile"],
                      overlap=S["chesapeake_overlap"], settings=settings)
with rasterio.open(cover.path) as out:
    cover_map = out.read(1)
cover_truth = chesapeake.load_labels()
with SceneReader(chesapeake.image, bands=(1, 2, 3)) as reader:
    ches_rgb = reader.overview()
miou = mean_iou(cover_map, cover_truth, len(chesapeake.class_names))
show_panels(ches_rgb, cover_truth, cover_map, chesapeake.palette, chesapeake.class_names, size=fs,
            titles=("NAIP (true colour)", "Chesapeake land cover", f"ours (mIoU {miou:.2f})"));
if is_tiny():
    print("TINY PROFILE: random models, this land-cover map is MEANINGLESS.")

# %% [markdown]
# ## 5. Seams: stitching with and without overlap
# To see a seam without waiting for models, we use a stand-in segmenter that is deterministic and
# *border-blind*: it marks bright pixels, but loses everything within 24 px of its tile's edge,
# the way a real segmenter fails on objects cut by the border. Without overlap, every tile
# border becomes a gap and the roofs it crosses are cut in pieces. With overlap, each border
# pixel is decided by a tile that sees it well inside: the gaps are gone.
#
# *Try it:* raise the margin above `overlap / 2` and the seams come back.

# %%
from rs_helpers.geo import ThresholdSegmenter
from rs_helpers.geo.vectorize import vectorize  # the function, not its module

toy = ThresholdSegmenter(threshold=float(np.percentile(scene_rgb[..., 0], 90)), margin=24,
                         class_names=["background", "bright"])
untiled = ThresholdSegmenter(threshold=toy.threshold)(scene_rgb)  # the same rule without a blind margin
fig, axes = plt.subplots(1, 2, figsize=(2 * fs, fs))
for ax, overlap in zip(axes, [0, 100]):  # 300 px tiles: starts 0, 300, 600 and 0, 200, 400, 600
    run = segment_scene(atlanta.image, out=work / f"toy_{overlap}.tif", tile=300, overlap=overlap,
                        segmenter=toy, progress=False)
    with rasterio.open(run.path) as out:
        toy_map = out.read(1)
    lost = (untiled == 1) & (toy_map == 0)
    show_image(scene_rgb, ax, title=f"overlap {overlap}: {lost.sum() / untiled.sum():.0%} of bright pixels lost")
    show_mask(toy_map == 1, ax, color=(255, 160, 0), contour=False)
    show_mask(lost, ax, color=(255, 0, 0), alpha=0.9, contour=False)
fig.tight_layout()
print("orange: kept; red: lost along the tile borders (away from the scene's own edges only with overlap 0)")

# %% [markdown]
# With real models the effect is subtler: masks cut at the border, a CLIP label that changes
# with context. The next cell (on with the full profile) compares the building maps stitched
# with and without overlap and shows where they disagree. The run without overlap uses 450 px
# tiles, which just touch (starts 0 and 450): 512 px tiles with overlap 0 would start at 0 and
# 388, overlapping anyway. Both runs have the same cores (the boundary between neighbours is at
# 450 px in both), so the only difference is the context each tile sees around its core.

# %%
if S["seam_with_models"]:
    plain_tiles = len(tile_grid(scene_rgb.shape[0], scene_rgb.shape[1], S["atlanta_plain_tile"], 0))
    print(f"the next cell runs {plain_tiles} tiles without overlap; at Atlanta's rate, "
          + estimate_remaining(buildings.timings["total"], buildings.tiles, buildings.tiles + plain_tiles, "tile"))

# %%
if S["seam_with_models"]:
    no_overlap = segment_scene(atlanta.image, "building,roof,house", sam=sam, clip=clip, binary=True,
                               out=work / "atlanta_no_overlap.tif", tile=S["atlanta_plain_tile"], overlap=0,
                               settings=settings)
    with rasterio.open(no_overlap.path) as out:
        plain_map = out.read(1)
    fig, axes = plt.subplots(1, 2, figsize=(2 * fs, fs))
    titles = [f"{S['atlanta_plain_tile']} px tiles, overlap 0", f"{S['atlanta_tile']} px tiles, overlap {S['atlanta_overlap']}"]
    for ax, labels, title in zip(axes, [plain_map, building_map], titles):
        show_image(scene_rgb, ax, title=f"{title} (IoU {foreground_iou(labels, truth):.2f})")
        show_mask(labels == 1, ax)
    print(f"{(plain_map != building_map).mean():.1%} of the pixels differ")
else:
    print("skipped under the tiny profile (set seam_with_models=True to run it)")

# %% [markdown]
# ## 6. Polygons: GeoJSON in map coordinates
# `vectorize` traces every connected region of the map with GDAL's polygonizer (streaming the
# band from the file), keeps holes as inner rings, drops slivers below `min_area` (m²) and
# simplifies outlines within `simplify` metres (Douglas-Peucker; topology-preserving when
# shapely is installed). Each feature carries its class name and area. Coordinates stay in the
# scene's CRS, or go to longitude/latitude (EPSG:4326) with `to_wgs84=True`.

# %%
import json

from rs_helpers.geo import export_geojson, feature_bounds, image_extent, plot_features, write_geojson

polygons = vectorize(buildings.path, simplify=S["simplify"], min_area=S["min_area"])
write_geojson(polygons, work / "atlanta_buildings.geojson")
print(len(polygons["features"]), "building polygons in", polygons["crs"]["properties"]["name"])
if polygons["features"]:
    print("first feature's properties:", polygons["features"][0]["properties"])
n = export_geojson(buildings.path, work / "atlanta_buildings_wgs84.geojson", simplify=S["simplify"],
                   min_area=S["min_area"], to_wgs84=True)
if n:
    wgs = json.loads((work / "atlanta_buildings_wgs84.geojson").read_text())
    print("EPSG:4326 bounds (lon, lat):", feature_bounds(wgs))

# %% [markdown]
# To draw polygons over the image, give the image its map extent (`image_extent`) so both share
# the same axes in metres. The SpaceNet reference polygons (also in EPSG:32616) go on top in green.

# %%
reference = json.loads(Path(atlanta.extra["geojson"]).read_text())
with rasterio.open(atlanta.image) as src:
    extent = image_extent(src.transform, src.height, src.width)
fig, ax = plt.subplots(figsize=(fs + 2, fs + 2))
ax.imshow(scene_rgb, extent=extent)
plot_features(polygons, ax, facecolor=(0.1, 0.5, 1.0), edgecolor="white")
plot_features(reference, ax, edgecolor="lime", linewidth=1.5)
ax.ticklabel_format(style="plain", useOffset=False)
ax.tick_params(axis="x", labelrotation=45)
ax.set_xlabel("easting (m, UTM 16N)")
ax.set_ylabel("northing (m)")
ax.set_title("ours (blue) and SpaceNet (green outlines)")
if is_tiny():
    print("TINY PROFILE: these polygons come from a MEANINGLESS map.")

# %% [markdown]
# ## 7. The same from the command line
# `rs-seg ovss` switches to tiles when the image is larger than one tile or `--tile` is given:
#
# ```
# rs-seg ovss scene.tif --classes "building,roof;road;tree;water" --out map.tif \
#        --geojson map.geojson --tile 1024 --overlap 128 --bands 1,2,3 --simplify 1 --min-area 20
# rs-seg ovss scene.tif --classes building --binary --out buildings.tif --geojson buildings.geojson --to-wgs84
# ```
# The output GeoTIFF opens in QGIS with the class colours; the GeoJSON carries a `class` per
# feature. An image without georeferencing (a PNG) still works: polygons come out in pixel
# coordinates, with a warning.

# %% [markdown]
# ## Exercises
# Each exercise has a task, a cell for your answer (tagged `solution`: in the student copy it is a stub that
# raises `NotImplementedError` until you replace it) and a check. Most ask for a function: the check runs it
# on inputs you have not seen, so it must work in general, not only on the example. `q1.hint()` gives a nudge,
# a second call a closer hint; `q1.solution()` shows our solution.

# %%
from rs_helpers.teaching.exercises.nb09 import q1, q2

# %% [markdown]
# **Exercise 1 · Tile windows of a scene.** Cut a scene `height` pixels high and `width` wide into `tile` x
# `tile` tiles that share `overlap` pixels with their neighbours: along each axis a tile starts every `tile -
# overlap` pixels from 0, and the last tile is **shifted back** so that it ends exactly at the scene's edge
# (no tile sticks out, none is smaller); along an axis no longer than a tile there is one tile, at 0. Write
# `tile_offsets(height, width, tile, overlap)` returning every tile's window offset as `(row_off, col_off)`
# (row = y, col = x), without `tile_grid` or `tile_starts`. Any order is accepted. The check calls it on
# scenes of its own.

# %%
height, width, tile, overlap = 700, 1000, 256, 32

# %% tags=["solution"]
def tile_offsets(height, width, tile, overlap):
    """(row_off, col_off) of every tile of a height x width scene."""
    def starts(length):
        if length <= tile:
            return [0]
        out = list(range(0, length - tile + 1, tile - overlap))
        if out[-1] + tile < length:
            out.append(length - tile)  # the last tile, shifted back inside the scene
        return out

    return [(r, c) for r in starts(height) for c in starts(width)]

offsets = tile_offsets(height, width, tile, overlap)
print(len(offsets), "tiles:", offsets)
answer = tile_offsets

# %%
q1.check(answer)
# q1.hint()
# q1.solution()

# %% [markdown]
# **Exercise 2 · How many tiles?** With the same rule as exercise 1, write `tile_count(height, width, tile,
# overlap)` returning how many tiles a scene needs, by arithmetic (`math.ceil`), without listing the tiles and
# without `tile_grid` or `tile_starts`. A Sentinel-2 granule at 10 m, for example, is 10980 x 10980 pixels;
# with 1024 x 1024 tiles and 128 pixels of overlap it takes 169 tiles. The check calls your function on scenes
# of its own.

# %%
import math

height, width, tile, overlap = 10980, 10980, 1024, 128

# %% tags=["solution"]
def tile_count(height, width, tile, overlap):
    """The number of tiles of a height x width scene."""
    def per_axis(length):
        return 1 if length <= tile else math.ceil((length - tile) / (tile - overlap)) + 1

    return per_axis(height) * per_axis(width)

print(tile_count(height, width, tile, overlap), "tiles")
answer = tile_count

# %%
q2.check(answer)
# q2.hint()
# q2.solution()

# %% [markdown]
# ### More to explore
# 1. Tile Atlanta with `tile=300` and `overlap` 0, 100 and 150 (all three give regular grids:
#    900 - 300 = 600 is a multiple of 300, 200 and 150). How many tiles, and how does the
#    building IoU change (full profile)?
# 2. Export the land-cover map as GeoJSON with `min_area=0` and with `min_area=5000`. How many
#    polygons does each class lose?
# 3. Run the border-blind segmenter with `margin=80` and `overlap=100`. Why do the seams come back?

# %% [markdown]
# ## Summary
# * A GeoTIFF's CRS and affine transform travel from the input to the label raster and the polygons.
# * 16-bit data is stretched once per scene, from a decimated read, so tiles match.
# * Overlapping tiles + "nearest tile centre decides" leave no seam and write each pixel once;
#   memory is set by the tile size, not the scene.
# * Polygons: GDAL traces regions, slivers go, outlines are simplified in metres, holes stay.
#
# ## What's next
# **10 · SAM 3: one model for where and what**: SAM 3 beside SAM + CLIP and CLIP alone, on the same
# samples. Each tile here already uses the fast grid proposals and one dense CLIP pass of notebooks
# 01-03 (their speed is compared in 01's appendix and by `rs-seg bench --pipeline`); the masks of the
# referring branch (notebooks 05-08) can be exported the same way.
