"""The full-profile settings of every notebook name things that exist.

CI runs the notebooks under the tiny profile, where ``pick(full=..., tiny=...)`` replaces some
full values; those full values (the ones Colab users run) are checked here instead: model names,
sample and query names, template sets, and numbers of the same kind as their tiny stand-ins.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "scripts" / "notebooks").glob("[0-9][0-9]_*.py"))  # not the _colab_setup.py template


def settings_of(source: Path) -> tuple[dict, dict]:
    """The ``full`` and ``tiny`` dicts of the notebook's ``pick(...)`` call, evaluated."""
    calls = [node for node in ast.walk(ast.parse(source.read_text()))
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "pick"]
    assert len(calls) == 1, f"{source.name}: one settings cell with one pick(...)"
    values = {kw.arg: eval(compile(ast.Expression(kw.value), source.name, "eval"), {"dict": dict})  # noqa: S307
              for kw in calls[0].keywords}
    return values["full"], values.get("tiny", {})


@pytest.fixture(scope="module")
def names():
    import open_clip

    from rs_helpers.samples import list_samples, load_referring
    from rs_helpers.models.checkpoints import SAM_CHECKPOINTS

    return {"sam": set(SAM_CHECKPOINTS), "clip": set(open_clip.list_models()),
            "samples": {s.name for s in list_samples()}, "queries": [q.id for q in load_referring()]}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_full_settings_name_real_things(source, names):
    from rs_helpers.ovss.vocabulary import get_templates

    full, tiny = settings_of(source)
    assert set(tiny) <= set(full), f"tiny overrides keys the full profile lacks: {set(tiny) - set(full)}"
    for key, value in full.items():
        if key == "sam":
            assert value in names["sam"]
        elif key == "clip":
            assert value in names["clip"]
        elif key in ("sample", "binary_sample"):
            assert value in names["samples"]
        elif key == "samples":
            assert value is None or set(value) <= names["samples"]
        elif key == "templates":
            assert len(get_templates(value)) >= 1
        elif key == "example":
            assert value in names["queries"] if isinstance(value, str) else 0 <= value < len(names["queries"])
        elif key == "sample_ids":
            assert value is None or set(value) <= set(names["queries"])
        elif key in ("model_id", "base"):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+", value), value
        elif key == "queries":
            assert 1 <= value <= len(names["queries"])
    for key, cheap in tiny.items():
        real = full[key]
        if key == "templates":
            assert len(get_templates(cheap)) >= 1
        if real is None or cheap is None:
            continue  # "all" / "not used" on one side
        assert type(real) is type(cheap) or {type(real), type(cheap)} <= {int, float}, (key, real, cheap)
        if isinstance(real, (int, float)) and not isinstance(real, bool):
            assert real > 0 and cheap > 0, key


def test_scene_tiles_fall_on_a_regular_grid():
    """09's full settings tile its scenes on regular grids: no last row or column shifted back a
    few pixels (tile 512 with overlap 128 on Atlanta's 900 px gave starts 0, 384, 388)."""
    from rs_helpers.geo import describe
    from rs_helpers.geo.tiling import tile_starts
    from rs_helpers.samples import get_sample

    full, _ = settings_of(ROOT / "scripts" / "notebooks" / "09_geotiff_scenes.py")
    atlanta = describe(get_sample("atlanta_buildings").image)
    chesapeake = describe(get_sample("chesapeake_tile").image)
    cases = [(atlanta, full["atlanta_tile"], full["atlanta_overlap"]), (atlanta, full["atlanta_plain_tile"], 0),
             (chesapeake, full["chesapeake_tile"], full["chesapeake_overlap"])]
    for facts, tile, overlap in cases:
        for length in (facts["height"], facts["width"]):
            starts = tile_starts(length, tile, overlap)
            assert len(starts) >= 2, (tile, overlap)
            steps = {b - a for a, b in zip(starts, starts[1:])}
            assert steps == {tile - overlap}, f"tile {tile}, overlap {overlap} on {length} px: starts {starts}"
