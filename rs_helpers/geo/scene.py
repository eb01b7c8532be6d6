"""Segment a whole scene (a GeoTIFF of any size) tile by tile into a georeferenced label raster.

``segment_scene("scene.tif", "building;road;water", sam=sam, clip=clip, out="map.tif")`` reads
overlapping tiles through windows (:mod:`rs_helpers.geo.tiling`), segments each with
:func:`rs_helpers.ovss.pipeline.segment` (text embeddings computed once, shared by all tiles), and writes
each tile's result straight into the output GeoTIFF, opened in write mode with the input's CRS,
transform and size, a colour table and the class names in its tags. The whole scene is never in
memory: the peak depends on the tile size (and GDAL's block cache, capped here), not the scene.

**Stitching: each pixel is decided by the tile whose centre is nearest.** Near a tile's border
SAM sees objects cut in half and CLIP's windows see little context, so labels there are the least
trustworthy; the tile whose centre is nearest sees the most context around a pixel (at least
``overlap / 2`` pixels on every side inside the scene). The cores of this rule are rectangles that
partition the scene (:func:`rs_helpers.geo.tiling.tile_grid`), so each tile writes one window, no
pixel is written twice and nothing needs to be kept for later. Blending class scores would need a
K-band float accumulator for the whole scene (or its rows) and scores that the mask-vote selection
does not produce; winner-takes-all on the nearest centre needs neither. With ``overlap=0`` the
cores are the tiles themselves: objects cut by a border come out split (a seam) when the
segmenter is unsure near borders; with overlap, the border region is decided by the neighbour
that sees the object whole.

A *segmenter* is any callable ``fn(rgb_tile) -> labels`` (uint8 H x W x 3 -> H x W class
indices), optionally with ``class_names`` and ``palette`` attributes. :class:`OvssTiles` is the
SAM + CLIP one; :class:`ThresholdSegmenter` is a deterministic toy for tests and for showing seams.
"""
from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from rs_helpers.errors import BadInputError
from rs_helpers.ovss.pipeline import (
    BINARY_PALETTE,
    OvssSettings,
    default_palette,
    peak_memory,
    resolve_binary,
)
from rs_helpers.geo.tiling import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    OVERVIEW_SIDE,
    SceneReader,
    needs_tiling,
    tile_grid,
)  # noqa: F401
from rs_helpers.ovss.vocabulary import TextCache, parse_classes

IGNORE = 255
GDAL_CACHE_MB = 64  # GDAL block cache during a scene run (its default, 5% of RAM, is not bounded)

Segmenter = Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------- segmenters
class OvssTiles:
    """SAM proposals + CLIP selection per tile, with one text cache for the whole scene.

    ``class_names`` and ``palette`` are known before the first tile (the same rules as
    :func:`rs_helpers.ovss.pipeline.segment`); ``timings`` sums each stage over the tiles.
    ``upsampler``: the dense map's upsampler (SimFeatUp), None for the plain one."""

    def __init__(self, classes, *, sam, clip, binary: bool = False, target: str | None = None,
                 settings: OvssSettings = OvssSettings(), generator="fast",
                 text_cache: TextCache | None = None, palette=None, upsampler=None):
        vocab = parse_classes(classes)
        if binary:
            vocab, index = resolve_binary(vocab, target, settings.dense.background_names)
            self.class_names = ["background", vocab.names[index]]
            self.palette = [tuple(c) for c in (palette or BINARY_PALETTE)]
        else:
            if len(vocab) < 2:
                raise BadInputError(f"only one class ({vocab.names[0]}): list several classes separated "
                                    "by ';' or use binary mode (--binary)")
            self.class_names = vocab.names
            self.palette = [tuple(int(v) for v in c[:3]) for c in palette] if palette else default_palette(len(vocab))
        self.vocabulary, self.binary, self.target = vocab, binary, target
        self.sam, self.clip, self.settings, self.generator = sam, clip, settings, generator
        self.upsampler = upsampler
        self.text_cache = text_cache if text_cache is not None else TextCache()
        self.timings: dict[str, float] = {}
        self.proposals = 0

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        from rs_helpers.ovss.pipeline import segment

        result = segment(rgb, self.vocabulary, sam=self.sam, clip=self.clip, binary=self.binary,
                         target=self.target, settings=self.settings, generator=self.generator,
                         text_cache=self.text_cache, palette=self.palette, upsampler=self.upsampler)
        for key, value in result.timings.items():
            self.timings[key] = self.timings.get(key, 0.0) + value
        self.proposals += len(result.proposals) if result.proposals is not None else 0
        return result.labels


