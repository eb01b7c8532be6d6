"""Several processes and interrupted runs, as users launch them: two CPU processes (gloo) under
``accelerate launch`` and ``torchrun`` give exactly the metrics of one process, ``train-lora``
trains data-parallel to an adapter that loads, and an eval killed by SIGINT or SIGKILL resumes to
the metrics of an uninterrupted run."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
ANSWERS = Path(__file__).resolve().parents[1] / "data" / "stored_answers" / "handwritten_examples.json"
OVSS = ["eval", "ovss", "--dataset", "samples", "--limit", "4", "--no-progress"]
REFER = ["eval", "refer", "--vlm", f"replay:{ANSWERS}", "--limit", "8"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env() -> dict:
    return {**os.environ, "RS_HELPERS_PROFILE": "tiny", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def launch(launcher: str, args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    if launcher == "one":
        cmd = [sys.executable, "-m", "rs_helpers", *args]
    elif launcher == "torchrun":
        cmd = [str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", str(free_port()),
               "-m", "rs_helpers", *args]
    else:
        cmd = [str(BIN / "accelerate"), "launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
               "-m", "rs_helpers", *args]
    return subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)


def scores(path: Path) -> dict:
    data = json.loads(path.read_text())
    return data["summary"] if "summary" in data and "groups" not in data else {
        g["name"]: (g["ours"], g["confusion"], g["unmatched"], g["n_images"]) for g in data["groups"]}


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The reference: one process, uninterrupted."""
    folder = tmp_path_factory.mktemp("single")
    for args, out in ((OVSS, "ovss.json"), (REFER, "refer.json")):
        done = launch("one", [*args, "--out", out], folder)
        assert done.returncode == 0, done.stderr[-2000:]
    return folder


@pytest.mark.parametrize("kind,launcher", [("ovss", "accelerate"), ("refer", "torchrun")])
def test_two_processes_give_exactly_the_metrics_of_one(single, tmp_path, kind, launcher):
    args = OVSS if kind == "ovss" else REFER
    done = launch(launcher, [*args, "--out", "e.json"], tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert scores(tmp_path / "e.json") == scores(single / f"{kind}.json")
    # rank 0 alone writes the report and folds both ranks' records into one results file
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["e.json", "e.results.jsonl"] + (["e_images.csv", "e_summary.csv"] if kind == "ovss" else []))
    records = (tmp_path / "e.results.jsonl").read_text().splitlines()
    assert len(records) == 1 + (4 if kind == "ovss" else 8)
    assert done.stdout.count("wrote " if kind == "ovss" else "per-sample results written") == 1


def test_train_lora_runs_data_parallel_and_its_adapter_loads(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from lora_examples import write_examples

    train = write_examples(tmp_path / "data")
    done = launch("torchrun", ["train-lora", "--train", str(train), "--out", "adapter", "--rank", "4", "--alpha",
                               "8", "--max-steps", "3", "--batch-size", "1", "--grad-accum", "1", "--quiet",
                               "--device", "cpu", "--gradient-checkpointing"], tmp_path)  # as on GPUs
    assert done.returncode == 0, done.stderr[-3000:]
    assert "terminate called" not in done.stderr  # rank 1 waited for rank 0 to save before leaving
    assert "data parallel over 2 processes: effective batch 1 x 1 x 2 = 2" in done.stdout
    info = json.loads((tmp_path / "adapter" / "rs_train_settings.json").read_text())
    assert info["processes"] == 2 and info["global_step"] == 3 and info["effective_batch"] == 2
    assert info["gradient_checkpointing"] is True

    from peft import PeftModel
    from rs_helpers.models.qwen import load_qwen

    qwen = load_qwen(profile="tiny", device="cpu")
    model = PeftModel.from_pretrained(qwen.model, str(tmp_path / "adapter"))
    assert any("lora_A" in name for name, _ in model.named_parameters())


def records_in(path: Path) -> int:
    return max(0, path.read_bytes().count(b"\n") - 1) if path.exists() else 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_an_eval_killed_midway_resumes_to_the_uninterrupted_metrics(single, tmp_path, sig):
    results = tmp_path / "e.results.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "rs_helpers", *OVSS, "--out", "e.json"], cwd=tmp_path,
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while records_in(results) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the eval finished before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if sig == signal.SIGINT else -9)
    kept = records_in(results)
    assert 1 <= kept < 4 and not (tmp_path / "e.json").exists()
    if sig == signal.SIGINT:
        assert f"{kept} finished samples are kept in e.results.jsonl" in err and "Traceback" not in err
    done = launch("one", [*OVSS, "--out", "e.json"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming: {kept} samples already in e.results.jsonl" in done.stderr
    assert scores(tmp_path / "e.json") == scores(single / "ovss.json")
    # a finished eval rerun with the same settings prints the same report, computing nothing
    again = launch("one", [*OVSS, "--out", "e.json"], tmp_path)
    assert again.returncode == 0 and "4 of them read back from the results file" in again.stdout
    assert "tiny model in use" not in again.stderr  # no model was even loaded
    assert scores(tmp_path / "e.json") == scores(single / "ovss.json")


def test_a_rerun_with_other_settings_exits_2_and_fresh_starts_over(single, tmp_path):
    for name in ("ovss.json", "ovss.results.jsonl", "ovss_images.csv", "ovss_summary.csv"):
        (tmp_path / name).write_bytes((single / name).read_bytes())
    before = (tmp_path / "ovss.results.jsonl").read_bytes()
    other = launch("one", [*OVSS, "--out", "ovss.json", "--tau", "0.3"], tmp_path)
    assert other.returncode == 2 and "other settings (tau: 0.5 then, 0.3 now)" in other.stderr
    assert (tmp_path / "ovss.results.jsonl").read_bytes() == before
    fresh = launch("one", [*OVSS, "--out", "ovss.json", "--tau", "0.3", "--fresh"], tmp_path)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    header = json.loads((tmp_path / "ovss.results.jsonl").read_text().splitlines()[0])
    assert header["settings"]["tau"] == 0.3 and records_in(tmp_path / "ovss.results.jsonl") == 4


def test_two_processes_share_the_tiles_of_one_scene_and_write_the_same_map(tmp_path):
    import numpy as np
    import rasterio

    scene = Path(__file__).resolve().parents[1] / "data" / "samples" / "spacenet_ccbysa4" / "atlanta_sn4_pan.tif"
    args = ["ovss", str(scene), "--classes", "building;road;tree", "--tile", "256", "--overlap", "32",
            "--points-per-side", "4"]
    one = launch("one", [*args, "--out", "one.tif"], tmp_path)
    two = launch("torchrun", [*args, "--out", "two.tif"], tmp_path)
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-3000:]
    assert "tiles of 256 px, shared by 2 processes" in two.stdout and two.stdout.count("wrote two.tif") == 1
    with rasterio.open(tmp_path / "one.tif") as a, rasterio.open(tmp_path / "two.tif") as b:
        assert np.array_equal(a.read(), b.read()) and a.profile == b.profile and a.crs == b.crs
        assert a.tags() == b.tags() and a.colormap(1) == b.colormap(1)
    # the parts are gone: only the two maps and their legends are left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.legend.json", "one.tif", "two.legend.json", "two.tif"]
