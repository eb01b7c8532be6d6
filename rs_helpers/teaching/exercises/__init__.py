"""Checked exercises for the notebooks, in the style of Kaggle learntools.

Each notebook ``NN`` has a module ``rs_helpers.teaching.exercises.nbNN`` holding ``q1``, ``q2``, ...::

    from rs_helpers.teaching.exercises.nb03 import q1
    q1.check(answer)   # True / False, with a message that says what is wrong
    q1.hint()          # a nudge
    q1.solution()      # our solution, as code

Checkers compute the reference answer with the package's own functions (``proposals``,
``selection``, ``metrics``, ``clicks``, ...), accept every correct answer (float tolerance, any
order where order does not matter, several answer shapes) and recognise the common wrong ones
(swapped x and y, a forgotten ignore index, union over intersection, ...) to say what is wrong.
Messages are coloured HTML in Jupyter and Colab and plain text elsewhere.

Each exercise also carries its notebook cells: ``task`` (markdown), ``setup`` (code that makes
the inputs; may be empty) and ``solution_code`` (the cell tagged ``solution`` in the instructor
notebook, replaced by a stub in the student copies, see :mod:`rs_helpers.teaching.student`).
:func:`notebook_cells` renders a module's exercises as jupytext percent cells.
"""
from __future__ import annotations

import html
import re
import sys
from typing import Any, Iterable

import numpy as np

_STYLES = {  # kind: (colour, label)
    "correct": ("#1a7f37", "Correct"),
    "incorrect": ("#cf222e", "Not quite"),
    "pending": ("#9a6700", "No answer yet"),
    "hint": ("#0969da", "Hint"),
    "solution": ("#8250df", "Solution"),
}
PENDING = "replace the `...` with your code, run the cell, then check again."


class Incorrect(Exception):
    """Raised by a checker for a wrong answer; the message says what is wrong."""


class Message(str):
    """Text that has already been shown: Jupyter does not show it a second time as ``Out[..]``."""

    def _ipython_display_(self) -> None:
        pass


