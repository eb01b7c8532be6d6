"""Many scenes in one ``rs-seg ovss`` or ``rs-seg refer`` run: a folder, or several images.

With more than one input (or a folder), ``--out`` is a folder and each scene gets
``OUT/<name>.png`` (``.tif`` for a TIFF input, a GeoTIFF keeping its CRS), written whole or not
at all as in a one-image run. A scene whose output is already there and complete is skipped, so
a stopped run picks up where it was (``--overwrite`` computes every scene again). Launched by
``accelerate launch`` or ``torchrun``, the scenes are split between the processes. A scene that
fails (unreadable, no usable clicks) is reported and the others go on; the exit code is then that
of the first failure. The models are loaded once per process, on the first scene that needs them.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Callable

from rs_helpers.errors import BadInputError, RsError, WeightsUnavailableError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def is_batch(images: list[str]) -> bool:
    return len(images) > 1 or Path(images[0]).is_dir()


def scene_inputs(images: list[str]) -> list[Path]:
    """The images named, folders expanded to their image files (sorted, not recursive)."""
    found: list[Path] = []
    for name in images:
        path = Path(name)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS
                            and not p.name.startswith("."))
        elif path.is_file():
            found.append(path)
        else:
            raise BadInputError(f"{name}: no such image or folder")
    if not found:
        raise BadInputError(f"no images ({', '.join(IMAGE_EXTS)}) in {', '.join(images)}")
    return found


def output_for(image: Path, out_dir: Path) -> Path:
    """``scene.tif`` -> ``OUT/scene.tif`` (a GeoTIFF); any other image -> ``OUT/<stem>.png``."""
    suffix = ".tif" if image.suffix.lower() in (".tif", ".tiff") else ".png"
    return out_dir / (image.stem + suffix)


def is_complete(paths: list[Path]) -> bool:
    """Every file of a scene exists and its raster is not truncated."""
    from rs_helpers.geo.integrity import check_complete

    if not all(p.exists() for p in paths):
        return False
    raster = paths[0]
    try:
        check_complete(raster, "GTiff" if raster.suffix.lower() in (".tif", ".tiff") else "PNG")
    except RsError:
        return False
    return True


def cached(args, name: str, load: Callable):
    """A model loaded once per batch run (``args`` carries the cache), or just loaded."""
    cache = getattr(args, "_models", None)
    if cache is None:
        return load()
    if name not in cache:
        cache[name] = load()
    return cache[name]


def run_batch(args, run_one: Callable, files_of: Callable[[Path], list[Path]],
              not_per_scene: tuple[str, ...] = ()) -> int:
    """Run ``run_one(args_for_scene)`` on every scene not done yet (this process's share).

    ``files_of(out)`` lists the files one scene writes (the raster first); ``not_per_scene``
    names options that name one file and so cannot apply to many scenes."""
    from rs_helpers.distributed import processes
    from rs_helpers.files import check_outputs

    for option in not_per_scene:
        if getattr(args, option.lstrip("-").replace("-", "_"), None):
            raise BadInputError(f"{option} names one file: it cannot be used with several images")
    scenes = scene_inputs(args.image)
    out_dir = Path(args.out)
    if out_dir.suffix.lower() in IMAGE_EXTS or (out_dir.exists() and not out_dir.is_dir()):
        raise BadInputError(f"--out {out_dir}: with several images, --out is a folder (one output per scene)")
    outputs = [output_for(s, out_dir) for s in scenes]
    seen: dict[Path, Path] = {}
    for scene, out in zip(scenes, outputs):
        if out in seen:
            raise BadInputError(f"{seen[out]} and {scene} would both be written to {out}: rename one")
        seen[out] = scene
    pending = [(s, o) for s, o in zip(scenes, outputs) if args.overwrite or not is_complete(files_of(o))]
    skipped = len(scenes) - len(pending)
    check_outputs({f"the output of {s.name} ({f.name})": f for s, o in pending for f in files_of(o)},
                  inputs=[str(s) for s in scenes], overwrite=True)  # an unfinished scene is redone
    procs = processes(args.device)
    args.device = procs.device(args.device)
    args._models = {}
    failures: list[tuple[str, str, int]] = []
    for number, (scene, out) in enumerate(procs.shard(pending), start=1):
        one = copy.copy(args)
        one.image, one.out, one.overwrite = str(scene), str(out), True
        print(f"[{procs.label()}] scene {number}: {scene}", flush=True)
        try:
            run_one(one)
        except WeightsUnavailableError:
            raise
        except RsError as exc:  # this scene's problem: the others go on
            print(f"rs-seg: {scene}: {exc}", file=sys.stderr)
            failures.append((str(scene), str(exc), exc.exit_code))
    parts = procs.gather(failures)
    if not procs.main:
        return 0
    failures = [f for part in parts for f in part]
    print(f"scenes: {len(pending) - len(failures)} written, {skipped} already there (skipped; --overwrite "
          f"redoes them), {len(failures)} failed; outputs in {out_dir}")
    for scene, why, _ in failures:
        print(f"  failed: {scene}: {why}")
    return failures[0][2] if failures else 0
