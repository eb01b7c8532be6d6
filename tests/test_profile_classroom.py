"""The classroom profile, the random-weights timing mode and the measured compute times."""
from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from rs_helpers.errors import BadInputError
from rs_helpers.profile import PROFILES, RANDOM_WEIGHTS_ENV, banner_html, get_profile, is_tiny, random_weights
from rs_helpers.teaching import timings as T
from rs_helpers.teaching.notebook import pick

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fresh_announcements(monkeypatch):
    """Each model is announced once per process: forget earlier tests' announcements."""
    import rs_helpers.profile

    monkeypatch.setattr(rs_helpers.profile, "_announced", set())


@pytest.fixture
def random_mode(monkeypatch):
    monkeypatch.setenv(RANDOM_WEIGHTS_ENV, "1")


@pytest.fixture
def no_network(monkeypatch):
    """Any download or reachability check fails the test: random weights need none."""
    import rs_helpers.models.checkpoints as checkpoints

    def refuse(*args, **kwargs):
        raise AssertionError("a random-weights build tried to reach the network")

    monkeypatch.setattr(checkpoints, "fetch", refuse)
    monkeypatch.setattr(checkpoints, "host_reachable", refuse)
    for module in ("rs_helpers.models.sam", "rs_helpers.models.clip", "rs_helpers.ovss.simfeatup",
                   "rs_helpers.models.qwen"):
        mod = sys.modules.get(module) or __import__(module, fromlist=["x"])
        for name in ("fetch", "host_reachable"):
            if hasattr(mod, name):
                monkeypatch.setattr(mod, name, refuse)


# ----------------------------------------------------------------------------- the profile itself
def test_classroom_is_a_real_weights_profile():
    assert PROFILES == ("full", "classroom", "tiny")
    assert get_profile("Classroom ") == "classroom"
    assert not is_tiny("classroom")
    assert "Classroom profile" in banner_html("classroom") and "MEANINGLESS" not in banner_html("classroom")
    with pytest.raises(BadInputError, match="unknown profile 'lab'"):
        get_profile("lab")


def test_pick_overrides_per_profile_and_refuses_unknown_keys():
    full = dict(sam="vit_l", points_per_side=29, max_side=1024)
    classroom = dict(sam="vit_b", points_per_side=16, max_side=512)
    tiny = dict(points_per_side=4)
    assert pick(full, tiny, profile="full", classroom=classroom) == {**full, "profile": "full"}
    assert pick(full, tiny, profile="classroom", classroom=classroom) == {**classroom, "profile": "classroom"}
    assert pick(full, tiny, profile="tiny", classroom=classroom) == {**full, "points_per_side": 4, "profile": "tiny"}
    assert pick(full, tiny, profile="classroom") == {**full, "profile": "classroom"}  # no classroom= given
    with pytest.raises(BadInputError, match="classroom sets grid"):
        pick(full, tiny, profile="full", classroom=dict(grid=3))


def test_random_weights_is_off_by_default_and_never_tiny(monkeypatch):
    monkeypatch.delenv(RANDOM_WEIGHTS_ENV, raising=False)
    assert not random_weights("full")
    for value, expected in (("1", True), ("yes", True), ("0", False), ("", False)):
        monkeypatch.setenv(RANDOM_WEIGHTS_ENV, value)
        assert random_weights("classroom") is expected
        assert random_weights("tiny") is False
    monkeypatch.setenv(RANDOM_WEIGHTS_ENV, "1")
    assert "RANDOM WEIGHTS" in banner_html("full") and "MEANINGLESS" in banner_html("full")


def test_cli_accepts_the_classroom_profile():
    import argparse

    from rs_helpers.commands.options import add_common

    parser = argparse.ArgumentParser()
    add_common(parser)
    assert parser.parse_args(["--profile", "classroom"]).profile == "classroom"


