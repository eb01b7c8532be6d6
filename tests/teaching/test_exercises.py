"""Exercise checkers, both ways: right answers pass, each common wrong answer fails with its own
message; hints and solutions exist; the notebooks hold the same solution cells as the modules."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rs_helpers.teaching import exercises
from rs_helpers.teaching.exercises import (
    Exercise,
    Incorrect,
    Message,
    nb00,
    nb01,
    nb02,
    nb03,
    nb04,
    nb05,
    nb06,
    nb07,
    nb08,
    nb09,
    nb10,
)
from rs_helpers.geo.tiling import tile_grid

ROOT = Path(__file__).resolve().parents[2]
MODULES = [nb00, nb01, nb02, nb03, nb04, nb05, nb06, nb07, nb08, nb09, nb10]
ALL = [(m, q) for m in MODULES for q in m.EXERCISES]
IDS = [f"{m.__name__.rsplit('.', 1)[1]}.{q.name}" for m, q in ALL]


def right(exercise: Exercise, answer) -> None:
    ok, message = exercise.feedback(answer)
    assert ok, f"a right answer was refused: {message}"


def wrong(exercise: Exercise, answer, fragment: str) -> None:
    ok, message = exercise.feedback(answer)
    assert not ok, f"a wrong answer passed ({message})"
    assert fragment.lower() in message.lower(), f"expected a message with {fragment!r}, got {message!r}"


def run_solution(exercise: Exercise) -> dict:
    namespace: dict = {}
    exec(exercise.setup + "\n" + exercise.solution_code, namespace)
    return namespace


# --------------------------------------------------------------------------- every exercise
def test_every_notebook_has_two_to_four_exercises():
    assert [m.__name__.rsplit(".", 1)[1] for m in exercises.exercise_modules()] == [f"nb{i:02d}" for i in range(11)]
    for module in MODULES:
        assert 2 <= len(module.EXERCISES) <= 4
        assert [q.name for q in module.EXERCISES] == [f"q{i}" for i in range(1, len(module.EXERCISES) + 1)]
        for q in module.EXERCISES:
            assert getattr(module, q.name) is q


@pytest.mark.parametrize("module, exercise", ALL, ids=IDS)
def test_own_solution_passes(module, exercise, capsys):
    namespace = run_solution(exercise)
    assert exercise.check(namespace["answer"]) is True
    assert "Correct:" in capsys.readouterr().out


@pytest.mark.parametrize("module, exercise", ALL, ids=IDS)
def test_texts_hint_and_solution(module, exercise, capsys):
    assert exercise.title and exercise.task and exercise.solution_code.strip()
    assert "answer =" in exercise.solution_code or "answer=" in exercise.solution_code
    hint = exercise.hint()
    assert isinstance(hint, str) and len(hint) > 20 and "Hint:" in capsys.readouterr().out
    solution = exercise.solution()
    assert exercise.solution_code.strip() in solution
    assert exercise.solution_code.strip() in capsys.readouterr().out


@pytest.mark.parametrize("module, exercise", ALL, ids=IDS)
def test_no_answer_yet(module, exercise, capsys):
    assert exercise.check(...) is False
    assert "No answer yet" in capsys.readouterr().out
    ok, message = exercise.feedback(None)
    assert not ok and message == exercises.PENDING


@pytest.mark.parametrize("module, exercise", ALL, ids=IDS)
def test_nonsense_is_refused_not_crashing(module, exercise):
    for junk in ("hello", object(), [[1, 2], [3]], -1):
        ok, message = exercise.feedback(junk)
        assert not ok and message


# --------------------------------------------------------------------------- display
def test_messages_are_plain_text_outside_notebooks(capsys):
    assert not exercises.in_notebook()
    shown = exercises.show("incorrect", "x is `y`")
    assert capsys.readouterr().out == "Not quite: x is `y`\n"
    assert isinstance(shown, Message) and shown == "Not quite: x is `y`"
    assert shown._ipython_display_() is None  # already shown: Jupyter does not repeat it


def test_messages_are_coloured_html_in_notebooks(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(exercises, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    exercises.show("correct", "a < b and `code`", code="x = 1")
    html = shown[0].data
    assert "#1a7f37" in html and "a &lt; b" in html and "<code>code</code>" in html and "<pre" in html


def test_check_returns_booleans(capsys):
    tile_count = run_solution(nb09.q2)["answer"]
    capsys.readouterr()
    assert nb09.q2.check(tile_count) is True
    assert nb09.q2.check(lambda height, width, tile, overlap: 169) is False
    out = capsys.readouterr().out
    assert out.startswith("Correct:") and "Not quite:" in out


def test_notebook_cells_render_percent_format():
    text = exercises.notebook_cells(nb04)
    assert text.count('# %% tags=["solution"]') == 3
    assert "from rs_helpers.teaching.exercises.nb04 import q1, q2, q3" in text
    assert "q2.check(answer)" in text and "# q2.hint()" in text
    assert all(len(line) <= 120 for line in text.splitlines() if line.startswith("# "))


# --------------------------------------------------------------------------- notebooks hold the same cells
def _cells(path):
    return json.loads(path.read_text())["cells"]


def _src(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


NOTEBOOKS_WITH_EXERCISES = [p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
                            if "rs_helpers.teaching.exercises.nb" in p.read_text()]


@pytest.mark.parametrize("path", NOTEBOOKS_WITH_EXERCISES, ids=lambda p: p.stem)
def test_notebook_exercise_cells_match_their_module(path):
    module = {m.__name__.rsplit(".", 1)[1]: m for m in MODULES}[f"nb{path.name[:2]}"]
    cells = _cells(path)
    solutions = [_src(c).strip() for c in cells if "solution" in c.get("metadata", {}).get("tags", [])]
    code = [_src(c).strip() for c in cells if c["cell_type"] == "code"]
    assert solutions == [q.solution_code.strip() for q in module.EXERCISES]
    for q in module.EXERCISES:
        if q.setup.strip():
            assert q.setup.strip() in code, f"{path.name}: the setup cell of {q.name} differs from the module's"
        assert any(re.match(rf"{q.name}\.check\(answer\)", c) for c in code)


def test_every_one_of_the_eleven_notebooks_has_exercises():
    assert [p.name[:2] for p in NOTEBOOKS_WITH_EXERCISES] == [f"{i:02d}" for i in range(11)]


# --------------------------------------------------------------------------- 00-04
# in tests/teaching/test_exercises_0004.py (function problems)


# --------------------------------------------------------------------------- 05-10
# in tests/teaching/test_exercises_0510.py (function problems) and tests/teaching/test_nb10.py


def test_incorrect_is_an_exception_with_the_message():
    with pytest.raises(Incorrect, match="percentage"):
        nb00.q1.verify(lambda labels, index: 100 * float((labels[labels != 255] == index).mean()))


# --------------------------------------------------------------------------- any size
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(width=st.integers(1, 3000), height=st.integers(1, 3000), tile=st.integers(16, 600), data=st.data())
def test_tile_solutions_any_size(width, height, tile, data):
    overlap = data.draw(st.integers(0, tile - 1))
    want = [(t.row_off, t.col_off) for t in tile_grid(height, width, tile, overlap)]
    offsets, count = (run_solution(q)["answer"] for q in nb09.EXERCISES)
    assert sorted(offsets(height, width, tile, overlap)) == sorted(want)
    assert count(height, width, tile, overlap) == len(want)
    nb09.q1.compare(want, nb09.q1.expected(height, width, tile, overlap), (height, width, tile, overlap))