@dataclass
class ThresholdSegmenter:
    """A deterministic stand-in for SAM + CLIP: class 1 where the mean of the RGB channels exceeds
    ``threshold``. ``margin`` > 0 makes it *border-blind*: pixels within ``margin`` of the tile's
    edge become class 0, the way a real segmenter loses objects cut by the tile border. It shows
    (and tests) what overlap and nearest-centre stitching fix."""

    threshold: float = 127.0
    margin: int = 0
    class_names: list[str] = field(default_factory=lambda: ["background", "bright"])
    palette: list[tuple[int, int, int]] = field(default_factory=lambda: list(BINARY_PALETTE))

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        labels = (rgb.astype(np.float32).mean(axis=2) > self.threshold).astype(np.uint8)
        if self.margin > 0:
            m = self.margin
            labels[:m], labels[-m:], labels[:, :m], labels[:, -m:] = 0, 0, 0, 0
        return labels


# --------------------------------------------------------------------------- the scene
@dataclass
class SceneResult:
    """What :func:`segment_scene` wrote. ``shares``: fraction of scene pixels per class
    (``"(ignore)"`` for nodata); ``timings``: seconds (read, segment, write, total, and the
    pipeline's stages summed over tiles); ``memory``: peak resident memory (MiB)."""

    path: Path
    class_names: list[str]
    palette: list[tuple[int, int, int]]
    shares: dict[str, float]
    height: int
    width: int
    crs: Any
    transform: Any
    tiles: int
    skipped: int
    tile: int
    overlap: int
    binary: bool
    timings: dict[str, float]
    memory: dict[str, float]
    proposals: int = 0

    def legend(self) -> list[dict]:
        return [{"index": i, "name": n, "color": list(c), "share": self.shares.get(n, 0.0)}
                for i, (n, c) in enumerate(zip(self.class_names, self.palette))]


def _out_profile(reader: SceneReader) -> dict:
    profile = dict(driver="GTiff", height=reader.height, width=reader.width, count=1, dtype="uint8",
                   compress="deflate", BIGTIFF="IF_SAFER")
    if reader.height >= 256 and reader.width >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if reader.crs is not None:
        profile.update(crs=reader.crs, transform=reader.transform)
    return profile


