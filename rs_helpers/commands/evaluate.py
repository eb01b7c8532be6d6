"""``rs-seg eval ovss|refer``: benchmark evaluation. Each kind lives in its own module."""
from __future__ import annotations

import importlib


def register(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="evaluate on a benchmark or the shipped samples")
    kinds = parser.add_subparsers(dest="eval_kind", metavar="KIND")
    for name in ("eval_ovss", "eval_refer"):
        try:
            module = importlib.import_module(f".{name}", __package__)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.endswith(name):
                continue
            raise
        module.register(kinds)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
