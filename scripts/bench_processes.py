"""One process against N, in the same run: wall time of ``rs-seg eval ovss`` and ``eval refer``
(and the tiles of one scene) under ``torchrun --nproc_per_node N``, with the metrics checked equal.

    python scripts/bench_processes.py                    # tiny profile, CPU, N = 2
    python scripts/bench_processes.py --processes 4 --profile full --device cuda --limit 200 \\
        --dataset loveda --root /data/LoveDA

Each run starts fresh (its own folder), so model loading is included: that is what a user waits
for. The reference is the single-process run measured just before. Prints one line per job:
``seconds 1 process, seconds N processes, speed-up, metrics equal``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANSWERS = ROOT / "data" / "stored_answers" / "handwritten_examples.json"
SCENE = ROOT / "data" / "samples" / "spacenet_ccbysa4" / "atlanta_sn4_pan.tif"


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def metrics(path: Path):
    if path.suffix == ".tif":
        import numpy as np
        import rasterio

        with rasterio.open(path) as src:
            return np.unique(src.read(), return_counts=True)[1].tolist()
    data = json.loads(path.read_text())
    return data.get("summary") if "groups" not in data else [(g["confusion"], g["unmatched"]) for g in data["groups"]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dataset", default="samples")
    parser.add_argument("--root", default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP threads per process (default: cores / processes, the same total for both runs)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    env = {**os.environ, "RS_HELPERS_PROFILE": args.profile}
    common = ["--device", args.device]
    limit = ["--limit", str(args.limit)] if args.limit else []
    root = ["--root", args.root] if args.root else []
    jobs = {
        "eval ovss": (["eval", "ovss", "--dataset", args.dataset, *root, *limit, "--no-progress", *common], "e.json"),
        "eval refer": (["eval", "refer", "--vlm", f"replay:{ANSWERS}", *limit, *common], "e.json"),
        "one scene, 256 px tiles": (["ovss", str(SCENE), "--classes", "building;road;tree", "--tile", "256",
                                     "--overlap", "32", *common], "map.tif"),
    }
    print(f"{'job':<26} {'1 process s':>12} {f'{args.processes} processes s':>15} {'speed-up':>9}  metrics equal")
    for name, (argv, out) in jobs.items():
        seconds, results = [], []
        for n in (1, args.processes):
            threads = args.threads or max(1, cores // n)
            run_env = {**env, "OMP_NUM_THREADS": str(threads)}
            launcher = [sys.executable, "-m", "rs_helpers"] if n == 1 else [
                str(Path(sys.executable).parent / "torchrun"), "--nproc_per_node", str(n), "-m", "rs_helpers"]
            with tempfile.TemporaryDirectory() as folder:
                seconds.append(timed([*launcher, *argv, "--out", out], Path(folder), run_env))
                results.append(metrics(Path(folder) / out))
        print(f"{name:<26} {seconds[0]:>12.1f} {seconds[1]:>15.1f} {seconds[0] / seconds[1]:>8.2f}x  "
              f"{'yes' if results[0] == results[1] else 'NO'}")
    print(f"({args.profile} profile, {args.device}, {cores} cores; model loading included in every run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
