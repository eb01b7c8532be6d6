"""``rs-seg student --out student/``: student copies of the notebooks, solution cells stubbed."""
from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "student", help="write student copies of the notebooks (solution cells replaced by stubs)")
    parser.add_argument("--out", default="student", help="folder for the copies (default: student)")
    parser.add_argument("--notebooks", default=None,
                        help="folder of the instructor notebooks (default: ./notebooks, else the suite's own)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing copies (a student's edits in them are lost)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from rs_helpers.teaching.student import default_notebooks_dir, write_student_copies

    source = args.notebooks or default_notebooks_dir()
    written = write_student_copies(source, args.out, overwrite=args.overwrite)
    for path, stubs in written:
        print(f"{path}  ({stubs} exercise stub{'s' if stubs != 1 else ''})")
    total = sum(stubs for _, stubs in written)
    print(f"{len(written)} student notebooks, {total} stubs, in {args.out}")
    return 0