# ----------------------------------------------------------------------------- random weights
def test_random_sam_is_the_real_architecture_built_offline(random_mode, no_network, capsys):
    from rs_helpers.models import load_sam

    sam = load_sam("vit_b", profile="classroom", device="cpu")
    assert sam.image_encoder.patch_embed.proj.weight.shape[0] == 768  # ViT-B, not the tiny 64
    assert sam.image_encoder.img_size == 1024
    assert sum(p.numel() for p in sam.parameters()) > 90e6
    assert "RANDOM WEIGHTS" in capsys.readouterr().err
    with pytest.raises(BadInputError, match="unknown SAM variant"):
        load_sam("vit_q", profile="full")


def test_random_clip_and_upsampler_built_offline(random_mode, no_network, capsys):
    from rs_helpers.models import load_clip
    from rs_helpers.ovss.clip_only import load_upsampler

    clip = load_clip("ViT-B-16", profile="full", device="cpu")
    assert clip.pretrained is None and clip.name == "ViT-B-16"
    assert clip.model.visual.output_dim == 512 and clip.model.visual.transformer.width == 768
    up = load_upsampler("simfeatup", clip, profile="full")
    assert up.feat_dim == 512
    err = capsys.readouterr().err
    assert "random weights in use: CLIP ViT-B-16" in err and "SimFeatUp" in err


def test_random_qwen_uses_the_published_sizes_and_the_real_pixel_limits(random_mode, monkeypatch):
    """The 2B model costs a minute and 10 GB to build: the same code on a small size table."""
    import numpy as np

    from rs_helpers.models import random_weights as R
    from rs_helpers.models.qwen import load_qwen

    small = dict(text=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, head_dim=16, vocab_size=1024),
                 vision=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                             num_position_embeddings=256, deepstack_visual_indexes=[0, 1]),
                 mrope_section=[4, 2, 2], rope_theta=5_000_000.0)
    monkeypatch.setitem(R.RANDOM_QWEN, "test/qwen-small", small)
    qwen = load_qwen("test/qwen-small", profile="classroom", device="cpu")
    text = qwen.model.config.text_config
    assert (text.hidden_size, text.num_hidden_layers, text.num_key_value_heads) == (64, 2, 2)
    assert qwen.processor.image_processor.size == {"shortest_edge": R.QWEN_MIN_PIXELS,
                                                   "longest_edge": R.QWEN_MAX_PIXELS}
    # a 512 x 512 image costs what the real processor makes of it: (512/32)^2 = 256 image tokens
    from rs_helpers.refer.vlm_qwen import build_messages, to_pil

    image = np.zeros((512, 512, 3), np.uint8)
    messages = build_messages(to_pil(image), "the road", None)
    inputs = qwen.processor.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,
                                                return_dict=True, return_tensors="pt")
    pad = qwen.processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((inputs["input_ids"] == pad).sum()) == 256
    with pytest.raises(BadInputError, match="knows the sizes of"):
        load_qwen("someone/unknown-vl", profile="full", device="cpu")
    assert R.QWEN3_VL_2B["text"]["num_hidden_layers"] == 28


def test_random_mode_refuses_what_it_cannot_build(random_mode):
    from rs_helpers.models.sam_tracker import load_click_segmenter

    with pytest.raises(BadInputError, match="not SAM 2"):
        load_click_segmenter("sam2", profile="full", device="cpu")


def test_tiny_profile_ignores_random_mode(random_mode, capsys):
    from rs_helpers.models import load_sam

    sam = load_sam("vit_l", profile="tiny", device="cpu")
    assert sam.image_encoder.patch_embed.proj.weight.shape[0] == 64
    err = capsys.readouterr().err
    assert "TINY PROFILE" in err and "RANDOM WEIGHTS" not in err


# ----------------------------------------------------------------------------- measured times
def _executed(durations: list[float | None]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("# title"))
    start = datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
    for index, seconds in enumerate(durations):
        cell = nbformat.v4.new_code_cell(f"\n# step {index}\nx = {index}")
        if seconds is not None:
            end = start + datetime.timedelta(seconds=seconds)
            cell.metadata["execution"] = {"iopub.execute_input": start.isoformat().replace("+00:00", "Z"),
                                          "shell.execute_reply": end.isoformat().replace("+00:00", "Z")}
            start = end + datetime.timedelta(seconds=100)  # the gaps between cells are not counted
        nb.cells.append(cell)
    return nb


