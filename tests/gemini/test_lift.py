"""lift.loads gives json.loads's tree, with long "data" values as memoryviews of the answer's bytes."""

import base64
import json
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.catalog import FLASH_31
from bot.gemini import lift
from bot.gemini.errors import MalformedResponseError
from bot.gemini.response import parse_response

LONG = lift.LIFT_MIN_BYTES + 10


def unlifted(node: Any) -> Any:
    """The tree with every memoryview turned back into the text json.loads would have given."""
    if isinstance(node, memoryview):
        return bytes(node).decode("ascii")
    if isinstance(node, dict):
        return {key: unlifted(value) for key, value in node.items()}
    if isinstance(node, list):
        return [unlifted(item) for item in node]
    return node


def views(node: Any) -> int:
    if isinstance(node, memoryview):
        return 1
    if isinstance(node, dict):
        return sum(views(v) for v in node.values())
    if isinstance(node, list):
        return sum(views(v) for v in node)
    return 0


def answer(image: bytes, *, separators: tuple[str, str] = (",", ":"), text: str = "here") -> bytes:
    body = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": text},
                        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(image).decode()}},
                    ],
                },
                "finishReason": "STOP",
            }
        ]
    }
    return json.dumps(body, separators=separators).encode()


def test_an_image_answer_is_cut_out_and_equal_to_json_loads() -> None:
    image = os.urandom(200_000)
    for separators in ((",", ":"), (", ", ": "), (",", " :  ")):
        raw = answer(image, separators=separators)
        tree = lift.loads(raw)
        assert views(tree) == 1  # the fast path was taken
        assert unlifted(tree) == json.loads(raw)
        data = tree["candidates"][0]["content"]["parts"][1]["inlineData"]["data"]
        assert base64.b64decode(data) == image


@pytest.mark.parametrize(
    "text",
    [
        '"data":"' + "A" * LONG + '"',  # the key pattern inside a text value: escaped quotes, never cut
        "\\",  # a text ending in a backslash, right before the next key
        '\\"data\\": \\"x',
        "\u00e9t\u00e9 \U0001f34c \u2028",
    ],
)
def test_tricky_texts_beside_an_image(text: str) -> None:
    raw = answer(os.urandom(100_000), text=text)
    tree = lift.loads(raw)
    assert unlifted(tree) == json.loads(raw)
    assert views(tree) == 1


@pytest.mark.parametrize("bad", [b"\n", b"\x00", b"\x0b", b"\xff", b"\xc3"])
def test_bytes_json_refuses_inside_an_image_are_refused_by_its_decoder(bad: bytes) -> None:
    good = answer(os.urandom(100_000))
    start = good.index(b'"data":"') + len(b'"data":"') + 1000
    raw = good[:start] + bad + good[start:]
    with pytest.raises(ValueError):
        json.loads(raw)
    with pytest.raises(MalformedResponseError):
        parse_response(raw, spec=FLASH_31, size="1K", attempts=1)


def test_a_long_data_value_outside_inline_data_is_json_loads_own() -> None:
    escaped = b'{"data": "' + b"A" * LONG + b'\\nA"}'  # an escaped newline: valid JSON, a newline in the text
    assert lift.loads(escaped) == json.loads(escaped)
    raw_newline = b'{"data": "' + b"A" * LONG + b'\nA"}'  # a raw newline: invalid JSON
    with pytest.raises(ValueError):
        json.loads(raw_newline)
    with pytest.raises(ValueError):
        lift.loads(raw_newline)


def test_deep_nesting_is_a_malformed_answer_not_a_crash() -> None:
    image = answer(os.urandom(100_000))
    nested = b'{"x": ' * 900 + image + b"}" * 900  # json.loads manages it: so does the cut
    node = lift.loads(nested)
    for _ in range(900):
        node = node["x"]
    assert views(node) == 1 and unlifted(node) == json.loads(image)
    with pytest.raises(MalformedResponseError):
        parse_response(b"[" * 100_000 + b"]" * 100_000, spec=FLASH_31, size="1K", attempts=1)


def test_an_escaped_value_takes_the_plain_path() -> None:
    raw = b'{"data": "' + b"A" * LONG + b'\\/AAAA"}'
    assert lift.loads(raw) == json.loads(raw)
    assert views(lift.loads(raw)) == 0


def test_a_repeated_key_takes_the_plain_path() -> None:
    raw = b'{"data": "' + b"A" * LONG + b'", "data": "' + b"B" * LONG + b'"}'
    assert lift.loads(raw) == json.loads(raw) == {"data": "B" * LONG}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"data": "' + b"A" * LONG,  # cut off inside the image
        b'{"data": "' + b"A" * LONG + b'" ',  # cut off after it
        b'{"data": "' + b"A" * LONG + b'" "x"}',
        b"",
        b"[" * 10,
    ],
)
def test_broken_bodies_raise_what_json_loads_raises(raw: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(raw)
    with pytest.raises(ValueError):
        lift.loads(raw)


keys = st.sampled_from(["data", "text", "inlineData", "mimeType", "x", 'da"ta', "data\\"])
texts = st.one_of(
    st.text(max_size=20),
    st.sampled_from(['"data":"', '\\"data\\":\\"', "\\", '"', "data"]),
    st.integers(1, 3).map(lambda n: "QUJD" * (LONG // 4) * n),
)
images = st.integers(1, 2).map(lambda n: {"data": "QUJD" * (LONG // 4) * n, "mimeType": "image/png"})
trees = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), texts, images),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(tree=trees, spaced=st.booleans())
def test_generated_documents_parse_as_json_loads_does(tree: Any, spaced: bool) -> None:
    raw = json.dumps(tree, separators=(", ", ": ") if spaced else (",", ":")).encode()
    assert unlifted(lift.loads(raw)) == json.loads(raw)
