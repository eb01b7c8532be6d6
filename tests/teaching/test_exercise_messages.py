"""Exercise messages render code spans as Markdown does, code holding backticks included."""
from __future__ import annotations

import re

import pytest

from rs_helpers.teaching import exercises
from rs_helpers.teaching.exercises import _inline_html

MODULES = list(exercises.exercise_modules())


@pytest.mark.parametrize("text, html", [
    ("use `np.bincount`", "use <code>np.bincount</code>"),
    ("a fence `` ```json `` here", "a fence <code>```json</code> here"),
    ('`re.search(r"```json(.*?)```", s)` finds it', '<code>re.search(r&quot;```json(.*?)```&quot;, s)</code> finds it'),
    ("``a ` b``", "<code>a ` b</code>"),
    ("`a` and `b`", "<code>a</code> and <code>b</code>"),
    ("no closing ` here", "no closing ` here"),
    ("``` unmatched then `x`", "``` unmatched then <code>x</code>"),
    ("`<b>` & co", "<code>&lt;b&gt;</code> &amp; co"),
    ("line one\nline `two`", "line one<br>line <code>two</code>"),
    ("`  ` stays", "<code>  </code> stays"),
])
def test_code_spans_follow_commonmark(text, html):
    assert _inline_html(text) == html


def test_the_code_fence_in_06_q2_renders_whole():
    from rs_helpers.teaching.exercises.nb06 import q2

    codes = re.findall(r"<code>(.*?)</code>", _inline_html(q2.task))
    assert "```json ... ```" in codes and '{&quot;clicks&quot;: [...]}' in codes
    codes = re.findall(r"<code>(.*?)</code>", _inline_html(q2.hints[1]))
    assert {"{", "}", "str.index", "str.rindex", "re.sub"} <= set(codes), codes


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_no_stray_backticks_in_hints_and_tasks(module):
    for q in module.EXERCISES:
        for field in ("hint_text", "task"):
            outside = re.sub(r"<code>.*?</code>", "", _inline_html(getattr(q, field)))
            assert "`" not in outside, f"{q.name}.{field}: an unbalanced code span: {outside[:120]}"