def test_notebook_time_sums_the_cells_and_names_the_slowest():
    measured = T.notebook_time(_executed([1.5, 30.0, 0.25, 12.0]), keep=2)
    assert measured.seconds == pytest.approx(43.75)
    assert measured.slowest == [(2, 30.0, "# step 1"), (4, 12.0, "# step 3")]
    with pytest.raises(ValueError, match="cell 2 has no execution timestamps"):
        T.notebook_time(_executed([1.0, None]))


def test_minutes_reads_naturally():
    assert [T.minutes(s) for s in (42, 90, 3599)] == ["42 s", "1.5 min", "60 min"]


def test_timings_round_trip_and_render(tmp_path):
    run = {"machine": "cpu, 2 cores (x86_64)", "date": "2026-12-01", "commit": "abc1234",
           "random_weights": True, "torch": "2.14.1"}
    timings = T.record({}, "classroom", "cpu", "01_sam", T.notebook_time(_executed([100.0, 200.0])), run)
    assert T.record(timings, "classroom", "cpu", "02_clip", T.notebook_time(_executed([5.0])), run) != timings
    T.save_timings(tmp_path, timings)
    assert T.load_timings(tmp_path) == timings
    assert json.loads((tmp_path / T.TIMINGS_FILE).read_text())["classroom/cpu"]["notebooks"]["01_sam"]["seconds"] == 300.0
    assert T.load_timings(tmp_path / "missing") == {}
    line = T.compute_line("01_sam", timings)
    assert "classroom profile on a CPU: 5.0 min (cpu, 2 cores (x86_64), random weights, 2026-12-01)" in line
    assert "full profile on a GPU: not measured" in line
    assert "classroom profile on a CPU: not measured" in T.compute_line("02_clip", timings)
    table = T.readme_table(["01_sam", "02_clip"], timings)
    assert "| 01_sam | 5.0 min | not measured | cell 2: 3.3 min (`# step 1`) |" in table
    assert "| 02_clip | not measured | not measured | - |" in table
    assert "full profile, GPU: not measured yet." in table
    text = f"intro\n{T.README_START}\nold\n{T.README_END}\noutro\n"
    assert T.replace_readme_table(text, table) == f"intro\n{table}\noutro\n"
    with pytest.raises(ValueError, match="no compute-time markers"):
        T.replace_readme_table("no markers", table)


