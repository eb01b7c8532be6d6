"""Options the sub-commands share, and the argparse types that stop nonsense at the option.

Every numeric option goes through :func:`number_type` (zero, negative, nan and inf are refused
where they make no sense, exit 2); ``--device`` is checked against the machine; ``--overwrite``
is the only way an existing output is replaced. The scene and polygon options (``--tile``,
``--geojson``, ...) and the GeoJSON export they drive live here too, so that the library's
stages never depend on the command line."""
from __future__ import annotations

import argparse
import math
import warnings

from rs_helpers.errors import BadInputError
from rs_helpers.geo.tiling import DEFAULT_OVERLAP, DEFAULT_TILE
from rs_helpers.profile import PROFILES


def add_common(parser: argparse.ArgumentParser) -> None:
    """Options every model-using command shares."""
    parser.add_argument("--profile", choices=list(PROFILES), default=None,
                        help="full: real weights (default, or $RS_HELPERS_PROFILE); classroom: real weights too "
                             "(it picks smaller settings in the notebooks; here the options do); tiny: random "
                             "tiny models")
    parser.add_argument("--device", default=None, type=device_name,
                        help="cuda, cuda:N, mps or cpu (default: best available)")


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    """--overwrite: the only way an existing output is replaced (rasterio's ``rio`` convention)."""
    parser.add_argument("--overwrite", action="store_true", help="replace outputs that exist already")


