"""The notebooks' first cell, executed as Colab would run it: against a local bare clone of this
repository, with a fake ``google.colab`` module and pip replaced by a recording stub (nothing is
installed). Also: every Colab link (notebook badges, README table) and the cell's clone agree on
one ref, ``build_notebooks.COLAB_REF``."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import types
from importlib import metadata
from pathlib import Path

import pytest

import rs_helpers.teaching  # noqa: F401  (imported before the cell puts the clone first on sys.path)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import build_notebooks  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
COLAB_LINK = re.compile(r"colab\.research\.google\.com/github/([^)\s]+?)/blob/([^/)\s]+)/notebooks/([\w.-]+\.ipynb)")
REAL_RUN = subprocess.run


def _text(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _git(*args, cwd=None) -> str:
    return REAL_RUN(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def bare_repo(tmp_path_factory) -> Path:
    """A bare clone of this checkout, with COLAB_REF pointing at HEAD where the checkout lacks it
    (a detached CI checkout)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the repository")
    bare = tmp_path_factory.mktemp("origin") / "rs-text-seg.git"
    _git("clone", "--quiet", "--bare", str(ROOT), str(bare))
    ref = f"refs/heads/{build_notebooks.COLAB_REF}"
    if REAL_RUN(["git", "-C", str(bare), "show-ref", "--verify", "--quiet", ref]).returncode != 0:
        _git("-C", str(bare), "update-ref", ref, _git("-C", str(ROOT), "rev-parse", "HEAD"))
    return bare


