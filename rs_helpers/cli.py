"""The ``rs-seg`` command line. Each sub-command lives in ``rs_helpers/commands/<name>.py``
and exposes ``register(subparsers)``; this file only wires them and maps errors to exit codes.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import signal
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
    parser.add_argument("--device", default=None, type=device_name,
                        help="cuda, cuda:N, mps or cpu (default: best available)")


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    """--overwrite: the only way an existing output is replaced (rasterio's ``rio`` convention)."""
    parser.add_argument("--overwrite", action="store_true", help="replace outputs that exist already")


# ----------------------------------------------------------------- argparse types (exit 2 on nonsense)
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
    from .device import check_device

    try:
        return check_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_sam_options(parser: argparse.ArgumentParser, single_mask: bool = True) -> None:
    """--sam, --sam-checkpoint (and --single-mask): shared by every command that runs SAM."""
    parser.add_argument("--sam", default="vit_l", choices=["vit_b", "vit_l", "vit_h"],
                        help="SAM variant (default %(default)s)")
    parser.add_argument("--sam-checkpoint", default=None, help="a local SAM checkpoint instead of the download")
    if single_mask:
        parser.add_argument("--single-mask", action="store_true",
                            help="ask SAM for one mask instead of keeping the best of three")


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
    from .errors import BadInputError

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
        from .vlm_openai import check_timeout

        options["timeout"] = check_timeout(args.timeout, "--timeout")
    return options


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
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # returned, not raised: notebooks and tests call main() directly
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with _signals_as_exceptions():
            result = args.func(args)
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
