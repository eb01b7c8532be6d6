"""Prompt templates that ask a vision-language model for click prompts in the one click format.

The wording is ours (the paper does not publish its prompt): a short statement of the task, the
0-1000 grid, the exact JSON to write, a worked example, and the one answer for "there is nothing
to segment" (:func:`rs_helpers.refer.clicks.no_target_answer`: ``{"clicks": [], "reason": ...}``,
read by the parser as no clicks, turned into an empty mask). The same text is used for GPT-5,
for Qwen-VL at inference and for the LoRA training examples, so that a tuned model sees at
inference exactly what it saw in training.
"""
from __future__ import annotations

from rs_helpers.refer.clicks import GRID, Click, format_clicks, no_target_answer
from rs_helpers.errors import BadInputError

TASKS = ("referring", "reasoning", "semantic")
DEFAULT_N_CLICKS = 6

SYSTEM_PROMPT = (
    "You are a precise remote-sensing image analyst. You locate objects and regions in "
    "overhead images and answer only with click coordinates in the requested JSON format."
)

_EXAMPLE = format_clicks([Click(512, 300, 1), Click(540, 330, 1), Click(610, 300, 0)])
_NO_TARGET_EXAMPLE = no_target_answer("<why, in a few words>")

_TASK_LINES = {
    "referring": 'Find the region that this description refers to: "{text}"',
    "reasoning": ('Find the region of the image that answers this request: "{text}"\n'
                  "Work out which visible region answers it, then click on that region."),
}

_FORMAT = """Write up to {n} {clicks} for a segmentation model (SAM) that will turn them into one mask of that region.
Coordinates are integers on a 0-{grid} grid relative to the image: x from 0 (left edge) to {grid} (right edge), y from 0 (top edge) to {grid} (bottom edge).
Use label 1 for a positive click inside the target and label 0 for a negative click on something nearby that must be excluded.
Put the first click well inside the target, away from its boundary; spread the other positive clicks over the target.
Answer with JSON only, exactly in this form (no other text):
{example}
If nothing in the image matches, answer with no clicks and a short reason, exactly in this form:
{no_target}"""


def check_query_text(text, name: str = "the query text") -> str:
    """``text`` if a model can read it: a string, not blank, and valid UTF-8. Python hands
    undecodable command-line bytes over as lone surrogates ('\\udcff'), which no request can
    carry, so they are refused here rather than blamed on the server later. ``name`` is how the
    message refers to the text (``--text`` on the command line)."""
    if not isinstance(text, str):
        raise BadInputError(f"{name} must be text, got {type(text).__name__}")
    if not text.strip():
        raise BadInputError(f"{name} is empty: write what to segment, e.g. \"the largest building\"")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInputError(f"{name} holds bytes that are not UTF-8: retype it or use a UTF-8 locale") from None
    return text


def build_prompt(text: str, task: str = "referring", n_clicks: int = DEFAULT_N_CLICKS) -> str:
    """The user prompt for one query.

    ``task``: "referring" (a referring expression) or "reasoning" (a question whose answer is a
    region); "semantic" (a class name such as "all roads") is asked like a reasoning question.
    """
    if isinstance(text, str):
        check_query_text(text)
    text = " ".join(str(text).split())
    if not text:
        raise BadInputError("the query text is empty")
    task = (task or "referring").strip().lower()
    if task not in TASKS:
        raise BadInputError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if int(n_clicks) < 1:
        raise BadInputError(f"n_clicks must be at least 1, got {n_clicks}")
    head = _TASK_LINES["referring" if task == "referring" else "reasoning"].format(text=text.replace('"', "'"))
    n = int(n_clicks)
    return head + "\n" + _FORMAT.format(n=n, clicks="click" if n == 1 else "clicks", grid=GRID,
                                        example=_EXAMPLE, no_target=_NO_TARGET_EXAMPLE)
