"""The prepared GPU check (scripts/gpu/check.sh) runs, here on the CPU with tiny models, and
writes the summary and JSON a device session reads back (see scripts/gpu/README.md)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_script_runs_in_quick_mode(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, GPU_CHECK_DEVICE="cpu", GPU_CHECK_QUICK="1", GPU_CHECK_STAGES="proposals pipeline",
               PYTHON=sys.executable, OUT=str(out), WHEELS=str(tmp_path / "no_wheels"))
    done = subprocess.run(["bash", str(ROOT / "scripts/gpu/check.sh")], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = (out / "summary.txt").read_text()
    assert "-- proposals: exit 0" in summary and "-- pipeline: exit 0" in summary
    assert "\nproposals: fast " in summary and "\npipeline: fast " in summary
    assert re.search(r"^\s*device\s+cpu$", summary, re.MULTILINE)
    proposals = json.loads((out / "bench_proposals.json").read_text())
    pipeline = json.loads((out / "bench_pipeline.json").read_text())
    assert proposals["device"] == pipeline["device"] == "cpu"
    assert "TINY PROFILE" in proposals["model"] and "TINY PROFILE" in pipeline["sam"]  # never read as results
    assert proposals["match"] and proposals["headline"] and pipeline["headline"]
    assert sorted(p.name for p in out.iterdir()) == ["bench_pipeline.json", "bench_proposals.json", "logs.txt",
                                                     "summary.txt"]  # few files: the device tool returns 8


def test_unknown_stage_is_refused(tmp_path):
    env = dict(os.environ, GPU_CHECK_DEVICE="cpu", GPU_CHECK_STAGES="nonsense", PYTHON=sys.executable,
               OUT=str(tmp_path), WHEELS=str(tmp_path / "no_wheels"))
    done = subprocess.run(["bash", str(ROOT / "scripts/gpu/check.sh")], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2 and "unknown stage: nonsense" in done.stdout
