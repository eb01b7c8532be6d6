"""Student copies of the notebooks: every solution cell becomes a stub.

The committed notebooks are the instructor versions: each exercise's answer sits in a code cell
tagged ``solution`` (in the jupytext sources: ``# %% tags=["solution"]``). The student copy
replaces such a cell by a stub that keeps the cell's leading comment lines, assigns ``...`` to
each name the solution assigns at top level and a later cell uses (typically ``answer``, so the
check cell below finds it and says "no answer yet") and raises ``NotImplementedError``. Every other cell is copied unchanged.

When the answer is a function (a function problem: the cell defines ``def name(...)`` and ends
with ``answer = name``), the stub keeps that function's ``def`` line(s) and docstring with the
body replaced by ``...  # your code here``, keeps the ``answer = name`` line, and then raises: the
check cell finds a function that returns nothing yet. Helper functions and other code go.

Stubs are also tagged ``raises-exception``: Jupyter Notebook, JupyterLab and nbclient (nbmake,
nbconvert) then carry on past them, so "Run all" runs a student copy to the end. Front ends that
ignore the tag (Colab) stop at the first stub, which is where the student starts working.
"""
from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

from rs_helpers.errors import BadInputError

SOLUTION_TAG = "solution"
STUB_TAG = "raises-exception"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"


