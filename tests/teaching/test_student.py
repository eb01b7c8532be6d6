"""Student copies: every solution cell becomes a stub, nothing else changes, the copies are valid."""
from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from rs_helpers.cli import main
from rs_helpers.errors import BadInputError
from rs_helpers.teaching.student import (
    STUB_TAG,
    answered_function,
    assigned_names,
    is_solution,
    stub_source,
    student_notebook,
    write_student_copies,
)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def _solution(source):
    return nbformat.v4.new_code_cell(source, metadata={"tags": ["solution"]})


def _code_lines(source: str) -> set[str]:
    return {line.strip() for line in source.splitlines() if line.strip() and not line.strip().startswith("#")}


def _kept_by_design(source: str) -> set[str]:
    """What a function stub keeps of its solution: the def line(s), the docstring, ``answer = name``."""
    found = answered_function(source)
    if found is None:
        return set()
    function, targets = found
    lines = source.splitlines()
    body = function.body[0]
    end = body.end_lineno if isinstance(body, ast.Expr) and isinstance(body.value, ast.Constant) else body.lineno - 1
    return _code_lines("\n".join(lines[function.lineno - 1:end])) | {f"{t} = {function.name}" for t in targets}


# --------------------------------------------------------------------------- the stub
def test_assigned_names():
    source = "import numpy as np\nx = 1\na, (b, *c) = f()\nd: int = 2\ne: int\nx += 1\ndef g():\n    y = 3\nanswer = x"
    assert assigned_names(source) == ["x", "a", "b", "c", "d", "answer"]
    assert assigned_names("%time answer = 1\n!ls") == []
    assert assigned_names("answer = (") == []  # not Python: no names, still a stub


def test_stub_keeps_comments_and_names_and_raises():
    source = "# the fraction of road pixels\n# (0 to 1)\nroad = labels == 1\nanswer = float(road.mean())"
    stub = stub_source(source, "q1")
    assert stub.splitlines()[:2] == ["# the fraction of road pixels", "# (0 to 1)"]
    assert "road = ...  # your code here" in stub and "answer = ...  # your code here" in stub
    assert "labels == 1" not in stub and "mean()" not in stub
    namespace = {}
    with pytest.raises(NotImplementedError, match="Exercise q1.*q1.hint"):
        exec(stub, namespace)
    assert namespace["answer"] is Ellipsis  # the check cell then says "no answer yet"
    compile(stub, "<stub>", "exec")


FUNCTION_SOLUTION = '''# the number of tiles of a scene
def tile_count(height, width,
               tile, overlap):
    """How many tiles cover the scene."""
    def per_axis(length):
        return 1 if length <= tile else -(-(length - tile) // (tile - overlap)) + 1

    return per_axis(height) * per_axis(width)

def helper():
    return 42

print(tile_count(10980, 10980, 1024, 128))
answer = tile_count'''


def test_function_stub_keeps_the_signature_docstring_and_answer_line():
    stub = stub_source(FUNCTION_SOLUTION, "q2", {"answer"})
    assert stub.splitlines()[:5] == ["# the number of tiles of a scene", "def tile_count(height, width,",
                                     "               tile, overlap):", '    """How many tiles cover the scene."""',
                                     "    ...  # your code here"]
    assert "answer = tile_count" in stub and stub.rstrip().endswith('Run q2.hint().")')
    for secret in ("def per_axis", "return 1 if", "return per_axis", "def helper", "print("):
        assert secret not in stub
    namespace = {}
    with pytest.raises(NotImplementedError, match="Exercise q2"):
        exec(stub, namespace)
    assert namespace["answer"] is namespace["tile_count"] and namespace["answer"](1000, 700, 256, 32) is None
    from rs_helpers.teaching.exercises import nb09

    ok, message = nb09.q2.feedback(namespace["answer"])  # the check cell then says "returns nothing yet"
    assert not ok and "returns nothing yet" in message
    exec(FUNCTION_SOLUTION, namespace)  # the instructor's cell itself passes
    assert nb09.q2.feedback(namespace["answer"])[0]


def test_function_stub_of_a_one_line_function_and_other_names():
    stub = stub_source("def f(x, *, k=2) -> int: return x * k\nlimit = 3\nanswer = f", "q1", {"answer", "limit"})
    assert stub.splitlines()[:2] == ["def f(x, *, k=2) -> int:", "    ...  # your code here"]
    assert "limit = ...  # your code here" in stub and "answer = f" in stub and "x * k" not in stub
    namespace = {}
    with pytest.raises(NotImplementedError):
        exec(stub, namespace)
    assert namespace["answer"](1) is None
    assert answered_function("def f():\n    pass\nanswer = f()") is None  # a value, not the function
    assert answered_function("answer = (") is None


