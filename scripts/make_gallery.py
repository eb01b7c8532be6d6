"""Make docs/gallery.md and docs/gallery/ from a full-profile `make demo` run (see rs_helpers.teaching.gallery).

    make demo                                   # full profile, real weights (Colab with a GPU, or your machine)
    python scripts/make_gallery.py outputs/notebooks [--out docs/gallery] [--overwrite]

Notebooks executed under the tiny profile are refused (exit 2): their figures are meaningless.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from rs_helpers.errors import RsError
    from rs_helpers.teaching.gallery import build_gallery

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("executed", type=Path, help="the folder of executed notebooks (make demo: outputs/notebooks)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "gallery",
                        help="the figures' folder; the page is written beside it as FOLDER.md (default docs/gallery)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier gallery")
    parser.add_argument("--allow-tiny", action="store_true", help=argparse.SUPPRESS)  # the tests only
    args = parser.parse_args(argv)
    try:
        entries = build_gallery(args.executed, args.out, allow_tiny=args.allow_tiny, overwrite=args.overwrite)
    except RsError as exc:
        print(f"make_gallery: error: {exc}", file=sys.stderr)
        return exc.exit_code
    figures = sum(len(e.images) for e in entries)
    print(f"{figures} figures from {len(entries)} notebooks -> {args.out}/ and {args.out.parent / (args.out.name + '.md')}")
    for entry in entries:
        if entry.problem:
            print(f"  {entry.notebook}: {entry.problem}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
