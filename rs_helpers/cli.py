"""The ``rs-seg`` command line. Each sub-command lives in ``rs_helpers/commands/<name>.py``
and exposes ``register(subparsers)``; this file only wires them and maps errors to exit codes.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import NoClicksError, RsError

# Sub-command modules, in the order `rs-seg --help` lists them.
COMMANDS = [
    "doctor",
    "info",
    "demo",
    "ovss",
    "refer",
    "clicks",
    "lora_data",
    "train_lora",
    "evaluate",
    "bench",
    "student",
]


def add_common(parser: argparse.ArgumentParser) -> None:
    """Options every model-using command shares."""
    parser.add_argument("--profile", choices=["full", "tiny"], default=None,
                        help="full: real weights (default, or $RS_HELPERS_PROFILE); tiny: random tiny models")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")


def add_sam_options(parser: argparse.ArgumentParser, single_mask: bool = True) -> None:
    """--sam, --sam-checkpoint (and --single-mask): shared by every command that runs SAM."""
    parser.add_argument("--sam", default="vit_l", choices=["vit_b", "vit_l", "vit_h"],
                        help="SAM variant (default %(default)s)")
    parser.add_argument("--sam-checkpoint", default=None, help="a local SAM checkpoint instead of the download")
    if single_mask:
        parser.add_argument("--single-mask", action="store_true",
                            help="ask SAM for one mask instead of keeping the best of three")


def parse_bands(text: str | None) -> tuple[int, ...] | None:
    """``--bands 4,3,2`` -> (4, 3, 2); None when not given."""
    if not text:
        return None
    try:
        return tuple(int(b) for b in text.split(","))
    except ValueError:
        from .errors import BadInputError

        raise BadInputError(f"--bands {text!r}: give 1-based band numbers such as 4,3,2") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rs-seg",
        description="Training-free text-based segmentation of remote-sensing images.",
    )
    parser.add_argument("--version", action="version", version=f"rs-seg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f".commands.{name}", __package__)
        except ModuleNotFoundError as exc:  # a command not built yet in this checkout
            if exc.name and exc.name.endswith(f"commands.{name}"):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except NoClicksError as exc:
        print(f"rs-seg: error: {exc}", file=sys.stderr)
        print(f"raw answer:\n{exc.raw_answer}", file=sys.stderr)
        return exc.exit_code
    except RsError as exc:
        print(f"rs-seg: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("rs-seg: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