def in_notebook() -> bool:
    """True inside a Jupyter or Colab kernel (where HTML output renders)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    return "google.colab" in sys.modules or type(shell).__name__ == "ZMQInteractiveShell" or "IPKernelApp" in shell.config


_BACKTICKS = re.compile(r"`+")


def _inline_html(text: str) -> str:
    """Markdown-ish text as HTML: code spans read as CommonMark reads them, the rest escaped.

    A code span opens with a run of N backticks and closes at the next run of exactly N, so code
    that holds backticks goes inside a longer run (two backticks and a space around a
    triple-backtick fence); one space just inside both ends is dropped. A run that is never closed
    stays literal text. Newlines outside code become line breaks."""
    out, pos = [], 0
    while (opening := _BACKTICKS.search(text, pos)) is not None:
        run = opening.group()
        closing = next((m for m in _BACKTICKS.finditer(text, opening.end()) if m.group() == run), None)
        if closing is None:  # no closing run of the same length: literal backticks
            out.append(html.escape(text[pos:opening.end()]).replace("\n", "<br>"))
            pos = opening.end()
            continue
        out.append(html.escape(text[pos:opening.start()]).replace("\n", "<br>"))
        code = text[opening.end():closing.start()].replace("\n", " ")
        if len(code) >= 2 and code[0] == code[-1] == " " and code.strip(" "):
            code = code[1:-1]
        out.append(f"<code>{html.escape(code)}</code>")
        pos = closing.end()
    out.append(html.escape(text[pos:]).replace("\n", "<br>"))
    return "".join(out)


def show(kind: str, text: str, code: str | None = None) -> Message:
    """Show a message of ``kind`` (correct, incorrect, pending, hint, solution) and return it."""
    colour, label = _STYLES[kind]
    plain = f"{label}: {text}" + (f"\n{code}" if code else "")
    if in_notebook():
        from IPython.display import HTML, display

        body = f"<span style='color:{colour};font-weight:bold'>{label}:</span> {_inline_html(text)}"
        if code:
            body += (f"<pre style='border-left:3px solid {colour};padding-left:8px'>"
                     f"{html.escape(code)}</pre>")
        display(HTML(f"<div>{body}</div>"))
    else:
        print(plain)
    return Message(plain)


class Exercise:
    """One checked exercise. Subclasses set the texts and implement :meth:`verify`.

    ``verify(answer)`` raises :class:`Incorrect` with a specific message for a wrong answer and
    returns a short confirmation (or None) for a right one.
    """

    name = "q"
    title = ""
    task = ""  # markdown: what to compute, with every convention the checker assumes
    setup = ""  # code: the inputs (kept in the student copy)
    hint_text = ""  # one hint; or ``hints``: a nudge first, then a closer hint
    hints: tuple[str, ...] = ()
    solution_code = ""  # code: the instructor's solution, ending in ``answer = ...``

    def verify(self, answer: Any) -> str | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def feedback(self, answer: Any) -> tuple[bool, str]:
        """(is the answer right, the message) without printing anything."""
        if answer is None or answer is Ellipsis:
            return False, PENDING
        try:
            note = self.verify(answer)
        except Incorrect as wrong:
            return False, str(wrong)
        except Exception as exc:  # an answer so odd the checker cannot even read it
            return False, f"could not read this answer ({type(exc).__name__}: {exc})."
        return True, note or "well done."

    def check(self, answer: Any) -> bool:
        """Show whether ``answer`` is right (and what is wrong if not); return True or False."""
        ok, message = self.feedback(answer)
        pending = message == PENDING
        show("correct" if ok else "pending" if pending else "incorrect", message)
        return ok

    def hint(self, level: int | None = None) -> Message:
        """The next hint: a nudge on the first call, a closer hint on the second (or ``level``)."""
        hints = tuple(self.hints) or (self.hint_text,)
        if level is None:
            level = getattr(self, "_hints_shown", 0) + 1
        level = max(1, min(int(level), len(hints)))
        self._hints_shown = level
        more = " (call `hint()` again for a closer hint)" if level < len(hints) else ""
        prefix = f"{level}/{len(hints)}: " if len(hints) > 1 else ""
        return show("hint", prefix + hints[level - 1] + more)

    def solution(self) -> Message:
        return show("solution", "one way to do it:", self.solution_code)

    def __repr__(self) -> str:
        return f"<exercise {self.name}: {self.title}>"


# --------------------------------------------------------------------------- checker helpers
def as_number(answer: Any, what: str = "one number") -> float:
    """A float from a Python or NumPy scalar (or a one-element array); Incorrect otherwise."""
    if isinstance(answer, (bool, np.bool_)):
        raise Incorrect(f"want {what}, got a boolean ({answer}).")
    if isinstance(answer, str):
        raise Incorrect(f"want {what}, got the text {answer!r}.")
    array = np.asarray(answer)
    if array.size != 1 or array.dtype.kind not in "iuf":
        raise Incorrect(f"want {what}, got {type(answer).__name__} of shape {array.shape}.")
    return float(array.reshape(()))


def as_array(answer: Any, what: str) -> np.ndarray:
    try:
        array = np.asarray(answer)
    except Exception:
        raise Incorrect(f"want {what}; could not turn the answer into an array.") from None
    if array.dtype == object:
        raise Incorrect(f"want {what}; the answer holds mixed or ragged items.")
    return array


def close(a: float, b: float, tol: float) -> bool:
    return bool(np.isfinite(a) and np.isfinite(b) and abs(a - b) <= tol)


def same_points(answer: np.ndarray, expected: np.ndarray, tol: float) -> bool:
    """True when the two N x D point sets match one to one within ``tol`` (any order)."""
    answer, expected = np.asarray(answer, float), np.asarray(expected, float)
    if answer.shape != expected.shape:
        return False
    if answer.size == 0:
        return True
    from scipy.optimize import linear_sum_assignment

    cost = np.abs(answer[:, None, :] - expected[None, :, :]).max(-1)
    rows, cols = linear_sum_assignment(cost)
    return bool(cost[rows, cols].max() <= tol)


def as_clicks(answer: Any, what: str = "a list of clicks (x, y, label)") -> np.ndarray:
    """N x 3 int array from clicks given as ``Click`` objects, dicts, tuples or an array."""
    if isinstance(answer, (str, bytes)):
        raise Incorrect(f"want {what}, got text: turn it into numbers first.")
    if isinstance(answer, dict) and "clicks" in answer:
        answer = answer["clicks"]
    try:
        items = list(answer)
    except TypeError:
        raise Incorrect(f"want {what}, got {type(answer).__name__}.") from None
    rows = []
    for item in items:
        if hasattr(item, "x") and hasattr(item, "y"):
            rows.append((item.x, item.y, getattr(item, "label", None)))
        elif isinstance(item, dict) and "x" in item and "y" in item:
            rows.append((item["x"], item["y"], item.get("label")))
        else:
            values = list(np.asarray(item).ravel()) if not isinstance(item, (str, bytes)) else []
            if len(values) == 2:
                rows.append((values[0], values[1], None))
            elif len(values) == 3:
                rows.append(tuple(values))
            else:
                raise Incorrect(f"want {what}; cannot read {item!r} as one click.")
    if any(r[2] is None for r in rows):
        raise Incorrect("each click needs its label too: (x, y, label) with 1 = positive, 0 = negative.")
    try:
        return np.array([[float(v) for v in r] for r in rows]).reshape(-1, 3)
    except (TypeError, ValueError):
        raise Incorrect(f"want {what} with numeric x, y and label.") from None


# --------------------------------------------------------------------------- notebook cells
INTRO = ("Each exercise has a task, a cell for your answer (tagged `solution`: in the student copy "
         "it is a stub that raises `NotImplementedError` until you replace it) and a check. Most ask "
         "for a function: the check runs it on inputs you have not seen, so it must work in general, "
         "not only on the example. `q1.hint()` gives a nudge, a second call a closer hint; "
         "`q1.solution()` shows our solution.")


def _comment_block(text: str, width: int = 110) -> str:
    """Markdown as percent-format comment lines, long lines wrapped (code spans kept whole)."""
    import textwrap

    lines = []
    for line in text.strip().splitlines():
        wrapped = textwrap.wrap(line, width - 2, break_long_words=False, break_on_hyphens=False) or [""]
        lines.extend(("# " + part).rstrip() for part in wrapped)
    return "\n".join(lines)


def _title(index: int, exercise) -> str:
    end = "" if exercise.title.endswith(("?", "!", ".")) else "."
    return f"**Exercise {index} · {exercise.title}{end}** "


def notebook_cells(module, heading: str = "## Exercises") -> str:
    """The exercises of ``module`` (its ``EXERCISES`` list) as jupytext percent cells: an intro
    with the import, then per exercise its task, setup, solution (tagged) and check cells."""
    exercises = list(module.EXERCISES)
    names = ", ".join(e.name for e in exercises)
    parts = [f"# %% [markdown]\n{_comment_block(heading + chr(10) + INTRO)}",
             f"# %%\nfrom {module.__name__} import {names}"]
    for index, exercise in enumerate(exercises, start=1):
        parts.append(f"# %% [markdown]\n{_comment_block(_title(index, exercise) + exercise.task)}")
        if exercise.setup.strip():
            parts.append(f"# %%\n{exercise.setup.strip()}")
        parts.append(f'# %% tags=["solution"]\n{exercise.solution_code.strip()}')
        parts.append(f"# %%\n{exercise.name}.check(answer)\n# {exercise.name}.hint()\n# {exercise.name}.solution()")
    return "\n\n".join(parts) + "\n"


def exercise_modules() -> Iterable:
    """The per-notebook modules (``nbNN.py`` in this folder), in notebook order."""
    import importlib
    from pathlib import Path

    for path in sorted(Path(__file__).parent.glob("nb[0-9][0-9].py")):
        yield importlib.import_module(f"{__name__}.{path.stem}")