def test_stub_without_assignments():
    stub = stub_source("print(42)")
    assert "print(42)" not in stub and "# your code here" in stub
    with pytest.raises(NotImplementedError, match="Exercise: replace this stub"):
        exec(stub, {})


def test_student_notebook_replaces_only_solution_cells():
    md = nbformat.v4.new_markdown_cell("**Exercise 1.** compute `answer`\n```python\nanswer = 42\n```")
    setup = nbformat.v4.new_code_cell("data = [1, 2, 3]", metadata={"tags": ["keep"]})
    solution = _solution("total = sum(data)\nanswer = total / len(data)")
    solution.outputs = [nbformat.v4.new_output("stream", text="2.0\n")]
    solution.execution_count = 3
    check = nbformat.v4.new_code_cell("q7.check(answer)")
    nb = _nb(md, setup, solution, check)
    student, count = student_notebook(nb)
    assert count == 1
    assert nb.cells[2].source.startswith("total = sum")  # the input is untouched
    assert student.cells[0] == md and student.cells[1] == setup and student.cells[3] == check
    stub = student.cells[2]
    assert "sum(data)" not in stub.source and "Exercise q7" in stub.source
    assert "answer = ..." in stub.source and "total" not in stub.source  # only what later cells use
    assert stub.outputs == [] and stub.execution_count is None
    assert stub.metadata["tags"] == ["solution", STUB_TAG]
    nbformat.validate(student)


def test_student_notebook_runs_to_the_end_past_stubs():
    """nbclient honours the raises-exception tag: Run all continues and the check says no answer yet."""
    from nbclient import NotebookClient

    nb = _nb(nbformat.v4.new_code_cell("from rs_helpers.teaching.exercises.nb09 import q2"),
             _solution("def tile_count(height, width, tile, overlap):\n    \"\"\"The number of tiles.\"\"\"\n"
                       "    return 169\n\nanswer = tile_count"),
             nbformat.v4.new_code_cell("ok = q2.check(answer)\nprint('checked', ok)"))
    student, _ = student_notebook(nb)
    NotebookClient(student, timeout=120, kernel_name="python3").execute()
    errors = [o for o in student.cells[1].outputs if o.output_type == "error"]
    assert errors and errors[0].ename == "NotImplementedError"
    texts = "".join(o.get("text", "") for o in student.cells[2].outputs if o.output_type == "stream")
    shown = "".join(o.get("data", {}).get("text/html", "") for o in student.cells[2].outputs)
    assert "checked False" in texts and "returns nothing yet" in shown


# --------------------------------------------------------------------------- the committed notebooks
@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    return out, dict(write_student_copies(ROOT / "notebooks", out))


def test_every_notebook_gets_a_valid_copy(copies):
    out, written = copies
    assert sorted(p.name for p in written) == [p.name for p in NOTEBOOKS]
    for path in written:
        nbformat.validate(nbformat.read(path, as_version=4))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_copy_stubs_every_solution_and_keeps_the_rest(path, copies):
    out, written = copies
    original = nbformat.read(path, as_version=4)
    student = nbformat.read(out / path.name, as_version=4)
    assert len(student.cells) == len(original.cells)
    solutions = [i for i, cell in enumerate(original.cells) if is_solution(cell)]
    assert written[out / path.name] == len(solutions)
    elsewhere = set()
    for i, cell in enumerate(original.cells):
        if i not in solutions:
            assert student.cells[i] == cell, f"cell {i} of {path.name} changed"
            elsewhere |= _code_lines(cell.source)
    student_lines = set().union(*(_code_lines(c.source) for c in student.cells))
    for i in solutions:
        stub = student.cells[i]
        assert "raise NotImplementedError" in stub.source and STUB_TAG in stub.metadata["tags"]
        secret = _code_lines(original.cells[i].source) - elsewhere - _kept_by_design(original.cells[i].source)
        assert not (secret & student_lines), f"solution code left in {path.name}: {secret & student_lines}"
        compile(stub.source, f"{path.name}:{i}", "exec")


def test_notebooks_with_exercises_have_solution_cells():
    for path in NOTEBOOKS:
        text = path.read_text()
        if "rs_helpers.teaching.exercises.nb" in text:
            nb = nbformat.read(path, as_version=4)
            assert sum(is_solution(c) for c in nb.cells) >= 2, path.name


# --------------------------------------------------------------------------- the command
def test_student_command(tmp_path, capsys):
    out = tmp_path / "student"
    assert main(["student", "--out", str(out), "--notebooks", str(ROOT / "notebooks")]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    assert f"{len(NOTEBOOKS)} student notebooks" in printed


def test_student_command_errors(tmp_path, capsys):
    assert main(["student", "--out", str(tmp_path / "s"), "--notebooks", str(tmp_path)]) == 2
    assert "no notebooks" in capsys.readouterr().err
    with pytest.raises(BadInputError, match="another folder"):
        write_student_copies(ROOT / "notebooks", ROOT / "notebooks")
