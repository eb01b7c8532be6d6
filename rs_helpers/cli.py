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
