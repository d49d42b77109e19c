"""An error body that echoes the request (a gateway's debug page) never shows a piece of the key."""

from __future__ import annotations

import pytest

from bot.gemini.errors import classify

KEY = "AIzaSyD-THIS1IS2A3REAL4LOOKING5KEY678"


@pytest.mark.parametrize("offset", [0, 250, 280, 290, 299, 300, 320])
def test_a_key_echoed_anywhere_in_a_plain_error_body_is_masked_before_it_is_clipped(offset: int) -> None:
    body = ("x" * offset + f"x-goog-api-key: {KEY}\n" + "y" * 400).encode()
    error = classify(400, body, secret=KEY)

    for text in (str(error), error.detail, error.user_message):
        assert not any(KEY[i : i + 8] in text for i in range(len(KEY) - 7)), text
    assert len(error.detail) <= 300
