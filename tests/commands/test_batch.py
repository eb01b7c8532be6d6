"""Many scenes in one run (``rs-seg ovss|refer FOLDER --out DIR``): one output per scene, scenes
already done skipped, a failing scene reported while the others go on, options that name one
file refused, two processes sharing the scenes, and no partial output after a kill."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rs_helpers.cli import main
from rs_helpers.geo.rasters import read_mask

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_distributed import env, launch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "refer"))
from test_vlm_openai import FakeOpenAI  # noqa: E402

OVSS = ["--classes", "building;road;water", "--max-side", "128", "--points-per-side", "4", "--device", "cpu"]


def scenes(folder: Path, n: int = 3, size: int = 96) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size + 8 * i, 3), dtype=np.uint8)).save(folder / f"s{i}.png")
    return folder


def test_a_folder_gives_one_map_per_scene_and_done_scenes_are_skipped(tmp_path, capsys):
    folder = scenes(tmp_path / "in")
    out = tmp_path / "maps"
    assert main(["ovss", str(folder), "--out", str(out), *OVSS]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"s{i}{ext}" for i in range(3) for ext in (".png", ".legend.json"))
    assert read_mask(out / "s2.png").shape == (96, 112)
    assert json.loads((out / "s1.legend.json").read_text())["image"] == str(folder / "s1.png")
    assert "scenes: 3 written, 0 already there" in capsys.readouterr().out
    (out / "s1.legend.json").unlink()  # as if stopped between a scene's two files
    before = (out / "s0.png").stat().st_mtime_ns
    assert main(["ovss", str(folder), "--out", str(out), *OVSS]) == 0
    assert "scenes: 1 written, 2 already there" in capsys.readouterr().out
    assert (out / "s1.legend.json").exists() and (out / "s0.png").stat().st_mtime_ns == before
    assert main(["ovss", str(folder / "s0.png"), str(folder / "s1.png"), "--out", str(out), *OVSS,
                 "--overwrite"]) == 0
    assert "scenes: 2 written, 0 already there" in capsys.readouterr().out


def test_one_bad_scene_is_reported_and_the_others_are_written(tmp_path, capsys):
    folder = scenes(tmp_path / "in", n=2)
    (folder / "broken.png").write_bytes((folder / "s0.png").read_bytes()[:200])  # truncated
    assert main(["ovss", str(folder), "--out", str(tmp_path / "maps"), *OVSS]) == 2
    printed = capsys.readouterr()
    assert "scenes: 2 written, 0 already there (skipped; --overwrite redoes them), 1 failed" in printed.out
    assert "failed: " in printed.out and "broken.png" in printed.out and "Traceback" not in printed.err
    assert sorted(p.name for p in (tmp_path / "maps").iterdir() if p.suffix == ".png") == ["s0.png", "s1.png"]


@pytest.mark.parametrize("extra,message", [
    (["--geojson", "x.geojson"], "--geojson names one file"),
    ([], "would both be written to"),
])
def test_refused_before_any_work(tmp_path, capsys, extra, message):
    folder = scenes(tmp_path / "in", n=1)
    other = tmp_path / "other"
    other.mkdir()
    (other / "s0.jpg").write_bytes((folder / "s0.png").read_bytes())
    inputs = [str(folder)] + ([str(other)] if not extra else [])
    assert main(["ovss", *inputs, "--out", str(tmp_path / "maps"), *OVSS, *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "maps").exists()


def test_out_must_be_a_folder_and_the_inputs_must_exist(tmp_path, capsys):
    folder = scenes(tmp_path / "in", n=2)
    assert main(["ovss", str(folder), "--out", str(tmp_path / "map.png"), *OVSS]) == 2
    assert "--out is a folder" in capsys.readouterr().err
    assert main(["ovss", str(folder / "s0.png"), str(tmp_path / "nope.png"), "--out", str(tmp_path / "o"), *OVSS]) == 2
    assert "nope.png: no such image or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["ovss", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), *OVSS]) == 2
    assert "no images" in capsys.readouterr().err


def test_refer_over_a_folder_asks_once_per_scene(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    folder = scenes(tmp_path / "in", n=2)
    with FakeOpenAI() as server:
        code = main(["refer", str(folder), "--text", "the bright disc", "--base-url", server.url, "--device",
                     "cpu", "--sam", "vit_b", "--out", str(tmp_path / "masks")])
        assert code == 0, capsys.readouterr().err
        assert len(server.requests) == 2
        assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["s0.png", "s1.png"]
        assert main(["refer", str(folder), "--text", "x", "--base-url", server.url, "--device", "cpu", "--out",
                     str(tmp_path / "masks"), "--clicks-out", "c.json"]) == 2
        assert "--clicks-out names one file" in capsys.readouterr().err


def test_two_processes_share_the_scenes(tmp_path):
    folder = scenes(tmp_path / "in", n=3)
    done = launch("torchrun", ["ovss", str(folder), "--out", "maps", *OVSS], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[process 1 of 2] scene 1" in done.stdout and "[process 2 of 2] scene 1" in done.stdout
    assert done.stdout.count("scenes: 3 written") == 1
    assert sorted(p.name for p in (tmp_path / "maps").iterdir() if p.suffix == ".png") == [f"s{i}.png" for i in range(3)]


def test_a_killed_scene_run_leaves_only_whole_outputs(tmp_path):
    folder = scenes(tmp_path / "in", n=6, size=160)
    out = tmp_path / "maps"
    proc = subprocess.Popen([sys.executable, "-m", "rs_helpers", "ovss", str(folder), "--out", str(out), *OVSS],
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(out.glob("*.legend.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    for png in (n for n in names if n.endswith(".png")):
        read_mask(out / png)  # every map present is whole
    leftovers = [p for p in out.iterdir() if p.name.startswith(".")]
    written_before = len([n for n in names if n.endswith(".legend.json")])
    done = subprocess.run([sys.executable, "-m", "rs_helpers", "ovss", str(folder), "--out", str(out), *OVSS],
                          env=env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert written_before >= 1 and f"{written_before} already there" in done.stdout
    assert len(list(out.glob("*.png"))) == 6
    assert all(p.name.startswith(".") for p in leftovers)  # a killed temp file never takes a real name
