"""Outputs: checked before any work, written whole or not at all, never over an input."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rs_helpers.errors import BadInputError
from rs_helpers.files import (TEMP_MARK, atomic_path, check_outputs, open_atomic, temp_name, unique_aside,
                                write_text_atomic)


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# ------------------------------------------------------------------ check_outputs
def test_check_outputs_returns_paths_and_creates_parent_folders(tmp_path):
    got = check_outputs({"--out": tmp_path / "a" / "b" / "map.png", "--geojson": None})
    assert got == {"--out": tmp_path / "a" / "b" / "map.png"}
    assert (tmp_path / "a" / "b").is_dir() and not any((tmp_path / "a" / "b").iterdir())  # no probe left


def test_an_existing_output_needs_overwrite(tmp_path):
    existing = tmp_path / "map.png"
    existing.write_bytes(b"earlier result")
    with pytest.raises(BadInputError, match="--out .*exists; add --overwrite"):
        check_outputs({"--out": existing})
    assert check_outputs({"--out": existing}, overwrite=True) == {"--out": existing}
    assert existing.read_bytes() == b"earlier result"  # checking never writes the file


def test_an_output_is_never_an_input_even_with_overwrite_or_through_a_link(tmp_path):
    image = tmp_path / "scene.tif"
    image.write_bytes(b"input")
    link = tmp_path / "link.tif"
    link.symlink_to(image)
    for out in (image, link, tmp_path / "." / "scene.tif"):
        with pytest.raises(BadInputError, match="is an input of this run"):
            check_outputs({"--out": out}, inputs=[image], overwrite=True)
    assert image.read_bytes() == b"input"


def test_two_outputs_of_one_run_may_not_share_a_path(tmp_path):
    with pytest.raises(BadInputError, match="--holdout-out and --out name the same file"):
        check_outputs({"--out": tmp_path / "x.jsonl", "--holdout-out": tmp_path / "x.jsonl"})


@pytest.mark.parametrize("make", ["dir", "under_file", "proc", "readonly"])
def test_unwritable_places_are_refused_before_any_work(tmp_path, make):
    if make == "dir":
        (tmp_path / "d").mkdir()
        target, pattern = tmp_path / "d", "is a folder"
    elif make == "under_file":
        (tmp_path / "f").write_text("x")
        target, pattern = tmp_path / "f" / "map.png", "is a file, not a folder"
    elif make == "proc":
        target, pattern = Path("/proc/self/rs_map.png"), "cannot|not writable"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target, pattern = ro / "map.png", "not writable"
    with pytest.raises(BadInputError, match=pattern):
        check_outputs({"--out": target})


def test_names_that_are_not_utf8_are_refused(tmp_path):
    with pytest.raises(BadInputError, match="not UTF-8"):
        check_outputs({"--out": str(tmp_path) + "/map\udcff.png"})


def test_folder_outputs_need_overwrite_when_not_empty(tmp_path):
    folder = tmp_path / "copies"
    assert check_outputs({"--out": folder}, folders=["--out"]) == {"--out": folder}
    (folder / "01.ipynb").write_text("student work")
    with pytest.raises(BadInputError, match="not empty; add --overwrite"):
        check_outputs({"--out": folder}, folders=["--out"])
    check_outputs({"--out": folder}, folders=["--out"], overwrite=True)


# ------------------------------------------------------------------ atomic writing
def test_atomic_path_renames_only_a_complete_file(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("earlier")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".json" and TEMP_MARK in tmp.name
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert _listing(tmp_path) == {"result.json": b"earlier"}
    with pytest.raises(KeyboardInterrupt):
        with open_atomic(target) as fh:
            fh.write("half")
            raise KeyboardInterrupt
    assert _listing(tmp_path) == {"result.json": b"earlier"}
    write_text_atomic(target, "new")
    assert _listing(tmp_path) == {"result.json": b"new"}


def test_temp_names_are_unique_and_never_touch_a_user_file(tmp_path):
    user_file = tmp_path / "map.tmp.tif"
    user_file.write_bytes(b"mine")
    names = {temp_name(tmp_path / "map.tif") for _ in range(20)}
    assert len(names) == 20 and user_file.read_bytes() == b"mine"


def test_unique_aside_never_reuses_a_name(tmp_path):
    path = tmp_path / "sam.pth"
    first = unique_aside(path)
    first.write_text("first bad file")
    second = unique_aside(path)
    assert first.name == "sam.pth.bad" and second.name == "sam.pth.bad.1"


# ------------------------------------------------------------------ the commands
def _scene(path: Path, side: int = 512) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    data = rng.integers(0, 255, (3, side, side), dtype=np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=side, height=side, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000, 4000000, 1, 1)) as dst:
        dst.write(data)
    return path


def test_ovss_refuses_to_write_over_its_input_or_an_existing_result(tmp_path, capsys):
    from rs_helpers.cli import main

    image = _scene(tmp_path / "scene.tif", 64)
    before = image.read_bytes()
    assert main(["ovss", str(image), "--classes", "a;b", "--out", str(image), "--overwrite", "--profile", "tiny"]) == 2
    assert "is an input of this run" in capsys.readouterr().err
    assert image.read_bytes() == before
    out = tmp_path / "map.png"
    out.write_bytes(b"earlier")
    assert main(["ovss", str(image), "--classes", "a;b", "--out", str(out), "--profile", "tiny"]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"earlier"


def test_ovss_legend_and_geojson_never_collide(tmp_path, capsys):
    from rs_helpers.cli import main

    image = _scene(tmp_path / "scene.tif", 64)
    code = main(["ovss", str(image), "--classes", "a;b", "--out", str(tmp_path / "map.tif"),
                 "--geojson", str(tmp_path / "map.json"), "--profile", "tiny", "--points-per-side", "4"])
    assert code == 0, capsys.readouterr().err
    assert {"map.tif", "map.legend.json", "map.json", "scene.tif"} == {p.name for p in tmp_path.iterdir()}
    code = main(["ovss", str(image), "--classes", "a;b", "--out", str(tmp_path / "m2.tif"),
                 "--geojson", str(tmp_path / "m2.legend.json"), "--profile", "tiny"])
    assert code == 2 and "name the same file" in capsys.readouterr().err


def test_lora_data_refuses_one_file_for_train_and_holdout(tmp_path, capsys):
    from rs_helpers.cli import main

    same = str(tmp_path / "x.jsonl")
    assert main(["lora-data", "--dataset", "samples", "--out", same, "--holdout", "0.5", "--holdout-out", same,
                 "--profile", "tiny"]) == 2
    assert "name the same file" in capsys.readouterr().err and not Path(same).exists()


@pytest.mark.parametrize("argv", [
    ["train-lora", "--train", "t.jsonl", "--out", "a", "--rank", "0"],
    ["train-lora", "--train", "t.jsonl", "--out", "a", "--batch-size", "0"],
    ["train-lora", "--train", "t.jsonl", "--out", "a", "--lr", "nan"],
    ["train-lora", "--train", "t.jsonl", "--out", "a", "--epochs", "inf"],
    ["bench", "--size", "-5"], ["bench", "--points-per-side", "-3"], ["bench", "--images", "0"],
    ["ovss", "x.png", "--classes", "a;b", "--out", "m.png", "--tau", "1.5"],
    ["ovss", "x.png", "--classes", "a;b", "--out", "m.png", "--points-per-side", "0"],
    ["refer", "x.png", "--text", "t", "--out", "m.png", "--n-clicks", "0"],
    ["clicks", "x.png", "m.png", "--out", "c.json", "--stop-iou", "nan"],
    ["ovss", "x.png", "--classes", "a;b", "--out", "m.png", "--device", "tpu"],
])
def test_numeric_and_device_nonsense_stops_at_the_option(argv, capsys):
    from rs_helpers.cli import main

    assert main(argv + ["--profile", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "error: argument" in err and "Traceback" not in err


def test_device_cuda_without_a_gpu_is_refused():
    import torch

    from rs_helpers.cli import main

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["bench", "--device", "cuda"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_an_interrupted_tiled_run_keeps_the_earlier_result_and_leaves_nothing(tmp_path, sig, code):
    """Ctrl-C, SIGTERM or SIGHUP during a tiled run: the earlier map of the same name is untouched,
    and no temporary or partial file is left in the folder."""
    image = _scene(tmp_path / "scene.tif", 768)
    out = tmp_path / "map.tif"
    out.write_bytes(b"an earlier complete result")
    (tmp_path / "map.tmp.tif").write_bytes(b"a user's own file")
    before = _listing(tmp_path)
    env = {**os.environ, "RS_HELPERS_PROFILE": "tiny", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rs_helpers", "ovss", str(image), "--classes", "a;b",
                             "--out", str(out), "--overwrite", "--tile", "128", "--overlap", "0",
                             "--points-per-side", "8"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if any(TEMP_MARK in p.name for p in tmp_path.iterdir()):
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    time.sleep(1.0)  # well inside the tile loop
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert "Traceback" not in err
    assert _listing(tmp_path) == before


def test_read_json_file_refuses_devices_and_oversized_files(tmp_path):
    from rs_helpers.files import read_json_file

    good = tmp_path / "ok.json"
    good.write_text('{"a": [1, 2]}')
    assert read_json_file(good) == {"a": [1, 2]}
    with pytest.raises(BadInputError, match="too large"):
        read_json_file(good, "answers file", max_bytes=4)
    with pytest.raises(BadInputError, match="not a regular file"):
        read_json_file("/dev/zero", "answers file")  # would otherwise be read forever
    with pytest.raises(BadInputError, match="folder"):
        read_json_file(tmp_path, "answers file")