def number_type(kind=float, low: float | None = None, high: float | None = None, above: bool = False):
    """An argparse ``type=`` for an int or a finite float in ``[low, high]`` (``above``: ``> low``).

    Nonsense (0 clicks, a negative size, ``--lr nan``) stops at the option with exit 2 instead of
    being taken silently or failing after minutes of work."""

    def parse(text: str):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r}: give a finite number")
        if low is not None and (value <= low if above else value < low):
            raise argparse.ArgumentTypeError(f"{text!r}: must be {'greater than' if above else 'at least'} {low}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text!r}: must be at most {high}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


positive_int = number_type(int, 1)  # counts, sizes, ranks, batch sizes
nonnegative_int = number_type(int, 0)  # areas, seeds, 0 meaning off
finite_float = number_type(float)  # any finite number
positive_float = number_type(float, 0, above=True)  # learning rates, epochs, seconds
nonnegative_float = number_type(float, 0)
fraction = number_type(float, 0, 1)  # thresholds, IoUs, shares


def device_name(text: str) -> str:
    """cpu, cuda, cuda:N or mps, checked against this machine before any model is built."""
    from rs_helpers.device import check_device

    try:
        return check_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _MultimaskAction(argparse.Action):
    """Sets ``args.multimask`` (auto / always / never) and, for commands that read the older flag,
    ``args.single_mask`` (True only for never)."""

    def __call__(self, parser, namespace, values, option_string=None):
        earlier = getattr(namespace, "_multimask_option", None)
        if earlier not in (None, option_string):  # argparse lets "--single-mask --multimask auto" pass
            parser.error(f"argument {option_string}: not allowed with argument {earlier}")
        mode = self.const if self.const is not None else values
        namespace.multimask, namespace.single_mask = mode, mode == "never"
        namespace._multimask_option = option_string


class _StoreGiven(argparse.Action):
    """Stores the value and notes in ``args._given`` that the option was typed (a default cannot tell)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace._given = set(getattr(namespace, "_given", None) or ()) | {self.dest}


SEGMENTERS = ("sam", "sam2", "sam3")
SEGMENTER_OPTIONS = {"sam": ("sam", "sam_checkpoint"), "sam2": ("sam2_model",), "sam3": ("sam3_model",)}


def add_sam_options(parser: argparse.ArgumentParser, single_mask: bool = True) -> None:
    """--segmenter with the options of each (--sam, --sam-checkpoint; --sam2-model; --sam3-model), and
    --multimask (--single-mask its alias for never): shared by every command that turns clicks into
    masks. ``args.multimask`` is the rule of :mod:`rs_helpers.sam.from_clicks` (default auto);
    ``args.single_mask`` is kept (never). :func:`check_segmenter_options` refuses the options of
    another segmenter, which would silently do nothing."""
    from rs_helpers.models.sam3 import DEFAULT_SAM3
    from rs_helpers.models.sam_tracker import DEFAULT_SAM2, SAM2_SIZES
    from rs_helpers.sam.from_clicks import DEFAULT_MULTIMASK, MULTIMASK_MODES

    parser.add_argument("--segmenter", default="sam", choices=SEGMENTERS,
                        help="what turns the clicks into a mask: sam (SAM 1, segment-anything; default), sam2 "
                             "(SAM 2.1) or sam3 (SAM 3's tracker; gated), the last two through transformers")
    parser.add_argument("--sam", default="vit_l", choices=["vit_b", "vit_l", "vit_h"], action=_StoreGiven,
                        help="--segmenter sam: SAM variant (default %(default)s)")
    parser.add_argument("--sam-checkpoint", default=None,
                        help="--segmenter sam: a local SAM checkpoint instead of the download")
    parser.add_argument("--sam2-model", default=None,
                        help=f"--segmenter sam2: hub id, size word ({', '.join(SAM2_SIZES)}: facebook/sam2.1-hiera-"
                             f"SIZE) or a saved model folder (default {DEFAULT_SAM2})")
    parser.add_argument("--sam3-model", default=None,
                        help=f"--segmenter sam3: hub id (gated: accept the licence, log in) or a saved model folder "
                             f"(default {DEFAULT_SAM3})")
    if single_mask:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--multimask", choices=MULTIMASK_MODES, default=DEFAULT_MULTIMASK, action=_MultimaskAction,
                           help="SAM's masks: auto (default: the best of three for one click, one mask for two "
                                "or more, as segment-anything advises), always (the best of three) or never (one)")
        group.add_argument("--single-mask", nargs=0, const="never", default=False, action=_MultimaskAction,
                           help="ask SAM for one mask, whatever the number of clicks (= --multimask never)")


def check_segmenter_options(args) -> None:
    """Exit 2, before any model loads, for an option of another segmenter than ``--segmenter``'s (it would
    silently do nothing). ``--sam`` counts only when typed: its default cannot be told from a choice."""
    kind = getattr(args, "segmenter", "sam") or "sam"
    given = getattr(args, "_given", None) or set()
    for other, names in SEGMENTER_OPTIONS.items():
        for name in names if other != kind else ():
            used = name in given if name == "sam" else getattr(args, name, None) is not None
            if used:
                raise BadInputError(f"--{name.replace('_', '-')} has no use with --segmenter {kind}; "
                                    f"it is for --segmenter {other}")


def segmenter_source(args) -> str | None:
    """The model ``--segmenter`` names as typed: the SAM 1 variant, or ``--sam2-model`` / ``--sam3-model``."""
    kind = getattr(args, "segmenter", "sam") or "sam"
    return args.sam if kind == "sam" else getattr(args, f"{kind}_model", None)


def segmenter_record(args) -> dict:
    """``{"segmenter": kind, "segmenter_model": id}``: what turns clicks into masks, as outputs and
    settings record it (under the tiny profile the tiny model that runs, unless a saved folder is given)."""
    from pathlib import Path

    from rs_helpers.profile import is_tiny

    kind = getattr(args, "segmenter", "sam") or "sam"
    if kind == "sam":
        model = "tiny" if is_tiny(args.profile) else args.sam
        if args.sam_checkpoint:
            model += f" ({Path(args.sam_checkpoint).expanduser().resolve()})"
        return {"segmenter": kind, "segmenter_model": model}
    from rs_helpers.models.sam_tracker import TINY_IDS, resolve_model_id

    model = resolve_model_id(kind, segmenter_source(args))
    if is_tiny(args.profile) and not Path(model).is_dir():
        model = TINY_IDS[kind]
    return {"segmenter": kind, "segmenter_model": model}


def segmenter_label(args) -> str:
    """How printed outputs name the segmenter, e.g. ``SAM vit_l``, ``SAM 2.1 facebook/sam2.1-hiera-large``."""
    from rs_helpers.models.sam_tracker import NAMES

    record = segmenter_record(args)
    return f"{NAMES.get(record['segmenter'], 'SAM')} {record['segmenter_model']}"


def load_segmenter(args, device=None):
    """The segmenter ``--segmenter`` names, loaded: segment-anything's SAM, or a SAM 2.1 / SAM 3 tracker
    bundle (``rs_helpers.models.sam_tracker``); either goes to ``rs_helpers.sam.from_clicks.make_predictor``."""
    device = device if device is not None else args.device
    kind = getattr(args, "segmenter", "sam") or "sam"
    if kind == "sam":
        from rs_helpers.models.sam import load_sam

        return load_sam(args.sam, checkpoint=args.sam_checkpoint, profile=args.profile, device=device)
    from rs_helpers.models.sam_tracker import load_click_segmenter

    return load_click_segmenter(kind, segmenter_source(args), profile=args.profile, device=device)


def segmenter_cache_key(args) -> str:
    """The name a batch run caches the segmenter under (``commands.batch.cached``): one per segmenter and model."""
    record = segmenter_record(args)
    return f"segmenter:{record['segmenter']}:{record['segmenter_model']}"


def add_vlm_options(parser: argparse.ArgumentParser) -> None:
    """--vlm, --adapter, --base-url, --timeout, --max-new-tokens, --reasoning-effort: shared by the
    commands that ask a vision-language model for clicks (turned into backend options by
    :func:`backend_options`)."""
    parser.add_argument("--vlm", default="openai:gpt-5",
                        help="openai:MODEL, qwen:MODEL_ID_OR_DIR or replay:FILE.json (default openai:gpt-5)")
    parser.add_argument("--adapter", default=None, help="LoRA adapter folder for a qwen: model (rs-seg train-lora)")
    parser.add_argument("--base-url", default=None,
                        help="OpenAI-compatible server (default $OPENAI_BASE_URL or api.openai.com)")
    parser.add_argument("--timeout", default=None, metavar="SECONDS",
                        help="openai: give up on an answer after this many seconds, retries included "
                             "(default 180); local qwen: and replay: models ignore it")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help="the answer's token limit (qwen: default 256; openai: max_completion_tokens, "
                             "which for GPT-5 includes its reasoning tokens)")
    parser.add_argument("--reasoning-effort", default=None, choices=["minimal", "low", "medium", "high"],
                        help="openai reasoning models (GPT-5): how much to think before answering")


def backend_options(args) -> dict:
    """Backend-specific keyword options from :func:`add_vlm_options`' flags (only those set)."""
    openai = args.vlm.lower().startswith("openai")
    options: dict = {}
    if args.max_new_tokens is not None:
        if args.max_new_tokens < 1:
            raise BadInputError("--max-new-tokens must be at least 1")
        if openai:
            options.setdefault("request_options", {})["max_completion_tokens"] = args.max_new_tokens
        elif args.vlm.lower().startswith("qwen"):
            options["max_new_tokens"] = args.max_new_tokens
        else:
            raise BadInputError("--max-new-tokens is for qwen: and openai: models")
    if args.reasoning_effort is not None:
        if not openai:
            raise BadInputError("--reasoning-effort is for openai: models")
        options.setdefault("request_options", {})["reasoning_effort"] = args.reasoning_effort
    if getattr(args, "timeout", None) is not None:  # checked here so that nan, inf and 0 exit 2
        from rs_helpers.refer.vlm_openai import check_timeout

        options["timeout"] = check_timeout(args.timeout, "--timeout")
    return options