class Colab:
    """The fake Colab runtime: google.colab in sys.modules, /content under tmp, pip recorded."""

    def __init__(self, monkeypatch, tmp_path: Path, pip_returncode: int = 0):
        self.root = tmp_path / "content"
        self.root.mkdir()
        self.pip_calls: list[list[str]] = []
        self.mounted: list[str] = []
        self.pip_returncode = pip_returncode
        colab = types.ModuleType("google.colab")
        drive = types.ModuleType("google.colab.drive")
        drive.mount = self._mount
        colab.drive = drive
        monkeypatch.setitem(sys.modules, "google.colab", colab)
        monkeypatch.setitem(sys.modules, "google.colab.drive", drive)
        monkeypatch.setenv("RS_HELPERS_COLAB_ROOT", str(self.root))
        for name in ("RS_HELPERS_PROFILE", "RS_HELPERS_CACHE", "HF_HOME", "RS_HELPERS_REPO_URL"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr(subprocess, "run", self._run)
        monkeypatch.setattr(sys, "path", list(sys.path))
        monkeypatch.chdir(tmp_path)

    def _mount(self, path: str) -> None:
        self.mounted.append(path)
        (Path(path) / "MyDrive").mkdir(parents=True, exist_ok=True)

    def _run(self, command, *args, **kwargs):
        if list(command[1:4]) == ["-m", "pip", "install"]:
            self.pip_calls.append(list(command))
            return subprocess.CompletedProcess(command, self.pip_returncode, "",
                                               "" if self.pip_returncode == 0 else "ERROR: No matching distribution")
        return REAL_RUN(command, *args, **kwargs)

    @property
    def suite_dir(self) -> Path:
        return self.root / "rs-text-seg"


def run_cell(**switches) -> dict:
    """Execute the generated setup cell, after the edits a student would make to its switches."""
    source = build_notebooks.setup_cell()
    for name, value in switches.items():
        line = re.search(rf"^{name} = .*$", source, re.M)
        assert line, f"the cell has no {name} switch"
        source = source.replace(line.group(), f"{name} = {value!r}")
    namespace: dict = {"__name__": "__main__"}
    exec(compile(source, "<setup cell>", "exec"), namespace)  # noqa: S102
    return namespace


# --------------------------------------------------------------------------- on Colab
def test_fresh_runtime_clones_the_badge_ref_and_installs_without_torch(bare_repo, monkeypatch, tmp_path, capsys):
    colab = Colab(monkeypatch, tmp_path)
    monkeypatch.setenv("RS_HELPERS_REPO_URL", str(bare_repo))
    namespace = run_cell()
    suite = colab.suite_dir
    assert (suite / "pyproject.toml").is_file() and (suite / "notebooks").is_dir()
    assert _git("-C", str(suite), "rev-parse", "HEAD") == _git("-C", str(bare_repo), "rev-parse",
                                                                build_notebooks.COLAB_REF)
    assert namespace["SUITE_REF"] == build_notebooks.COLAB_REF
    assert Path.cwd() == suite / "notebooks" and sys.path[0] == str(suite)
    assert os.environ["RS_HELPERS_PROFILE"] == "full"

    [command] = colab.pip_calls
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    assert command[command.index("-e") + 1] == str(suite)
    requirements = [arg for arg in command[4:] if not arg.startswith("-")]
    assert not any(re.match(r"torch", Path(arg).name) for arg in requirements), command
    constraints = Path(command[command.index("-c") + 1]).read_text().split()
    assert f"torch=={metadata.version('torch')}" in constraints, "the preinstalled torch is pinned"
    assert all(line.split("==")[0] in ("torch", "torchvision", "torchaudio") for line in constraints)

    out = capsys.readouterr().out
    import torch

    if not torch.cuda.is_available():
        assert "Runtime > Change runtime type" in out, "without a GPU the cell says how to pick one"
    for size in ("1.2 GB", "0.6 GB", "4 GB"):
        assert size in out, "the first download's sizes are printed"
    assert "USE_DRIVE_CACHE = True" in out


def test_running_the_cell_again_does_not_clone_again(bare_repo, monkeypatch, tmp_path):
    colab = Colab(monkeypatch, tmp_path)
    monkeypatch.setenv("RS_HELPERS_REPO_URL", str(bare_repo))
    run_cell()
    monkeypatch.setenv("RS_HELPERS_REPO_URL", str(tmp_path / "gone.git"))  # a clone would fail now
    run_cell()
    assert len(colab.pip_calls) == 2


def test_clone_failure_stops_the_cell_with_a_clear_error(monkeypatch, tmp_path):
    if shutil.which("git") is None:
        pytest.skip("needs git")
    colab = Colab(monkeypatch, tmp_path)
    missing = tmp_path / "no-such-repo.git"
    monkeypatch.setenv("RS_HELPERS_REPO_URL", str(missing))
    with pytest.raises(RuntimeError) as err:
        run_cell()
    message = str(err.value)
    assert message.startswith("Setup stopped: cloning") and str(missing) in message
    assert "exit code" in message and "does not exist" in message  # git's own reason comes along
    assert colab.pip_calls == [], "nothing is installed after a failed clone"
    assert not colab.suite_dir.exists() and Path.cwd() == tmp_path


def test_install_failure_stops_the_cell_with_pips_message(bare_repo, monkeypatch, tmp_path):
    Colab(monkeypatch, tmp_path, pip_returncode=1)
    monkeypatch.setenv("RS_HELPERS_REPO_URL", str(bare_repo))
    with pytest.raises(RuntimeError, match=r"(?s)Setup stopped: installing the suite.*No matching distribution"):
        run_cell()
    assert Path.cwd() == tmp_path, "the cell stops before changing folder"


def test_drive_cache_sets_both_cache_folders_on_drive(bare_repo, monkeypatch, tmp_path):
    colab = Colab(monkeypatch, tmp_path)
    monkeypatch.setenv("RS_HELPERS_REPO_URL", str(bare_repo))
    run_cell(USE_DRIVE_CACHE=True)
    drive = colab.root / "drive"
    assert colab.mounted == [str(drive)]
    cache, hf = Path(os.environ["RS_HELPERS_CACHE"]), Path(os.environ["HF_HOME"])
    assert cache.is_dir() and hf.is_dir() and cache != hf
    assert drive / "MyDrive" in cache.parents and drive / "MyDrive" in hf.parents


def test_without_drive_cache_nothing_is_mounted(bare_repo, monkeypatch, tmp_path):
    colab = Colab(monkeypatch, tmp_path)
    monkeypatch.setenv("RS_HELPERS_REPO_URL", str(bare_repo))
    run_cell()
    assert colab.mounted == [] and "RS_HELPERS_CACHE" not in os.environ and "HF_HOME" not in os.environ


def test_profile_switch_sets_the_environment(bare_repo, monkeypatch, tmp_path, capsys):
    Colab(monkeypatch, tmp_path)
    monkeypatch.setenv("RS_HELPERS_REPO_URL", str(bare_repo))
    run_cell(PROFILE="tiny")
    assert os.environ["RS_HELPERS_PROFILE"] == "tiny"
    assert "1.2 GB" not in capsys.readouterr().out, "nothing to download under the tiny profile"
    monkeypatch.delenv("RS_HELPERS_PROFILE")  # a new kernel: nothing set outside
    run_cell(PROFILE="classroom")
    assert os.environ["RS_HELPERS_PROFILE"] == "classroom"
    out = capsys.readouterr().out
    assert "SAM ViT-B 0.4 GB" in out and "1.2 GB" not in out, "classroom downloads the smaller SAM"


# --------------------------------------------------------------------------- elsewhere
def test_outside_colab_the_cell_installs_nothing(monkeypatch, tmp_path):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    calls = []

    def record(command, *args, **kwargs):
        if any(word in str(part) for part in command for word in ("git", "pip")):
            calls.append(command)
        return REAL_RUN(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", record)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = list(sys.path)
    monkeypatch.setenv("RS_HELPERS_PROFILE", "tiny")  # set outside, as CI and `make` do
    run_cell(PROFILE="full")
    assert calls == [] and Path.cwd() == tmp_path and sys.path == before
    assert os.environ["RS_HELPERS_PROFILE"] == "tiny", "a profile set outside the notebook wins"
    monkeypatch.delenv("RS_HELPERS_PROFILE")
    run_cell(PROFILE="tiny")
    assert os.environ["RS_HELPERS_PROFILE"] == "tiny", "without one, the switch decides"


def test_every_notebook_runs_the_generated_cell():
    cell = build_notebooks.setup_cell()
    assert '\nPROFILE = "full"  # "classroom"' in "\n" + cell and "\nUSE_DRIVE_CACHE = False" in cell
    for path in NOTEBOOKS:
        code = [_text(c) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        assert code[0] == cell, f"{path.name}: the first code cell is not the generated setup cell"


# --------------------------------------------------------------------------- one ref for badges and clone
def _links(text: str) -> list[tuple[str, str, str]]:
    return COLAB_LINK.findall(text)


def test_badges_readme_and_clone_agree_on_one_ref():
    url, _ = build_notebooks.project_meta()
    slug = url.split("github.com/", 1)[1]
    ref = build_notebooks.COLAB_REF
    assert f'SUITE_REF = "{ref}"' in build_notebooks.setup_cell()
    assert f'"RS_HELPERS_REPO_URL", "{url}"' in build_notebooks.setup_cell()
    for path in NOTEBOOKS:
        links = _links(_text(json.loads(path.read_text())["cells"][0]))
        assert links == [(slug, ref, path.name)], f"{path.name}: its badge must open itself at {ref}"
    readme = _links((ROOT / "README.md").read_text())
    assert sorted(readme) == sorted((slug, ref, p.name) for p in NOTEBOOKS), (
        f"README.md's Colab links must open each notebook at {ref}")


def test_colab_ref_is_a_branch_of_this_repository():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout")
    branch = REAL_RUN(["git", "-C", str(ROOT), "symbolic-ref", "--quiet", "--short", "HEAD"],
                      capture_output=True, text=True).stdout.strip()
    if not branch:
        pytest.skip("detached checkout (CI): its branches are not all here")
    assert REAL_RUN(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet",
                     f"refs/heads/{build_notebooks.COLAB_REF}"], capture_output=True).returncode == 0, (
        f"COLAB_REF {build_notebooks.COLAB_REF!r} is not a branch here: the badges and the clone would fail")
