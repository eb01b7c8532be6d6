"""Function problems: the student writes a function, the checker runs it on inputs it has not seen.

As in Kaggle learntools' ``FunctionProblem``: ``q1.check(my_function)`` calls the function on
hidden cases (made by :meth:`FunctionExercise.cases`, other inputs than the example the notebook
shows), compares each result with the package's reference answer, and names the first case that
differs. A number that could be guessed from the example is therefore never enough.

Where a task says "without X", X is *forbidden* while the student's function runs: a call to it
from the student's own code (the notebook, or any code outside this package) fails the check with
a message naming X, however it was imported. The package's own functions may still call X
internally, so a helper the task allows keeps working.
"""
from __future__ import annotations

import copy
import functools
import importlib
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from rs_helpers.teaching.exercises import Exercise, Incorrect

PACKAGE_DIR = str(Path(__file__).resolve().parents[2]) + os.sep  # .../rs_helpers/


class NotAnswered(Exception):
    """The student's function is still the stub (it returned ``None`` or ``...``)."""


class Forbidden(Exception):
    """The student's code called a function the task says not to use."""


def _from_package(filename: str) -> bool:
    return str(Path(filename).resolve()).startswith(PACKAGE_DIR)


def _guard(original: Callable, name: str, calls: list) -> Callable:
    """``original`` for callers inside the package; for any other caller, a recorded refusal."""

    @functools.wraps(original)
    def guard(*args, **kwargs):
        if _from_package(sys._getframe(1).f_code.co_filename):
            return original(*args, **kwargs)
        calls.append(name)
        raise Forbidden(name)

    del guard.__wrapped__  # no way round it through ``forbidden.__wrapped__``
    return guard


def package_function(answer) -> str | None:
    """The name of ``answer`` when it is one of the package's own functions (a method or a
    ``functools.partial`` of one included), else None: the answer must be the student's own."""
    func = getattr(answer, "func", answer)  # functools.partial
    func = getattr(func, "__func__", func)  # a bound method, e.g. an exercise's own ``expected``
    code = getattr(func, "__code__", None)
    return getattr(func, "__name__", "?") if code is not None and _from_package(code.co_filename) else None


def _resolve(dotted: str) -> tuple[Any, str]:
    """``"rs_helpers.geo.rasters:stretch_to_uint8"`` -> (the module, the attribute name)."""
    module_name, _, attr = dotted.partition(":")
    return importlib.import_module(module_name), attr


@contextmanager
def forbidding(names: Sequence[str], function: Callable) -> Iterator[list]:
    """While the block runs, each ``"module:attr"`` in ``names`` refuses callers outside the package:
    on its module and wherever ``function``'s globals (the notebook) hold it under any name. Yields
    the list of refused calls (kept even if the student's code swallowed the exception)."""
    calls: list[str] = []
    swaps: list[tuple[Any, Any]] = []  # (original, guard)
    homes: list[tuple[Any, str, Any]] = []  # (module, attribute, original)
    for dotted in names:
        module, attr = _resolve(dotted)
        original = getattr(module, attr)
        guard = _guard(original, attr, calls)
        swaps.append((original, guard))
        homes.append((module, attr, original))
        setattr(module, attr, guard)
    namespaces = [getattr(function, "__globals__", {})]
    for cell in getattr(function, "__closure__", None) or ():
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        for original, guard in swaps:
            if contents is original:
                cell.cell_contents = guard
    for space in namespaces:
        for key, value in list(space.items()):
            for original, guard in swaps:
                if value is original:
                    space[key] = guard
    try:
        yield calls
    finally:  # put every original back: on its module (torchvision, segment-anything too), and
        # wherever a lazy import copied a guard meanwhile
        for module, attr, original in homes:
            setattr(module, attr, original)
        spaces = namespaces + [vars(m) for n, m in list(sys.modules.items())
                               if m is not None and (n == "rs_helpers" or n.startswith("rs_helpers."))]
        for original, guard in swaps:
            for space in spaces:
                for key, value in list(space.items()):
                    if value is guard:
                        space[key] = original
            for cell in getattr(function, "__closure__", None) or ():
                try:
                    if cell.cell_contents is guard:
                        cell.cell_contents = original
                except ValueError:
                    pass


