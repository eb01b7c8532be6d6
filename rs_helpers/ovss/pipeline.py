"""Open-vocabulary semantic segmentation (the contrastive branch), end to end.

``segment(image, "building;road;water", sam=..., clip=...)`` runs:

1. proposals: SAM masks from a point grid, by a pluggable generator
   ``fn(sam, image_rgb, ProposalSettings) -> Proposals`` (``PROPOSAL_GENERATORS``), through an
   optional :class:`~rs_helpers.sam.proposals.ProposalCache`;
2. the dense CLIP map (:mod:`rs_helpers.ovss.clip_dense`, one forward pass; text cached);
3. selection: mask votes (:mod:`rs_helpers.ovss.selection`) or crop classification
   (:mod:`rs_helpers.ovss.crop_selector`, one batch).

Memory stays bounded on large images: stages run at a working resolution whose long side is at
most ``max_side`` (1024 by default, SAM's own input size), and only the final uint8 label map is
brought back to full size (nearest neighbour).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from rs_helpers.ovss.clip_dense import DenseMap, DenseSettings, dense_map
from rs_helpers.ovss.crop_selector import CropSettings, classify_crops
from rs_helpers.device import stage_timer
from rs_helpers.errors import BadInputError
from rs_helpers.sam.fast_proposals import generate_fast
from rs_helpers.sam.proposals import ProposalCache, ProposalSettings, Proposals, generate_reference
from rs_helpers.ovss.selection import (
    IGNORE,
    Selection,
    SelectionSettings,
    select_binary,
    select_from_scores,
    select_semantic,
)
from rs_helpers.ovss.vocabulary import Vocabulary, encode_vocabulary, parse_classes

Generator = Callable[..., Proposals]  # fn(sam, image_rgb, ProposalSettings) -> Proposals


def fast(sam, image_rgb: np.ndarray, settings: ProposalSettings) -> Proposals:
    """The fast generator (same masks as the reference, see fast_proposals), with its
    per-stage seconds and peak memory recorded on the result."""
    from rs_helpers.sam.timings import Timings

    timings = Timings(device=str(next(sam.parameters()).device))
    proposals = generate_fast(sam, image_rgb, settings, timings=timings)
    proposals.stages = {name: {"seconds": st.seconds, "peak_mib": st.peak_bytes / 2**20}
                        for name, st in timings.stages.items()}
    return proposals


PROPOSAL_GENERATORS: dict[str, Generator] = {"fast": fast, "reference": generate_reference}
DEFAULT_GENERATOR = "fast"
SELECTORS = ("dense", "crop")

BINARY_PALETTE = [(0, 0, 0), (255, 255, 255)]
_BASE_COLOURS = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
    (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120),
    (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148), (247, 182, 210), (199, 199, 199),
    (219, 219, 141), (158, 218, 229),
]


def register_generator(name: str, generator: Generator) -> None:
    """Make a proposal generator available by name (``segment(..., generator=name)``, ``--proposals``)."""
    PROPOSAL_GENERATORS[name] = generator


def default_palette(n: int) -> list[tuple[int, int, int]]:
    """``n`` distinct RGB colours (tab20, then darker variants)."""
    out = []
    for i in range(n):
        r, g, b = _BASE_COLOURS[i % len(_BASE_COLOURS)]
        k = 1.0 - 0.3 * (i // len(_BASE_COLOURS) % 3)
        out.append((int(r * k), int(g * k), int(b * k)))
    return out


@dataclass(frozen=True)
class OvssSettings:
    """All knobs of the pipeline. ``max_side``: long side of the working resolution (None or 0:
    the image's own; the paper works at native resolution, 1024 bounds memory)."""

    proposals: ProposalSettings = ProposalSettings()
    dense: DenseSettings = DenseSettings()
    selection: SelectionSettings = SelectionSettings()
    crop: CropSettings = CropSettings()
    selector: str = "dense"
    max_side: int | None = 1024


@dataclass
class OvssResult:
    """A label map and everything needed to show, save or explain it.

    ``labels`` are class indices at the input resolution (255 = ignore, only with the
    ``ignore`` fallback). ``class_names[i]`` and ``palette[i]`` describe label ``i``; in binary
    mode they are ``["background", target]``. ``proposals``, ``dense``, ``selection`` and
    ``work_labels`` are at the working resolution ``work_size`` (H, W). ``timings``: seconds per
    stage; ``memory``: peak resident memory of the process (MiB) and CUDA peak when used.
    """

    labels: np.ndarray
    class_names: list[str]
    palette: list[tuple[int, int, int]]
    shares: dict[str, float]
    timings: dict[str, float]
    memory: dict[str, float]
    vocabulary: Vocabulary
    binary: bool = False
    target: str | None = None
    selector: str = "dense"
    work_size: tuple[int, int] = (0, 0)
    work_labels: np.ndarray | None = None
    proposals: Proposals | None = None
    dense: DenseMap | None = None
    selection: Selection | None = None

    def legend(self) -> list[dict]:
        """One entry per label: index, name, synonyms (multi-class), RGB colour, pixel share."""
        out = []
        for i, (name, colour) in enumerate(zip(self.class_names, self.palette)):
            entry = {"index": i, "name": name, "color": list(colour), "share": self.shares.get(name, 0.0)}
            if not self.binary:
                entry["synonyms"] = list(self.vocabulary.synonyms[i])
            out.append(entry)
        return out


# --------------------------------------------------------------------------- helpers
def resize_rgb(image_rgb: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Antialiased resize of uint8 RGB to (H, W)."""
    from PIL import Image

    if tuple(image_rgb.shape[:2]) == tuple(size_hw):
        return image_rgb
    return np.array(Image.fromarray(image_rgb).resize((size_hw[1], size_hw[0]), Image.BILINEAR))


def work_size(height: int, width: int, max_side: int | None) -> tuple[int, int]:
    if not max_side or max(height, width) <= max_side:
        return height, width
    scale = max_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_labels(labels: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map, up or down (the same array when the size matches)."""
    h, w = labels.shape
    if (h, w) == tuple(size_hw):
        return labels
    rows = np.minimum(((np.arange(size_hw[0]) + 0.5) * h / size_hw[0]).astype(int), h - 1)
    cols = np.minimum(((np.arange(size_hw[1]) + 0.5) * w / size_hw[1]).astype(int), w - 1)
    return labels[rows][:, cols]


def _memory(clip, stage_peaks: dict) -> dict[str, float]:
    """Peak memory of the run. The fast generator's stage timer resets the process high-water mark
    at each stage, so the run's CPU peak is the larger of the final reading and the stage peaks."""
    memory = peak_memory(getattr(clip, "device", None))
    if "peak_rss_mib" in memory and stage_peaks and "peak_cuda_mib" not in memory:
        memory["peak_rss_mib"] = max(memory["peak_rss_mib"], *stage_peaks.values())
    return {**memory, **stage_peaks}


def class_shares(labels: np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    """Fraction of pixels per class (and ``"(ignore)"`` for 255 when present)."""
    counts = np.bincount(labels.ravel(), minlength=256).astype(np.float64) / max(labels.size, 1)
    shares = {name: float(counts[i]) for i, name in enumerate(class_names)}
    if counts[IGNORE] > 0:
        shares["(ignore)"] = float(counts[IGNORE])
    return shares


def peak_memory(device=None) -> dict[str, float]:
    """Peak resident memory of this process (MiB) and, on CUDA, peak allocated GPU memory."""
    out: dict[str, float] = {}
    try:  # Linux: this process image's high-water mark (ru_maxrss would include a forking parent's)
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    out["peak_rss_mib"] = int(line.split()[1]) / 1024
    except OSError:
        try:
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            out["peak_rss_mib"] = peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
        except ImportError:  # Windows
            pass
    import torch

    if torch.cuda.is_available() and (device is None or str(device).startswith("cuda")):
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def resolve_binary(vocabulary: Vocabulary, target: str | None, background_names=("background",)) -> tuple[Vocabulary, int]:
    """The binary vocabulary (a background class added when the list has only the target) and
    the target's index. Without ``target`` the only non-background class is the target."""
    if len(vocabulary) == 1:
        vocabulary = vocabulary.with_background()
    if target is not None:
        return vocabulary, vocabulary.index(target)
    bg = vocabulary.background_index(background_names)
    candidates = [i for i in range(len(vocabulary)) if i != bg]
    if len(candidates) != 1:
        raise BadInputError(f"binary mode with classes {'; '.join(vocabulary.names)}: name the target "
                            "class (--target NAME)")
    return vocabulary, candidates[0]


# --------------------------------------------------------------------------- the pipeline

def output_classes(vocab: Vocabulary, binary: bool, target: str | None, palette,
                   background_names=("background",)):
    """(vocabulary, target index or None, class names, colours) of a map, by the pipeline's rules:
    binary maps are ``["background", target]``; a multi-class map needs two classes or more."""
    target_index = None
    if binary:
        vocab, target_index = resolve_binary(vocab, target, background_names)
    elif len(vocab) < 2:
        raise BadInputError(f"only one class ({vocab.names[0]}): list several classes separated by ';' "
                            "or use binary mode (--binary)")
    names = ["background", vocab.names[target_index]] if binary else vocab.names
    if palette is None:
        palette = BINARY_PALETTE if binary else default_palette(len(names))
    colours = [tuple(int(v) for v in c[:3]) for c in palette]
    if len(colours) < len(names):
        raise BadInputError(f"palette has {len(colours)} colours for {len(names)} classes")
    return vocab, target_index, names, colours[:len(names)]


def segment(image, classes: str | Sequence[str] | Vocabulary, *, sam, clip, binary: bool = False,
            target: str | None = None, settings: OvssSettings = OvssSettings(),
            generator: str | Generator = DEFAULT_GENERATOR, proposal_cache: ProposalCache | None = None,
            text_cache=None, palette: Sequence[Sequence[int]] | None = None, upsampler=None) -> OvssResult:
    """Segment ``image`` (uint8 H x W x 3 array or :class:`~rs_helpers.geo.rasters.RasterImage`) into
    ``classes`` ("building;road;water", commas = synonyms). ``binary=True``: a 0/1 map of
    ``target`` (a background class is added when the list holds only the target).
    ``generator``: a name in ``PROPOSAL_GENERATORS`` or ``fn(sam, image_rgb, ProposalSettings)``.
    ``palette``: colours per class (default :func:`default_palette`). ``upsampler``: a feature
    upsampler for the dense map (SimFeatUp, :func:`rs_helpers.ovss.clip_only.load_upsampler`), or None."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    rgb = np.asarray(getattr(image, "rgb", image))
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise BadInputError(f"image must be uint8 H x W x 3, got {rgb.dtype} {rgb.shape}")
    if settings.max_side is not None and settings.max_side < 0:
        raise BadInputError(f"max_side must be positive (or 0/None for the native size), got {settings.max_side}")
    if settings.selector not in SELECTORS:
        raise BadInputError(f"selector {settings.selector!r}: choose one of {', '.join(SELECTORS)}")
    if isinstance(generator, str):
        if generator not in PROPOSAL_GENERATORS:
            raise BadInputError(f"proposal generator {generator!r}: choose one of {', '.join(PROPOSAL_GENERATORS)}")
        generator = PROPOSAL_GENERATORS[generator]
    vocab, target_index, names, colours = output_classes(parse_classes(classes), binary, target, palette,
                                                         settings.dense.background_names)
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
    except Exception:  # pragma: no cover - statistics are best effort
        pass

    device = clip.device
    with stage_timer(timings, "resize", device):
        size = work_size(rgb.shape[0], rgb.shape[1], settings.max_side)
        work = resize_rgb(rgb, size)
    with stage_timer(timings, "proposals", device):
        if proposal_cache is not None:
            proposals = proposal_cache.get(sam, work, settings.proposals, generator)
        else:
            proposals = generator(sam, work, settings.proposals)
    stage_peaks = {}
    for key, value in proposals.stages.items():
        timings[f"proposals.{key}"] = float(value["seconds"])
        stage_peaks[f"proposals.{key} peak_mib"] = float(value["peak_mib"])
    with stage_timer(timings, "clip_text", device):
        kwargs = {} if text_cache is None else {"cache": text_cache}
        text = encode_vocabulary(clip, vocab, settings.dense.templates, settings.dense.synonyms, **kwargs)
    with stage_timer(timings, "clip_dense", device):
        dense = dense_map(clip, work, vocab, settings.dense, out_size=size, text=text, upsampler=upsampler)
    background = dense.background_index
    if settings.selector == "crop":
        with stage_timer(timings, "clip_crops", device):
            scores = classify_crops(clip, work, proposals.masks, proposals.boxes, text, settings.crop)
        with stage_timer(timings, "selection", device):
            selection = select_from_scores(proposals.masks, scores, dense.labels, settings.selection,
                                           background, binary_target=target_index)
    else:
        with stage_timer(timings, "selection", device):
            if binary:
                selection = select_binary(proposals.masks, dense.labels, target_index, len(vocab),
                                          settings.selection, probs=dense.probs)
            else:
                selection = select_semantic(proposals.masks, dense.labels, len(vocab), settings.selection,
                                            probs=dense.probs, background_index=background)
    with stage_timer(timings, "upsample", device):
        labels = resize_labels(selection.labels, rgb.shape[:2])
    timings["total"] = time.perf_counter() - t0
    return OvssResult(
        labels=labels, class_names=names, palette=colours[:len(names)], shares=class_shares(labels, names),
        timings=timings, memory=_memory(clip, stage_peaks), vocabulary=vocab, binary=binary,
        target=names[1] if binary else None, selector=settings.selector, work_size=size,
        work_labels=selection.labels, proposals=proposals, dense=dense, selection=selection,
    )
