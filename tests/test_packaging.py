"""Packaging stays consistent: environment.yml vs pyproject, README commands vs Makefile and CI."""
from __future__ import annotations

import re
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_environment_yml_agrees_with_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = {_name(d): d for d in _pyproject()["project"]["dependencies"]}
    conda = [d for d in env["dependencies"] if isinstance(d, str) and _name(d) not in ("python", "pip")]
    for item in conda:
        spec = item.replace(" ", "")
        assert _name(spec) in deps, f"{item} is not a dependency in pyproject.toml"
        assert spec.lower() == deps[_name(spec)].replace(" ", "").lower(), f"{item} != {deps[_name(spec)]}"
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert any(re.fullmatch(r'-e\s+"?\.\[notebooks,dev\]"?', p) for p in pip), "environment.yml must install this package"


def test_console_script_and_module_entry_points():
    assert _pyproject()["project"]["scripts"]["rs-seg"] == "rs_helpers.cli:main"
    assert (ROOT / "rs_helpers" / "__main__.py").exists()


def test_torch_ranges_leave_colab_torch_alone():
    deps = {_name(d): d for d in _pyproject()["project"]["dependencies"]}
    for name in ("torch", "torchvision", "transformers"):
        assert "==" not in deps[name] and "<" not in deps[name], f"{name} must not be pinned: {deps[name]}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:", makefile, re.M) and re.search(r"^demo:", makefile, re.M)


def test_version_matches_package():
    import rs_helpers

    assert _pyproject()["project"]["version"] == rs_helpers.__version__


def test_min_versions_match_the_lower_bounds():
    """.ci/min-versions.txt (what `make test-min` installs) pins every runtime dependency to its
    pyproject lower bound, so the bounds Colab users may get are the ones CI tested."""
    lines = [line.strip() for line in (ROOT / ".ci" / "min-versions.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    pins = {_name(line): line.split("==", 1)[1].removesuffix(".*") for line in lines}
    for dep in _pyproject()["project"]["dependencies"]:
        name = _name(dep)
        if name in ("torch", "torchvision"):  # the Makefile's TORCH_SPEC, from this machine's disk
            continue
        floor = re.search(r">=\s*([\w.]+)", dep).group(1)
        assert pins.get(name) == floor, f"{dep}: .ci/min-versions.txt pins {name}=={pins.get(name)}"
    assert "make test-min" in (ROOT / ".ci" / "run").read_text()
