"""base64 in Gemini parts: every spelling proto3 JSON allows decodes to the same bytes, anything else is refused."""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.gemini.parts import Part, b64_length, b64decode_any, b64encode


def stdlib_rule(value: str) -> bytes | None:
    """The rule before the SIMD fast path: translate URL-safe, pad, then strict binascii."""
    value = value.translate(str.maketrans("-_", "+/"))
    if len(value) % 4:
        value = value.strip()
        value += "=" * (-len(value) % 4)
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def ours(value: str) -> bytes | None:
    try:
        return b64decode_any(value)
    except ValueError:
        return None


@given(st.binary(max_size=200))
def test_every_spelling_decodes_to_the_bytes(raw: bytes) -> None:
    standard = base64.b64encode(raw).decode()
    url_safe = base64.urlsafe_b64encode(raw).decode()
    for text in (standard, standard.rstrip("="), url_safe, url_safe.rstrip("=")):
        assert b64decode_any(text) == raw
    assert b64encode(raw) == standard and b64_length(len(raw)) == len(standard)
    assert b64encode(memoryview(raw)[1:]) == base64.b64encode(raw[1:]).decode()


@given(st.text(alphabet="AQw+/-_=\n é", max_size=14))
def test_odd_text_gets_the_standard_library_answer(text: str) -> None:
    assert ours(text) == stdlib_rule(text)


@pytest.mark.parametrize("text", ["@@@@", "QUJD*", "QQ==QQ==", "=QQ=", "Q", "QUJDé==="])
def test_garbage_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid base64"):
        b64decode_any(text)


def test_a_big_image_round_trips_through_a_part() -> None:
    data = bytes(range(256)) * 8000
    wire = Part(data=data, mime_type="image/png").to_wire()
    assert Part.from_wire(wire).data == data
