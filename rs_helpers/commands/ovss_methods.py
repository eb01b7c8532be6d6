"""The SAM 3 method of ``rs-seg ovss`` and ``rs-seg eval ovss`` (``--method sam3``): its options, the
fusion settings they give, and how a run names the model in its legend and report.

SAM 3 alone is SegEarth-OV3's training-free segmentation (:mod:`rs_helpers.ovss.sam3_fusion`); the
``--sam3-*`` options only go with it (elsewhere they would silently do nothing: exit 2).
"""
from __future__ import annotations

import argparse

from rs_helpers.commands.options import fraction, nonnegative_int
from rs_helpers.errors import BadInputError


def sam3_heads(text: str) -> tuple[str, ...]:
    """``--sam3-heads``: a comma list of instance, semantic, presence (exit 2 otherwise)."""
    from rs_helpers.ovss.sam3_fusion import parse_heads

    try:
        return parse_heads(text)
    except BadInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_sam3_arguments(p, protocol: bool = False) -> None:
    """``--sam3-model``, ``--sam3-heads``, ``--sam3-confidence``, ``--sam3-prob-thd`` (``--method sam3``;
    ``protocol``: the thresholds default to the evaluation protocol's)."""
    from rs_helpers.models.sam3 import DEFAULT_SAM3
    from rs_helpers.ovss.sam3_fusion import Sam3Settings

    default = "the protocol's" if protocol else None
    p.add_argument("--sam3-model", default=None,
                   help=f"--method sam3: hub id (gated: accept the licence, log in) or a saved model folder "
                        f"(default {DEFAULT_SAM3})")
    p.add_argument("--sam3-heads", type=sam3_heads, default=None,
                   help="--method sam3: the heads fused, of instance,semantic,presence (default all three)")
    p.add_argument("--sam3-confidence", type=fraction, default=None,
                   help="--method sam3: keep instance queries whose object score exceeds this "
                        f"(default {default or Sam3Settings.confidence_threshold})")
    p.add_argument("--sam3-prob-thd", type=fraction, default=None,
                   help="--method sam3: pixels whose best class score is below this go to the background class "
                        f"(default {default or Sam3Settings.prob_thd})")
    p.add_argument("--sam3-window", type=nonnegative_int, default=None,
                   help="--method sam3: sliding window side in pixels, stride the same; 0: the whole image in one "
                        f"view (default {default or 'the model input size, over larger images'})")


SAM3_OPTIONS = ("sam3_model", "sam3_heads", "sam3_confidence", "sam3_prob_thd", "sam3_window")


def check_sam3_options(args, method: str) -> None:
    """``--sam3-*`` without ``--method sam3`` would silently do nothing: exit 2, before any model."""
    used = [name for name in SAM3_OPTIONS if getattr(args, name, None) is not None]
    if used and method != "sam3":
        raise BadInputError(f"--{used[0].replace('_', '-')} has no use with --method {method}; use --method sam3")


def sam3_settings(args, base=None):
    """The fusion's settings: ``base`` (default :class:`Sam3Settings`, or a protocol's) with the options given."""
    from dataclasses import replace

    from rs_helpers.ovss.sam3_fusion import Sam3Settings

    given = {"heads": args.sam3_heads, "confidence_threshold": args.sam3_confidence, "prob_thd": args.sam3_prob_thd}
    if args.sam3_window is not None:  # a window of its own, stepped by its own side
        given.update(slide_crop=args.sam3_window, slide_stride=None)
    return replace(base or Sam3Settings(), **{k: v for k, v in given.items() if k == "slide_stride" or v is not None})


def sam3_model_id(args) -> str:
    from rs_helpers.models.sam3 import DEFAULT_SAM3

    return getattr(args, "sam3_model", None) or DEFAULT_SAM3


def sam3_legend(sam3) -> dict:
    """The legend's record of the SAM 3 model (nothing for the other methods)."""
    return {} if sam3 is None else {"sam3_model": sam3.model_id, "dtype": str(sam3.dtype).replace("torch.", "")}


def sam3_what(sam3, settings) -> str:
    return (f"SAM 3 alone ({sam3.model_id}, no SAM 1 or CLIP), heads {'+'.join(settings.heads)}, confidence > "
            f"{settings.confidence_threshold:g}, prob_thd {settings.prob_thd:g}")
