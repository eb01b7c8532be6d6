"""``rs-seg demo``: the main job of ``make demo`` (sample commands, then all notebooks)."""
from __future__ import annotations

import os
from pathlib import Path


def register(subparsers) -> None:
    from rs_helpers.commands.options import add_common

    parser = subparsers.add_parser("demo", help="run the sample commands and execute every notebook into outputs/")
    parser.add_argument("--out", default="outputs", help="output folder (default: outputs)")
    parser.add_argument("--notebooks", default=None, help="folder of notebooks (default: the repository's notebooks/)")
    parser.add_argument("--skip-notebooks", action="store_true", help="run only the sample commands")
    add_common(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from rs_helpers.teaching.demo import run_demo
    from rs_helpers.samples import data_root

    if args.profile:
        os.environ["RS_HELPERS_PROFILE"] = args.profile  # notebooks inherit it
    if args.device:
        os.environ["RS_HELPERS_DEVICE"] = args.device
    from rs_helpers.errors import BadInputError
    from rs_helpers.files import check_outputs

    notebooks = Path(args.notebooks) if args.notebooks else data_root().parent / "notebooks"
    if not args.skip_notebooks and not sorted(notebooks.glob("[0-9][0-9]_*.ipynb")):
        raise BadInputError(f"--notebooks {notebooks}: no notebooks (NN_name.ipynb) there")
    # the demo's folder holds the demo's own results, remade on every run (so no --overwrite)
    check_outputs({"--out": args.out}, folders=["--out"], overwrite=True)
    return run_demo(Path(args.out), notebooks, run_notebooks=not args.skip_notebooks)
