"""The package's shape: folders are the method's stages, imports point one way, modules stay small.

Read from the source with ``ast`` (nothing is imported), so every import counts, the ones inside
functions too: a lazy import is still a dependency, and a circle of them is still a circle.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rs_helpers"
FOLDERS = ["models", "sam", "ovss", "refer", "lora", "geo", "evaluation", "bench", "teaching", "commands"]
TOP = {"__init__", "__main__", "cli", "errors", "profile", "device", "distributed", "files", "samples"}
# the layers that sit on top: nothing below them may import them
UPPER = ("rs_helpers.commands", "rs_helpers.teaching", "rs_helpers.bench", "rs_helpers.cli", "rs_helpers.__main__")
MAX_LINES = 420  # "about 400"


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def _imports(name: str, path: Path, is_package: bool, known) -> set[str]:
    """The rs_helpers modules that ``name`` imports anywhere in its source."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith("rs_helpers.") and target != name:
                found.add(target)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, is_pkg, modules) for name, (path, is_pkg) in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_the_cycle_finder_finds_a_circle_of_lazy_imports():
    """The check itself: a hand-built circle (a -> b -> c -> a) and a clean chain."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycles_anywhere_in_the_package(graph):
    assert _cycles(graph) == []


def test_lower_layers_never_import_the_commands_teaching_or_bench_code(graph):
    wrong = sorted((module, target) for module, targets in graph.items() for target in targets
                   if not module.startswith(UPPER) and target.startswith(UPPER))
    assert wrong == []


def test_bench_code_does_not_import_teaching_or_commands(graph):
    wrong = sorted((m, t) for m, ts in graph.items() if m.startswith("rs_helpers.bench")
                   for t in ts if t.startswith(("rs_helpers.teaching", "rs_helpers.commands")))
    assert wrong == []


def test_the_top_level_holds_the_few_shared_modules_and_the_stage_folders():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert modules == TOP and len(modules) <= 9
    assert folders == set(FOLDERS)


def test_no_module_is_much_longer_than_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize("folder", [f for f in FOLDERS if f != "commands"])
def test_every_folder_exports_what_notebooks_import_from_it(folder):
    module = importlib.import_module(f"rs_helpers.{folder}")
    assert module.__all__, folder
    for name in module.__all__:
        assert getattr(module, name) is not None
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


@pytest.mark.parametrize("folder", [f for f in FOLDERS if f != "commands"])
def test_no_export_is_named_like_a_module_of_its_folder(folder):
    """Once ``rs_helpers.geo.vectorize`` is imported, ``rs_helpers.geo.vectorize`` is that module
    for good; an export of the same name would turn into the module behind the notebook's back."""
    import pkgutil

    module = importlib.import_module(f"rs_helpers.{folder}")
    assert set(module.__all__) & {m.name for m in pkgutil.iter_modules(module.__path__)} == set()