def segment_scene(path: str | Path, classes=None, *, out: str | Path, sam=None, clip=None,
                  tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, bands: Sequence[int] | None = None,
                  binary: bool = False, target: str | None = None, settings: OvssSettings = OvssSettings(),
                  generator="fast", segmenter: Segmenter | None = None, palette=None,
                  text_cache: TextCache | None = None, tags: dict | None = None, progress: bool = True,
                  overview_side: int = OVERVIEW_SIDE, gdal_cache_mb: int = GDAL_CACHE_MB,
                  procs=None) -> SceneResult | None:
    """Segment the raster at ``path`` tile by tile and write the label GeoTIFF ``out``.

    ``classes``, ``sam``, ``clip``, ``binary``, ``target``, ``settings``, ``generator``,
    ``palette``: as for :func:`rs_helpers.ovss.pipeline.segment`. ``segmenter``: any ``fn(rgb) -> labels``
    instead of SAM + CLIP (then ``classes`` may be omitted when it has ``class_names``).
    ``tile``/``overlap``: tile side and shared border in pixels; ``bands``: 1-based band numbers.
    Nodata pixels of the input become 255 (ignore; 0 in binary maps); tiles that are all nodata
    are skipped. ``out`` ending in ``.png`` is written as a GeoTIFF first, then copied (no CRS).
    ``procs`` (:func:`rs_helpers.distributed.processes`): the tiles are split between the processes
    and rank 0 writes ``out`` and returns the result; the other ranks return None.
    """
    t_start = time.perf_counter()
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".tif", ".tiff", ".png"):
        raise BadInputError(f"--out {out}: write .tif/.tiff (or .png)")
    if segmenter is None:
        if sam is None or clip is None:
            raise BadInputError("segment_scene needs sam= and clip= models, or a segmenter=")
        segmenter = OvssTiles(classes, sam=sam, clip=clip, binary=binary, target=target, settings=settings,
                              generator=generator, text_cache=text_cache, palette=palette)
    names = list(getattr(segmenter, "class_names", None) or parse_classes(classes).names)
    colours = [tuple(int(v) for v in c[:3]) for c in (palette or getattr(segmenter, "palette", None)
                                                      or default_palette(len(names)))]
    fill = 0 if binary else IGNORE
    from rs_helpers.files import atomic_path, temp_name

    # Written under a unique temporary name and renamed when complete: an interrupted run
    # (Ctrl-C, SIGTERM, SIGHUP) leaves an earlier map of the same name untouched, and nothing else.
    shared = procs is not None and procs.distributed
    if shared and not procs.main:  # this rank's tiles go into a part; rank 0 writes out
        _run_shared(path, segmenter, out, tile, overlap, bands, overview_side, gdal_cache_mb, progress, fill,
                    names, colours, binary, tags, procs)
        return None
    with atomic_path(out) as final_tmp:
        geotiff = final_tmp if suffix != ".png" else temp_name(out.with_suffix(".tif"))
        try:
            run = _run_shared if shared else _run_tiles
            result = run(path, segmenter, geotiff, tile, overlap, bands, overview_side, gdal_cache_mb,
                         progress, fill, names, colours, binary, tags, *([procs] if shared else []))
            if suffix == ".png":
                from rasterio.shutil import copy as rio_copy

                rio_copy(geotiff, final_tmp, driver="PNG")
        finally:
            if geotiff != final_tmp:
                geotiff.unlink(missing_ok=True)
                Path(str(final_tmp) + ".aux.xml").unlink(missing_ok=True)
    grid, counts, skipped, timings, (height, width, crs, transform) = result
    total = max(int(counts.sum()), 1)
    shares = {n: float(counts[i]) / total for i, n in enumerate(names)}
    if counts[IGNORE] and not binary:
        shares["(ignore)"] = float(counts[IGNORE]) / total
    timings.update({f"pipeline.{k}": v for k, v in getattr(segmenter, "timings", {}).items()})
    timings["total"] = time.perf_counter() - t_start
    return SceneResult(path=out, class_names=names, palette=colours, shares=shares, height=height, width=width,
                       crs=crs, transform=transform, tiles=len(grid), skipped=skipped, tile=tile, overlap=overlap,
                       binary=binary, timings=timings, memory=peak_memory(getattr(clip, "device", None)),
                       proposals=getattr(segmenter, "proposals", 0))