def parse_bands(text: str | None) -> tuple[int, ...] | None:
    """``--bands 4,3,2`` -> (4, 3, 2); None when not given."""
    if not text:
        return None
    try:
        return tuple(int(b) for b in text.split(","))
    except ValueError:
            raise BadInputError(f"--bands {text!r}: give 1-based band numbers such as 4,3,2") from None


def add_scene_arguments(parser) -> None:
    """``--tile`` and ``--overlap``, plus :func:`rs_helpers.geo.vectorize.add_vector_arguments`
    (``--bands`` is the command's own)."""

    parser.add_argument("--tile", type=number_type(int, 16), default=None,
                        help=f"tile side in pixels; tiles are used when given or when the image is larger "
                             f"than {DEFAULT_TILE} px (then the default is {DEFAULT_TILE})")
    parser.add_argument("--overlap", type=nonnegative_int, default=DEFAULT_OVERLAP,
                        help="pixels shared by neighbouring tiles; each pixel is decided by the tile whose "
                             "centre is nearest (default %(default)s)")
    add_vector_arguments(parser)


def _geojson_path(text: str) -> str:
    import argparse

    if not text.lower().endswith((".geojson", ".json")):
        raise argparse.ArgumentTypeError(f"{text}: write a .geojson (or .json) file")
    return text


def add_vector_arguments(parser) -> None:
    """``--geojson``, ``--to-wgs84``, ``--simplify``, ``--min-area`` (for ``ovss`` and ``refer``);
    bad values stop argparse with exit code 2 before any model is loaded."""
    parser.add_argument("--geojson", default=None, type=_geojson_path,
                        help="also write the result as polygons (GeoJSON, one feature per region)")
    parser.add_argument("--to-wgs84", action="store_true", help="GeoJSON in EPSG:4326 instead of the input CRS")

    parser.add_argument("--simplify", type=nonnegative_float, default=0.0,
                        help="polygon simplification tolerance in map units (metres), 0 = none")
    parser.add_argument("--min-area", type=nonnegative_float, default=0.0,
                        help="drop polygons smaller than this area (square map units, m^2)")


def check_vector_args(args, crs) -> None:
    """Before any model work: ``--to-wgs84`` needs an image with a CRS (it cannot be honoured in
    pixel coordinates, and a GeoJSON reader would take pixels for degrees)."""
    if getattr(args, "to_wgs84", False) and getattr(args, "geojson", None) and crs is None:
        raise BadInputError(f"--to-wgs84: {args.image} has no CRS, so its polygons can only be written in "
                            "pixel coordinates; drop --to-wgs84 or give a georeferenced GeoTIFF")


def export_from_args(args, source, *, transform=None, crs=None, class_names=None) -> int:
    """Write ``--geojson`` when asked (nothing otherwise); prints the feature count (and a one-line
    warning for pixel coordinates) and returns it."""
    import sys

    if not getattr(args, "geojson", None):
        return 0
    from rs_helpers.geo.vectorize import PixelCoordinatesWarning, export_geojson

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PixelCoordinatesWarning)
        n = export_geojson(source, args.geojson, transform=transform, crs=crs, class_names=class_names,
                           simplify=args.simplify, min_area=args.min_area, to_wgs84=args.to_wgs84)
    for warning in caught:
        if issubclass(warning.category, PixelCoordinatesWarning):
            print(f"rs-seg: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    print(f"wrote {n} polygons to {args.geojson}" + (" (EPSG:4326)" if args.to_wgs84 else ""))
    return n
