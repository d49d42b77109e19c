"""The streamed request body is exactly the JSON `json.dumps` would make, piece by piece."""

from __future__ import annotations

import base64
import json
import os

import pytest

from bot.gemini import Content, ImageRequest, Part
from bot.gemini.body import SLICE, StreamedBody


def _request(*images: bytes, text: str = "make it dusk") -> ImageRequest:
    model = Content(
        role="model",
        parts=(Part(text="here", signature=b"\x00sig"), Part(data=b"\x89PNG", mime_type="image/png", signature=b"s2")),
    )
    first = Content.user("a lighthouse")
    return ImageRequest(
        model="gemini-3-pro-image-preview",
        contents=(first, model, Content.user(text, tuple((data, "image/jpeg") for data in images))),
        image_size="2K",
    )


@pytest.mark.parametrize("size", [0, 1, 2, 3, SLICE - 1, SLICE, SLICE + 1, 3 * SLICE + 2])
def test_body_is_the_json_of_the_request(size: int) -> None:
    image = os.urandom(size)
    request = _request(image, image[: size // 2])
    body = request.body()
    sent = b"".join(body)
    assert json.loads(sent) == request.to_wire()
    assert body.length == len(sent)
    parts = json.loads(sent)["contents"][-1]["parts"]
    assert base64.b64decode(parts[0]["inlineData"]["data"]) == image


def test_user_text_that_looks_like_a_placeholder_stays_text() -> None:
    tricky = 'bananabot-inline- "quotes" \\ back\u00e9 🍌 "bananabot-inline-0"'
    request = _request(b"\xff\xd8jpeg", text=tricky)
    sent = bytes(request.body())
    assert json.loads(sent)["contents"][-1]["parts"][-1]["text"] == tricky


def test_each_pass_is_whole_and_images_are_sliced() -> None:
    image = os.urandom(2 * SLICE + 5)
    body = _request(image).body()
    first = list(body)
    second = list(body)  # a retry sends it again
    assert first == second
    assert max(map(len, first)) <= 4 * SLICE // 3 + 200
    assert json.loads(b"".join(first)) == _request(image).to_wire()


def test_a_stray_marker_is_refused() -> None:
    with pytest.raises(ValueError, match="outside an image"):
        StreamedBody(lambda inline: {"a": inline(b"x"), "b": inline(b"y").upper()})