def _run_tiles(path, segmenter, target_path, tile, overlap, bands, overview_side, gdal_cache_mb, progress, fill,
               names, colours, binary, tags, share: Callable[[list], list] | None = None):
    """The tile loop of :func:`segment_scene`: read, segment, write each tile's core.

    ``share(grid)`` picks the tiles this process does (all by default); a part written for
    several processes (``share`` given) gets no colour table or tags, the merged file does."""
    import rasterio
    from tqdm.auto import tqdm

    counts = np.zeros(256, np.int64)
    timings = {"read": 0.0, "segment": 0.0, "write": 0.0}
    skipped = 0
    with rasterio.Env(GDAL_CACHEMAX=gdal_cache_mb * 2**20), SceneReader(path, bands, overview_side) as reader:
        grid = tile_grid(reader.height, reader.width, tile, overlap)
        mine = grid if share is None else share(grid)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            dst = rasterio.open(target_path, "w", **_out_profile(reader))
        with dst:
            for t in tqdm(mine, desc=f"tiles of {Path(path).name}", unit="tile", disable=not progress):
                start = time.perf_counter()
                raw = reader.read_raw(t)
                nodata = reader.nodata_mask(raw)
                timings["read"] += time.perf_counter() - start
                start = time.perf_counter()
                if nodata is not None and nodata.all():
                    labels = np.full((t.height, t.width), fill, np.uint8)
                    skipped += 1
                else:
                    labels = np.asarray(segmenter(reader.to_rgb(raw)))
                    if labels.shape != (t.height, t.width):
                        raise BadInputError(f"the segmenter returned {labels.shape} for a "
                                            f"{t.height} x {t.width} tile")
                    labels = labels.astype(np.uint8, copy=True)
                    if nodata is not None:
                        labels[nodata] = fill
                timings["segment"] += time.perf_counter() - start
                start = time.perf_counter()
                core = labels[t.core_in_tile]
                counts += np.bincount(core.ravel(), minlength=256)
                dst.write(core, 1, window=t.core_window)
                timings["write"] += time.perf_counter() - start
                del raw, labels, core
            if share is None:
                _finish(dst, path, names, colours, binary, tags, tile, overlap, reader.nodata)
        return grid, counts, skipped, timings, (reader.height, reader.width, reader.crs, reader.transform)


def _finish(dst, path, names, colours, binary, tags, tile, overlap, nodata) -> None:
    """The colour table, band description and tags of a finished label GeoTIFF."""
    dst.write_colormap(1, {i: c + (255,) for i, c in enumerate(colours)})
    dst.set_band_description(1, "class index")
    meta = {"class_names": json.dumps(names), "binary": str(bool(binary)).lower(),
            "tile": str(tile), "overlap": str(overlap), "stitching": "nearest tile centre",
            "source": Path(path).name}
    meta.update({f"class_{i}": n for i, n in enumerate(names)})
    meta.update({k: str(v) for k, v in (tags or {}).items()})
    dst.update_tags(**meta)
    if nodata is not None and not binary:
        dst.nodata = IGNORE


def _run_shared(path, segmenter, target_path, tile, overlap, bands, overview_side, gdal_cache_mb, progress,
                fill, names, colours, binary, tags, procs):
    """:func:`_run_tiles` split between processes: each writes its contiguous share of the tiles
    to a part file beside ``target_path``; rank 0 copies every part's cores into ``target_path``
    (window by window, never the whole scene in memory). Returns None on the other ranks."""
    import rasterio
    from rs_helpers.distributed import Processes
    from rs_helpers.files import temp_name

    part = temp_name(Path(target_path).with_suffix(".tif"))
    try:
        grid, counts, skipped, timings, geo = _run_tiles(
            path, segmenter, part, tile, overlap, bands, overview_side, gdal_cache_mb, progress and procs.main,
            fill, names, colours, binary, tags, share=procs.shard)
        parts = procs.gather((str(part), counts, skipped))
        if procs.main:
            with rasterio.open(part) as first:
                profile = first.profile
            with rasterio.open(target_path, "w", **profile) as dst:
                for rank, (name, _, _) in enumerate(parts):
                    with rasterio.open(name) as src:
                        for t in Processes(rank=rank, world=procs.world).shard(grid):
                            dst.write(src.read(1, window=t.core_window), 1, window=t.core_window)
                with SceneReader(path, bands, overview_side) as reader:
                    _finish(dst, path, names, colours, binary, tags, tile, overlap, reader.nodata)
        procs.barrier()  # every part is merged before any is removed
    finally:
        part.unlink(missing_ok=True)
        Path(str(part) + ".aux.xml").unlink(missing_ok=True)
    if not procs.main:
        return None
    counts = sum(c for _, c, _ in parts)
    return grid, counts, sum(k for _, _, k in parts), timings, geo


def read_class_names(path: str | Path) -> list[str] | None:
    """The class names stored by :func:`segment_scene` in a label raster's tags (None if absent)."""
    from rs_helpers.geo.rasters import _open

    with _open(path) as src:
        text = src.tags().get("class_names")
    return json.loads(text) if text else None
