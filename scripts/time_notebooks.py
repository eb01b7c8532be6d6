"""Measure each notebook's compute time and write it where lecturers read it.

    python scripts/time_notebooks.py                         # classroom profile, random weights
    python scripts/time_notebooks.py --profile full          # e.g. on a lent GPU
    python scripts/time_notebooks.py 01_sam_grid_proposals   # some notebooks only
    python scripts/time_notebooks.py --profile full --out gpu_out/timings.json   # a device run
    python scripts/time_notebooks.py --merge gpu_out/timings.json                # ... brought back

Each notebook is executed headless (as ``make demo`` does) with ``$RS_HELPERS_PROFILE`` set and,
unless ``--real-weights``, ``$RS_HELPERS_RANDOM_WEIGHTS=1``: the real architectures and the
profile's settings with random weights, nothing downloaded. The sum of the cells' run times is
recorded in ``notebooks/timings.json`` (under ``PROFILE/cpu`` or ``PROFILE/gpu``), then the
notebooks are rebuilt (their headers show it) and ``notebooks/README.md``'s table is remade.
``--out FILE`` writes the measurements to FILE only (on a lent GPU machine, whose files come
back); ``--merge FILE`` adds such a file's measurements here without running anything.
A notebook that fails is reported and keeps its earlier figure. Exit 1 if any failed.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook names (default: all)")
    parser.add_argument("--profile", default="classroom", choices=["classroom", "full"])
    parser.add_argument("--real-weights", action="store_true", help="load the real weights (downloads)")
    parser.add_argument("--timeout", type=int, default=3600, help="per-cell limit in seconds")
    parser.add_argument("--dry-run", action="store_true", help="measure, print, write nothing")
    parser.add_argument("--out", type=Path, help="write the measurements to this JSON file only")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.add_argument("--merge", type=Path, help="merge a JSON file written by --out, run nothing")
    args = parser.parse_args(argv)
    if args.out is not None and args.out.exists() and not args.overwrite:
        print(f"time_notebooks: {args.out} exists; give --overwrite to replace it", file=sys.stderr)
        return 2
    if args.merge is not None:
        return merge(args.merge)

    os.environ["RS_HELPERS_PROFILE"] = args.profile
    os.environ.pop("RS_HELPERS_RANDOM_WEIGHTS", None)
    if not args.real_weights:
        os.environ["RS_HELPERS_RANDOM_WEIGHTS"] = "1"
    os.environ.setdefault("MPLBACKEND", "Agg")

    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    from rs_helpers.device import pick_device
    from rs_helpers.teaching.demo import notebook_client
    import torch

    from rs_helpers.teaching.timings import load_timings, machine_description, notebook_time, record, save_timings

    folder = ROOT / "notebooks"
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if args.names:
        wanted = {n.removesuffix(".ipynb") for n in args.names}
        unknown = wanted - {p.stem for p in paths}
        if unknown:
            print(f"time_notebooks: no notebook {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        paths = [p for p in paths if p.stem in wanted]
    device = pick_device(None)
    kind = "gpu" if device.type == "cuda" else "cpu"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "?"
    run = {"machine": machine_description(device), "date": time.strftime("%Y-%m-%d"), "commit": commit,
           "random_weights": not args.real_weights, "torch": torch.__version__}
    print(f"timing {len(paths)} notebook(s): profile {args.profile}, {run['machine']}, "
          f"{'real' if args.real_weights else 'RANDOM'} weights", flush=True)
    timings, failed, measured_names = ({} if args.out is not None else load_timings(folder)), [], []
    try:
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            client = notebook_client(nb, args.timeout, path)
            start = time.perf_counter()
            try:
                client.execute()
            except Exception as exc:
                if signalled(client):  # Ctrl-C reached nbclient's handler (and maybe the kernel): not a failure
                    raise KeyboardInterrupt from None
                if not isinstance(exc, (CellExecutionError, CellTimeoutError)):  # e.g. DeadKernelError
                    exc = f"{type(exc).__name__}: {exc}"
                reason = [line for line in str(exc).splitlines() if line.strip()][-1:]
                print(f"  {path.stem}: FAILED after {time.perf_counter() - start:.0f} s: {' '.join(reason)[:300]}",
                      flush=True)
                failed.append(path.stem)
                continue
            measured = notebook_time(nb)
            print(f"  {path.stem}: {measured.seconds:.0f} s in cells ({time.perf_counter() - start:.0f} s wall); "
                  f"slowest: " + "; ".join(f"cell {i} {s:.0f} s" for i, s, _ in measured.slowest), flush=True)
            timings = record(timings, args.profile, kind, path.stem, measured, run)
            measured_names.append(path.stem)
            if args.out is not None:  # after each notebook: an interrupted run keeps what it measured
                save_timings(args.out.parent, timings, args.out.name)
            elif not args.dry_run:
                save_timings(folder, timings)
    except KeyboardInterrupt:  # what was measured is on disk already (saved after each notebook)
        quiet_event_loop()
        where = "nothing written (--dry-run)" if args.dry_run else (
            f"saved in {args.out}" if args.out is not None else f"saved in {folder / 'timings.json'}")
        print(f"time_notebooks: interrupted; {len(measured_names)} notebook(s) measured before it "
              f"({', '.join(measured_names) or 'none'}): {where}", file=sys.stderr)
        if measured_names and args.out is None and not args.dry_run:
            publish(timings)
        return 130
    if args.out is None and not args.dry_run:
        publish(timings)
    if failed:
        print(f"time_notebooks: {len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def quiet_event_loop() -> None:
    """nbclient's kernel poller dies with the kernel it shut down; asyncio would print that task's
    AssertionError at exit ("Task exception was never retrieved") after our one-line message."""
    import asyncio

    try:
        asyncio.get_event_loop().set_exception_handler(lambda loop, context: None)
    except RuntimeError:  # pragma: no cover - no event loop in this thread
        pass


def signalled(client) -> bool:
    """Whether nbclient caught a SIGINT or SIGTERM while running: its handler shuts the kernel down
    (the cell then fails with DeadKernelError) and leaves this future behind."""
    return getattr(client, "_async_cleanup_kernel_future", None) is not None


def publish(timings: dict) -> None:
    """Rebuild the notebooks (their headers show ``timings``) and remake the README's table."""
    import build_notebooks
    from rs_helpers.files import open_atomic
    from rs_helpers.teaching.timings import readme_table, replace_readme_table

    folder = ROOT / "notebooks"
    for source in build_notebooks.notebook_sources():
        build_notebooks.build(source)
    readme = folder / "README.md"
    names = [p.stem for p in sorted(folder.glob("[0-9][0-9]_*.ipynb"))]
    text = replace_readme_table(readme.read_text(encoding="utf-8"), readme_table(names, timings))
    with open_atomic(readme, "w", encoding="utf-8") as fh:
        fh.write(text)
    print(f"wrote {folder / 'timings.json'}, the notebook headers and {readme}")


def merge(path: Path) -> int:
    """Add the measurements of ``path`` (written by ``--out``) to notebooks/timings.json."""
    import json

    from rs_helpers.teaching.timings import load_timings, merge_timings, save_timings

    folder = ROOT / "notebooks"
    try:
        timings = merge_timings(load_timings(folder), json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        print(f"time_notebooks: cannot merge {path}: {exc}", file=sys.stderr)
        return 2
    save_timings(folder, timings)
    publish(timings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
