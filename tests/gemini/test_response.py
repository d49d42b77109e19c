"""Answers with no image and little else become the outcome, and the words, the reference gives them (§5.4)."""

from __future__ import annotations

import json

import pytest

from bot.catalog import FLASH_31
from bot.gemini.outcomes import Outcome, TextOnly, Unfinished
from bot.gemini.response import parse_response


def parsed(candidate: dict) -> Outcome:
    return parse_response(json.dumps({"candidates": [candidate]}).encode(), spec=FLASH_31, size="1K", attempts=1)


@pytest.mark.parametrize("content", [{"role": "model"}, {"role": "model", "parts": []}, None])
def test_stop_with_no_parts_is_a_reply_without_an_image(content: dict | None) -> None:
    candidate = {"finishReason": "STOP", "index": 0, **({"content": content} if content is not None else {})}
    outcome = parsed(candidate)
    assert isinstance(outcome, TextOnly) and outcome.finish_reason == "STOP"
    assert outcome.user_message == (
        "Gemini replied without an image. Nothing was charged. Try rephrasing, or ask explicitly for an image."
    )


def test_an_answer_cut_off_without_a_reason_stays_unfinished() -> None:
    outcome = parsed({"content": {"role": "model"}, "index": 0})
    assert isinstance(outcome, Unfinished)
    assert "could not finish" in outcome.user_message
