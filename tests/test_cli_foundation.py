"""`rs-seg doctor` and `rs-seg info`: output on every sample, exit codes, no tracebacks."""
from __future__ import annotations

import subprocess
import sys

import pytest

from rs_helpers.cli import main
from rs_helpers.samples import list_samples


def test_doctor_lists_versions_device_and_weights(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for needle in ("torch", "transformers", "open_clip_torch", "device", "SAM vit_l", "cache folder", "profile"):
        assert needle in out


@pytest.mark.parametrize("sample", list_samples(), ids=lambda s: s.name)
def test_info_on_every_sample(sample, capsys):
    assert main(["info", str(sample.image)]) == 0
    out = capsys.readouterr().out
    assert "width" in out and "bands" in out
    if sample.image.suffix == ".tif":
        assert "EPSG:" in out  # the GeoTIFF samples show their CRS


def test_info_bad_image_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"garbage" * 20)
    proc = subprocess.run([sys.executable, "-m", "rs_helpers", "info", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("rs-seg: error:")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_ctrl_c_while_starting_is_one_line_and_exit_130(monkeypatch, capsys):
    """Building the parser imports torch and the models' code (seconds); Ctrl-C there is no traceback."""
    import rs_helpers.cli as cli

    def slow_imports():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", slow_imports)
    assert cli.main(["doctor"]) == 130
    assert capsys.readouterr().err == "rs-seg: interrupted while starting; nothing was written\n"
