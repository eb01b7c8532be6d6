"""Errors that the command line turns into one-line messages and fixed exit codes.

Exit codes: 2 bad input (image, class list, file), 3 weights or API key unavailable,
4 a model answer with no usable clicks. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class RsError(Exception):
    """Base class: an expected failure with a user-facing message."""

    exit_code = 1


class BadInputError(RsError, ValueError):
    """The user's input cannot be used (unreadable image, empty class list, bad file)."""

    exit_code = 2


class WeightsUnavailableError(RsError):
    """Pretrained weights (or an API key) are needed but cannot be had offline."""

    exit_code = 3


class NoClicksError(RsError):
    """A vision-language model answered without any usable click."""

    exit_code = 4

    def __init__(self, message: str, raw_answer: str = ""):
        super().__init__(message)
        self.raw_answer = raw_answer
