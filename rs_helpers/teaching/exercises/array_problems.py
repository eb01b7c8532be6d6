"""Function problems whose answers are arrays or numbers, with the common wrong versions named.

:class:`ArrayFunctionExercise` compares the student's result with the reference on each hidden case
(exactly, or within ``tolerance`` with NaN where the reference has NaN); when it differs, the
first of the case's :meth:`~ArrayFunctionExercise.wrong_versions` that gives the same result names
the mistake ("softmax over the wrong axis", "`>=` instead of `>`"). Small NumPy helpers the
checkers share (``unit``, ``softmax``) live here too.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from rs_helpers.teaching.exercises import Incorrect, as_array
from rs_helpers.teaching.exercises.function_problems import FunctionExercise


def unit(x: np.ndarray) -> np.ndarray:
    """Each vector (along the last axis) divided by its length."""
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def first_match(value: np.ndarray, versions: Sequence[tuple[Callable[[], Any], str]], same, want) -> str | None:
    """The message of the first wrong version ``(make, message)`` whose result equals ``value`` (and
    differs from the right answer ``want``)."""
    for make, message in versions:
        try:
            candidate = np.asarray(make())
        except Exception:  # a wrong version that does not apply to this case
            continue
        if same(value, candidate) and not same(candidate, want):
            return message
    return None


class ArrayFunctionExercise(FunctionExercise):
    """A function problem that compares arrays (or numbers) with the reference, exactly or within
    ``tolerance``, and names the recognised wrong version (:meth:`wrong_versions`) that gives the
    student's result on a hidden case."""

    tolerance: float | None = None  # None: exact equality; else within this, NaN where the reference has NaN
    confirmation = ""  # added to the success message

    def same(self, a: np.ndarray, b: np.ndarray) -> bool:
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return False
        if self.tolerance is None:
            return bool(np.array_equal(a, b))
        a, b = a.astype(float), b.astype(float)
        if not np.array_equal(np.isnan(a), np.isnan(b)) or np.isinf(a).any():
            return False
        finite = ~np.isnan(b)
        return bool(np.allclose(a[finite], b[finite], atol=self.tolerance, rtol=0))

    def read(self, got, want: np.ndarray | None, args: tuple, where: str) -> np.ndarray:
        """The result as an array of numbers shaped like ``want`` (any shape for None); Incorrect otherwise."""
        if want is not None and np.ndim(want) == 0:
            if isinstance(got, str) or np.ndim(got) != 0:
                kind = f"the text {got!r}" if isinstance(got, str) else f"something of shape {np.shape(got)}"
                raise Incorrect(f"{where} it returned {kind}: return one number.")
        array = as_array(got, "an array of numbers" if want is None else f"an array of shape {np.shape(want)}")
        if array.dtype.kind not in "biuf":
            raise Incorrect(f"{where} the result holds {array.dtype} values; want numbers.")
        if want is not None and array.shape != np.shape(want):
            raise Incorrect(f"{where} the result has shape {array.shape}; want {np.shape(want)}.")
        return array

    def wrong_versions(self, *args) -> list[tuple[Callable[[], Any], str]]:
        return []

    not_right = "not the right result."  # the message when no wrong version explains the result

    def fallback(self, array: np.ndarray, want: np.ndarray, args: tuple) -> str:
        return self.not_right

    def compare(self, got, want, args):
        where = f"for {self.describe(args)}"
        array = self.read(got, want, args, where)
        if self.same(array, want):
            return
        shown = f" it returned {float(array):.4g}:" if array.ndim == 0 else ":"
        message = first_match(array, self.wrong_versions(*args), self.same, want)
        raise Incorrect(f"{where}{shown} {message or self.fallback(array, np.asarray(want), args)}")

    def verify(self, answer):
        return f"{super().verify(answer)} {self.confirmation}".strip()
