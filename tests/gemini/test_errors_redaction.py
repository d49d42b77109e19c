"""An error body that echoes the request (a gateway's debug page) never shows a piece of the key."""

from __future__ import annotations

import pytest

from bot.gemini.errors import classify

KEY = "AIzaSyD-THIS1IS2A3REAL4LOOKING5KEY678"


@pytest.mark.parametrize("copies", [1, 10])
@pytest.mark.parametrize("offset", range(0, 400, 5))
def test_a_key_echoed_anywhere_in_a_plain_error_body_is_masked_before_it_is_clipped(offset: int, copies: int) -> None:
    echo = f"k: {KEY}\n" * copies  # a debug page may print it more than once
    body = ("x" * offset + echo + "y" * 400).encode()
    error = classify(400, body, secret=KEY)

    for text in (str(error), error.detail, error.user_message):
        assert not any(KEY[i : i + 6] in text for i in range(len(KEY) - 5)), text
    assert len(error.detail) <= 300