def test_time_notebooks_script_measures_a_notebook(tmp_path):
    """The script end to end on notebook 00 (no models), as a dry run: nothing is written."""
    before = (ROOT / "notebooks" / T.TIMINGS_FILE).read_bytes() if (ROOT / "notebooks" / T.TIMINGS_FILE).exists() else None
    result = subprocess.run([sys.executable, "scripts/time_notebooks.py", "00_setup_and_data", "--dry-run"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "profile classroom" in result.stdout and "RANDOM weights" in result.stdout
    assert "00_setup_and_data:" in result.stdout and " s in cells" in result.stdout
    after = (ROOT / "notebooks" / T.TIMINGS_FILE).read_bytes() if (ROOT / "notebooks" / T.TIMINGS_FILE).exists() else None
    assert after == before
    bad = subprocess.run([sys.executable, "scripts/time_notebooks.py", "99_nothing"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no notebook 99_nothing" in bad.stderr


def _time_notebooks_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("time_notebooks_under_test", ROOT / "scripts" / "time_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("measured_first,how", [(False, "python"), (True, "python"), (True, "nbclient")])
def test_time_notebooks_ctrl_c_keeps_what_it_measured_without_a_traceback(tmp_path, monkeypatch, capsys,
                                                                          measured_first, how):
    """Ctrl-C during the second notebook: exit 130, one line on stderr, the first notebook's figure kept in
    --out. "nbclient": its own SIGINT handler shuts the kernel down and the cell dies with an error instead."""
    import rs_helpers.teaching.demo as demo

    calls = []

    class FakeClient:
        def __init__(self, nb):
            self.nb = nb

        def execute(self):
            calls.append(1)
            if len(calls) == 2 or not measured_first:
                if how == "nbclient":
                    self._async_cleanup_kernel_future = object()
                    raise RuntimeError("Kernel died")
                raise KeyboardInterrupt
            for cell in self.nb.cells:  # what nbclient leaves in an executed notebook
                if cell.cell_type == "code":
                    cell.metadata["execution"] = {"iopub.execute_input": "2026-12-01T10:00:00.000000Z",
                                                  "shell.execute_reply": "2026-12-01T10:00:02.500000Z"}

    monkeypatch.setattr(demo, "notebook_client", lambda nb, timeout, path: FakeClient(nb))
    monkeypatch.setenv("RS_HELPERS_PROFILE", "tiny")  # the script sets these three; restored after the test
    monkeypatch.delenv(RANDOM_WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    out = tmp_path / "t.json"
    code = _time_notebooks_module().main(["00_setup_and_data", "01_sam_grid_proposals", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 130 and "Traceback" not in err and "interrupted" in err
    if measured_first:
        saved = json.loads(out.read_text())
        (profile_kind,) = saved
        assert profile_kind == "classroom/cpu" and set(saved[profile_kind]["notebooks"]) == {"00_setup_and_data"}
        assert "1 notebook(s) measured before it (00_setup_and_data)" in err
    else:
        assert not out.exists() and "0 notebook(s)" in err


def test_time_notebooks_a_dead_kernel_without_ctrl_c_is_a_failed_notebook(tmp_path, monkeypatch, capsys):
    import rs_helpers.teaching.demo as demo

    class DyingClient:
        def __init__(self, nb):
            pass

        def execute(self):
            raise RuntimeError("Kernel died")

    monkeypatch.setattr(demo, "notebook_client", lambda nb, timeout, path: DyingClient(nb))
    monkeypatch.setenv("RS_HELPERS_PROFILE", "tiny")
    monkeypatch.delenv(RANDOM_WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    code = _time_notebooks_module().main(["00_setup_and_data", "--out", str(tmp_path / "t.json")])
    captured = capsys.readouterr()
    assert code == 1 and "00_setup_and_data: FAILED" in captured.out and "RuntimeError: Kernel died" in captured.out
    assert "1 failed: 00_setup_and_data" in captured.err and "Traceback" not in captured.err


def test_gallery_refuses_random_weight_runs(tmp_path):
    """A timing run's figures are as meaningless as tiny ones: never in the gallery."""
    from rs_helpers.teaching.gallery import META_KEY, build_gallery

    nb = nbformat.v4.new_notebook()
    nb.metadata[META_KEY] = {"profile": "full", "random_weights": True}
    (tmp_path / "run").mkdir()
    nbformat.write(nb, tmp_path / "run" / "01_a.ipynb")
    with pytest.raises(BadInputError, match="random weights"):
        build_gallery(tmp_path / "run", tmp_path / "gallery")
    assert not (tmp_path / "gallery").exists()


def test_run_record_says_whether_weights_were_random(monkeypatch):
    from rs_helpers.teaching.gallery import run_record

    monkeypatch.setenv("RS_HELPERS_PROFILE", "classroom")
    monkeypatch.setenv(RANDOM_WEIGHTS_ENV, "1")
    assert run_record()["random_weights"] is True and run_record()["profile"] == "classroom"
    monkeypatch.delenv(RANDOM_WEIGHTS_ENV)
    assert run_record()["random_weights"] is False


def test_merge_timings_adds_a_device_run():
    mine = {"classroom/cpu": {"machine": "cpu", "notebooks": {"01": {"seconds": 5.0}, "02": {"seconds": 7.0}}}}
    incoming = {"full/gpu": {"machine": "cuda, NVIDIA H200", "notebooks": {"01": {"seconds": 2.0}}},
                "classroom/cpu": {"machine": "cpu 2", "notebooks": {"02": {"seconds": 6.0}}}}
    merged = T.merge_timings(mine, incoming)
    assert merged["full/gpu"]["notebooks"] == {"01": {"seconds": 2.0}}
    assert merged["classroom/cpu"] == {"machine": "cpu 2", "notebooks": {"01": {"seconds": 5.0}, "02": {"seconds": 6.0}}}
    assert mine["classroom/cpu"]["notebooks"]["02"] == {"seconds": 7.0}  # not changed in place
    for bad in ([], {"full/gpu": 3}, {"full/gpu": {"machine": "x"}}):
        with pytest.raises(ValueError, match="not a timings file"):
            T.merge_timings(mine, bad)


def test_gpu_check_notebooks_stage_writes_timings_to_out(tmp_path):
    """check.sh's notebooks stage in quick mode, here on the CPU: the timings come back in $OUT."""
    import os

    out = tmp_path / "out"
    env = dict(os.environ, GPU_CHECK_DEVICE="cpu", GPU_CHECK_QUICK="1", GPU_CHECK_STAGES="notebooks",
               PYTHON=sys.executable, OUT=str(out), WHEELS=str(tmp_path / "no_wheels"))
    done = subprocess.run(["bash", str(ROOT / "scripts/gpu/check.sh")], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "-- notebooks: exit 0" in (out / "summary.txt").read_text()
    timings = json.loads((out / "timings.json").read_text())
    entry = timings["classroom/cpu"]
    assert entry["random_weights"] is True and set(entry["notebooks"]) == {"00_setup_and_data"}
    assert entry["notebooks"]["00_setup_and_data"]["seconds"] > 0


# ----------------------------------------------------------------------------- the notebooks
SOURCES = sorted((ROOT / "scripts" / "notebooks").glob("[0-9][0-9]_*.py"))
MODEL_LOADERS = ("load_sam(", "load_clip(", "load_sam3(", "make_backend(\"qwen", "load_base(", "make_backend(f\"qwen")


def _settings(source: Path, profile: str, monkeypatch) -> dict:
    """Run a notebook's settings cell (the one with ``S = pick(``) under ``profile``."""
    import jupytext

    monkeypatch.setenv("RS_HELPERS_PROFILE", profile)
    nb = jupytext.read(source, fmt="py:percent")
    [cell] = [c for c in nb.cells if c.cell_type == "code" and "S = pick(" in c.source]
    namespace: dict = {}
    exec(compile(cell.source, str(source), "exec"), namespace)  # noqa: S102
    return namespace["S"]


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_every_header_shows_the_measured_compute_time(source):
    """The header's compute line is the one timings.json gives (or says "not measured")."""
    text = source.read_text()
    header = text.split("# %%", 2)[1]
    assert "{{COMPUTE}}" in header and "**Time.**" in header
    nb = nbformat.read(ROOT / "notebooks" / f"{source.stem}.ipynb", as_version=4)
    line = T.compute_line(source.stem, T.load_timings(ROOT / "notebooks"))
    assert line in nb.cells[0].source and "{{COMPUTE}}" not in nb.cells[0].source


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_classroom_settings_are_smaller_than_full_ones(source, monkeypatch):
    full, classroom = _settings(source, "full", monkeypatch), _settings(source, "classroom", monkeypatch)
    assert classroom["profile"] == "classroom" and set(classroom) == set(full)
    if not any(loader in source.read_text() for loader in MODEL_LOADERS):
        return  # no model runs (00)
    assert classroom != {**full, "profile": "classroom"}, "a notebook that runs models has classroom settings"
    if "sam" in full:
        assert classroom["sam"] == "vit_b"
    if "points_per_side" in full:
        assert classroom["points_per_side"] <= 16
    if "max_side" in full:
        assert classroom["max_side"] <= 512
    for key in ("samples", "sample_ids"):
        if key in full:
            assert classroom[key] is not None and (full[key] is None or len(classroom[key]) <= len(full[key]))
    if "max_steps" in full:
        assert classroom["max_steps"] is not None and classroom["max_steps"] <= 10


def test_the_readme_table_is_the_one_timings_json_gives():
    readme = (ROOT / "notebooks" / "README.md").read_text()
    names = [s.stem for s in SOURCES]
    table = T.readme_table(names, T.load_timings(ROOT / "notebooks"))
    assert table in readme, "run python scripts/time_notebooks.py (or --merge) to remake the table"
    assert "### Compute time" in readme  # the headers link to #compute-time