class FunctionExercise(Exercise):
    """An exercise whose answer is a function, checked on hidden cases.

    Subclasses set ``function_name`` (as the task names it), ``forbidden`` (``"module:attr"`` the
    task says not to use) and implement :meth:`cases` (a list of argument tuples), :meth:`expected`
    (the reference result for one case) and :meth:`compare` (raise :class:`Incorrect` when a
    result is wrong; the default compares with ``==``). :meth:`describe` names a case in messages.
    """

    function_name = "f"
    forbidden: tuple[str, ...] = ()

    def named_cases(self) -> list[tuple[str, tuple]] | None:
        """Optional: ``[(name, args), ...]``, so that messages say "the case 'a ring'" rather than
        showing the arrays; :meth:`cases` then comes from it."""
        return None

    def cases(self) -> list[tuple]:
        named = self.named_cases()
        if named is None:  # pragma: no cover - a subclass gives one of the two
            raise NotImplementedError
        self._names = {id(args): name for name, args in named}
        return [args for _, args in named]

    def expected(self, *args) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def compare(self, got: Any, want: Any, args: tuple) -> None:
        if got != want:
            raise Incorrect(f"for {self.describe(args)} it returned {got!r}; want {want!r}.")

    def describe(self, args: tuple) -> str:
        name = getattr(self, "_names", {}).get(id(args))
        if name:
            return f"the case '{name}'"
        shown = ", ".join(_short(a) for a in args)
        return f"`{self.function_name}({shown})`"

    def verify(self, answer: Any) -> str | None:
        if not callable(answer):
            raise Incorrect(f"give the function itself, `{self.function_name}` (no parentheses), "
                            f"not {type(answer).__name__}.")
        name = package_function(answer)
        forbidden = [attr for module, attr in map(_resolve, self.forbidden) if getattr(module, attr) is answer]
        if name is not None or forbidden:
            whose = "the package's" if name is not None else "a library's"
            raise Incorrect(f"`{name or forbidden[0]}` is {whose} own function: write `{self.function_name}` "
                            "yourself (that is what the exercise practises).")
        cases = self.cases()
        for args in cases:
            want = self.expected(*copy.deepcopy(args))
            with forbidding(self.forbidden, answer) as refused:
                try:
                    got = answer(*copy.deepcopy(args))
                except NotImplementedError:  # the student copy's stub
                    raise NotAnswered() from None
                except (Forbidden, Incorrect, NotAnswered):
                    got = None
                    if not refused:
                        raise
                except Exception as exc:
                    if refused:
                        got = None
                    else:
                        raise Incorrect(f"{self.describe(args)} raised {type(exc).__name__}: {exc}") from None
            if refused:
                raise Incorrect(f"the task asks you to do this without `{refused[0]}`: write the step "
                                "yourself (that is what the exercise practises).")
            if got is None or got is Ellipsis:
                raise NotAnswered()
            self.compare(got, want, args)
        return f"right on all {len(cases)} hidden test cases."

    def feedback(self, answer: Any) -> tuple[bool, str]:
        from rs_helpers.teaching.exercises import PENDING

        if answer is None or answer is Ellipsis:
            return False, PENDING
        try:
            note = self.verify(answer)
        except NotAnswered:
            return False, f"`{self.function_name}` returns nothing yet: {PENDING}"
        except Incorrect as wrong:
            return False, str(wrong)
        except Exception as exc:  # pragma: no cover - a checker bug, said plainly
            return False, f"could not check this answer ({type(exc).__name__}: {exc})."
        return True, note or "well done."


def _short(value: Any, limit: int = 40) -> str:
    """A readable, short description of one argument for messages."""
    shape = getattr(value, "shape", None)
    if shape is not None and getattr(value, "size", 0) > 6:
        return f"<array {'x'.join(map(str, shape))} {getattr(value, 'dtype', '')}>"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