def _text(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def is_solution(cell) -> bool:
    return cell.get("cell_type") == "code" and SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def assigned_names(source: str) -> list[str]:
    """Names the cell binds at top level with ``=`` or ``name: type = ...``, in order, once each.
    Imports and helper functions are left out: the student writes their own."""
    cleaned = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    try:
        tree = ast.parse(cleaned)
    except SyntaxError:
        return []
    names: list[str] = []

    def add(target) -> None:
        if isinstance(target, ast.Name) and target.id not in names:
            names.append(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                add(element)
        elif isinstance(target, ast.Starred):
            add(target.value)

    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                add(target)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            add(node.target)
    return names


def answered_function(source: str) -> tuple[ast.FunctionDef, list[str]] | None:
    """The top-level function that a solution cell hands in (``answer = name``) and the names it is
    assigned to; None when the cell's answer is not a function."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    functions = {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id in functions:
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if targets:
                return functions[node.value.id], targets
    return None


def function_stub(source: str, function: ast.FunctionDef) -> list[str]:
    """``function``'s decorators, ``def`` line(s) and docstring from ``source``, the body replaced by ``...``."""
    lines = source.splitlines()
    first = min([function.lineno] + [d.lineno for d in function.decorator_list]) - 1
    body = function.body[0]
    has_doc = isinstance(body, ast.Expr) and isinstance(body.value, ast.Constant) and isinstance(body.value.value, str)
    if body.lineno == function.lineno:  # a one-line function: rebuild its signature
        prefix = "async def" if isinstance(function, ast.AsyncFunctionDef) else "def"
        returns = f" -> {ast.unparse(function.returns)}" if function.returns else ""
        head = lines[first:function.lineno - 1] + [f"{prefix} {function.name}({ast.unparse(function.args)}){returns}:"]
        indent = "    "
    else:
        head = lines[first:body.lineno - 1]
        indent = lines[body.lineno - 1][:len(lines[body.lineno - 1]) - len(lines[body.lineno - 1].lstrip())]
    doc = lines[body.lineno - 1:body.end_lineno] if has_doc and body.lineno != function.lineno else []
    return head + doc + [f"{indent}...  # your code here"]


def stub_source(source: str, exercise: str | None = None, used_later: set[str] | None = None) -> str:
    """The stub for one solution cell (see the module docstring). With ``used_later``, only the
    names that later cells use are kept (``answer``, not the solution's helper variables)."""
    lines = source.splitlines()
    comments = []
    for line in lines:
        if not line.strip().startswith("#"):
            break
        comments.append(line)
    label = f"Exercise {exercise}" if exercise else "Exercise"
    hint = f" Stuck? Run {exercise}.hint()." if exercise else ""
    names = [n for n in assigned_names(source) if used_later is None or n in used_later]
    answered = answered_function(source)
    if answered is not None:
        function, targets = answered
        others = [f"{name} = ...  # your code here" for name in names if name not in targets]
        body = comments + function_stub(source, function) + [""] + others + [f"{t} = {function.name}" for t in targets]
        body.append(f'raise NotImplementedError("{label}: replace this stub with your solution.{hint}")')
        return "\n".join(body)
    body = comments + [f"{name} = ...  # your code here" for name in names]
    if not any(not c.strip().startswith("#") for c in body):
        body.append("# your code here")
    body.append(f'raise NotImplementedError("{label}: replace this stub with your solution.{hint}")')
    return "\n".join(body)


_CHECK = re.compile(r"^\s*(\w+)\.check\(", re.M)


def _exercise_after(cells, index: int) -> str | None:
    """The name checked by the first ``qN.check(...)`` cell after ``index`` (before the next solution)."""
    for cell in cells[index + 1:]:
        if is_solution(cell):
            return None
        if cell.get("cell_type") == "code":
            found = _CHECK.search(_text(cell))
            if found:
                return found.group(1)
    return None


_WORD = re.compile(r"[A-Za-z_]\w*")


def _names_used_after(cells, index: int) -> set[str]:
    """Identifiers in the code cells after ``index``, other solution cells and comments left out."""
    used: set[str] = set()
    for cell in cells[index + 1:]:
        if cell.get("cell_type") == "code" and not is_solution(cell):
            code = "\n".join(line.split("#", 1)[0] for line in _text(cell).splitlines())
            used.update(_WORD.findall(code))
    return used


def student_notebook(nb):
    """A student copy of a notebook node (the input is left untouched) and its number of stubs."""
    out = copy.deepcopy(nb)
    count = 0
    for index, cell in enumerate(out.cells):
        if not is_solution(cell):
            continue
        cell.source = stub_source(_text(cell), _exercise_after(out.cells, index), _names_used_after(out.cells, index))
        cell.outputs = []
        cell.execution_count = None
        tags = list(cell.metadata.get("tags", []))
        if STUB_TAG not in tags:
            tags.append(STUB_TAG)
        cell.metadata["tags"] = tags
        count += 1
    return out, count


def write_student_copies(notebooks: str | Path, out: str | Path, overwrite: bool = False) -> list[tuple[Path, int]]:
    """Write a student copy of every ``NN_*.ipynb`` in ``notebooks`` into ``out``; returns
    ``(path, stubs)`` per notebook. Copies are validated against the nbformat schema.

    An existing copy (perhaps with a student's work in it) is replaced only with ``overwrite``;
    each copy is written whole or not at all."""
    import nbformat

    from rs_helpers.files import check_outputs, open_atomic

    notebooks, out = Path(notebooks), Path(out)
    sources = sorted(notebooks.glob(NOTEBOOK_GLOB))
    if not sources:
        raise BadInputError(f"no notebooks (NN_name.ipynb) in {notebooks}")
    if out.resolve() == notebooks.resolve():
        raise BadInputError("the student copies must go to another folder than the instructor notebooks")
    targets = {f"{out / source.name}": out / source.name for source in sources}
    check_outputs(targets, inputs=sources, overwrite=overwrite)
    copies = []
    for source in sources:  # every notebook read and checked before the first copy is written
        try:
            nb = nbformat.read(source, as_version=4)
        except Exception as exc:  # nbformat raises several kinds for a broken notebook
            raise BadInputError(f"{source} is not a readable notebook ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
        copy_nb, count = student_notebook(nb)
        nbformat.validate(copy_nb)
        copies.append((out / source.name, copy_nb, count))
    for target, copy_nb, _ in copies:
        with open_atomic(target, "w", encoding="utf-8") as fh:
            nbformat.write(copy_nb, fh)
    return [(target, count) for target, _, count in copies]


def default_notebooks_dir() -> Path:
    """``notebooks/`` in the working directory, else the one next to the installed package."""
    here = Path("notebooks")
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "notebooks"
