"""The ``rs-seg`` command line. Each sub-command lives in ``rs_helpers/commands/<name>.py``
and exposes ``register(subparsers)``; this file only wires them and maps errors to exit codes.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys

from rs_helpers import __version__
from rs_helpers.distributed import finish
from rs_helpers.errors import NoClicksError, RsError

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
    "score",
    "bench",
    "student",
]


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


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so that every ``finally`` and temporary file is cleaned up."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum, _frame):
    raise Interrupted(signum)


@contextlib.contextmanager
def _signals_as_exceptions():
    """Inside a command, SIGTERM and SIGHUP unwind the stack like Ctrl-C (main thread only)."""
    previous = {}
    try:
        for name in ("SIGTERM", "SIGHUP"):
            signum = getattr(signal, name, None)
            if signum is not None:
                previous[signum] = signal.signal(signum, _raise_interrupted)
    except ValueError:  # not the main thread (a notebook's worker, a test runner thread)
        pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; returns its exit code (argparse's own 2 for a bad option, 0 for --help)."""
    try:  # building the parser imports torch and the models' code: seconds in which Ctrl-C may come
        parser = build_parser()
        args = parser.parse_args(argv)
    except SystemExit as stop:  # returned, not raised: notebooks and tests call main() directly
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    except KeyboardInterrupt:
        print("rs-seg: interrupted while starting; nothing was written", file=sys.stderr)
        return 130
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with _signals_as_exceptions():
            result = args.func(args)
            finish()  # several processes: wait for the others, then leave the group together
    except NoClicksError as exc:
        print(f"rs-seg: error: {exc}", file=sys.stderr)
        print(f"raw answer:\n{exc.raw_answer}", file=sys.stderr)
        return exc.exit_code
    except RsError as exc:
        print(f"rs-seg: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Interrupted as exc:
        print(f"rs-seg: stopped by {exc.args[0]}; finished files are kept, nothing half-written is left",
              file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("rs-seg: interrupted; finished files are kept, nothing half-written is left", file=sys.stderr)
        return 130
    except MemoryError:
        print("rs-seg: error: out of memory; use a smaller --tile, --max-side or --points-per-batch",
              file=sys.stderr)
        return 1
    except OSError as exc:  # a disk filled up or vanished mid-run: say which file, no traceback
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"rs-seg: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
