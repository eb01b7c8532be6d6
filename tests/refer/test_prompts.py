"""Prompt templates: they ask for the click format that the parser reads."""
from __future__ import annotations

import re

import pytest

from rs_helpers.refer.clicks import parse_clicks
from rs_helpers.errors import BadInputError
from rs_helpers.refer.prompts import SYSTEM_PROMPT, TASKS, build_prompt


@pytest.mark.parametrize("task", TASKS)
def test_prompt_holds_the_text_the_grid_and_a_parseable_example(task):
    prompt = build_prompt("the  largest\nbuilding", task=task, n_clicks=4)
    assert '"the largest building"' in prompt
    assert "up to 4 clicks" in prompt and "0-1000" in prompt
    example = re.search(r"\{\"clicks\".*\}", prompt).group(0)
    assert len(parse_clicks(example)) == 3


def test_reasoning_and_semantic_share_a_template():
    assert build_prompt("roads", "semantic") == build_prompt("roads", "reasoning")
    assert build_prompt("roads", "referring") != build_prompt("roads", "reasoning")
    assert "up to 1 click " in build_prompt("x", n_clicks=1)
    assert SYSTEM_PROMPT


@pytest.mark.parametrize("kwargs", [dict(text="  "), dict(text="a", task="caption"), dict(text="a", n_clicks=0)])
def test_bad_prompt_inputs(kwargs):
    with pytest.raises(BadInputError):
        build_prompt(**kwargs)


@pytest.mark.parametrize("task", TASKS)
def test_prompt_shows_the_one_no_target_answer(task):
    from rs_helpers.refer.clicks import no_target_reason

    prompt = build_prompt("an airport", task=task)
    lines = [line for line in prompt.splitlines() if line.startswith('{"clicks": []')]
    assert len(lines) == 1 and "If nothing in the image matches" in prompt
    assert parse_clicks(lines[0]) == [] and no_target_reason(lines[0])
