"""The fake Gemini's cheap paths give the same bytes as the plain ones: base64 reading, JSON writing, pooled PNGs."""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from tests.fakes.gemini.bench import PhotoPool
from tests.fakes.gemini.jsonbytes import Base64Text, dumps
from tests.fakes.gemini.wire import decode_base64

_ALPHABET = re.compile(r"[A-Za-z0-9+/]*")


def reference_decode(text: str) -> bytes:
    """The fake's rule before the fast path: either alphabet, padded or not, surrounding whitespace ignored."""
    unpadded = text.strip().rstrip("=").replace("-", "+").replace("_", "/")
    if not _ALPHABET.fullmatch(unpadded) or len(unpadded) % 4 == 1:
        raise ValueError(text)
    try:
        return base64.b64decode(unpadded + "=" * (-len(unpadded) % 4), validate=True)
    except binascii.Error as e:
        raise ValueError(text) from e


@given(
    st.text(alphabet="ABCabc019+/-_= \n\t@é", max_size=24)
    | st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode())
)
def test_decode_base64_accepts_and_rejects_what_the_plain_rule_does(text: str) -> None:
    try:
        expected: bytes | None = reference_decode(text)
    except ValueError:
        expected = None
    try:
        got: bytes | None = decode_base64(text)
    except ValueError:
        got = None
    assert got == expected


@given(st.binary(max_size=300))
def test_decode_base64_reads_every_padding_and_alphabet(raw: bytes) -> None:
    standard = base64.b64encode(raw).decode()
    for text in (standard, standard.rstrip("="), base64.urlsafe_b64encode(raw).decode(), f" {standard}\n"):
        assert decode_base64(text) == raw


def test_dumps_is_json_dumps_with_base64_copied_in() -> None:
    blob = Base64Text(base64.b64encode(bytes(range(256)) * 900).decode())
    doc = {
        "candidates": [{"content": {"parts": [{"text": 'say "hi"\n'}, {"inlineData": {"data": blob}}]}}],
        "again": (blob, "plain", 3, None, 1.5, True),
        "first": Base64Text("QUJD"),
    }
    for options in ({"indent": 2}, {"separators": (",", ":")}, {}):
        assert dumps(doc, **options) == json.dumps(doc, **options).encode()
    assert json.loads(dumps(doc, indent=2))["again"][0] == blob


def test_dumps_without_base64_is_plain_json() -> None:
    doc = {"error": {"code": 400, "message": 'Base64 decoding failed for "@@"', "details": []}}
    assert dumps(doc, indent=2) == json.dumps(doc, indent=2).encode()


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of every chunk, checking each CRC like a strict PNG reader."""
    out, at = [], 8
    while at < len(png):
        length = int.from_bytes(png[at : at + 4], "big")
        kind, body = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        crc = int.from_bytes(png[at + 8 + length : at + 12 + length], "big")
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, kind
        out.append((kind, body))
        at += 12 + length
    return out


@pytest.mark.parametrize("size", [(64, 48), (97, 33)])
def test_pooled_base64_is_a_unique_valid_png(size: tuple[int, int]) -> None:
    pool = PhotoPool(variants=1)
    answers = [base64.b64decode(pool.take_base64(*size), validate=True) for _ in range(3)]
    assert len(set(answers)) == 3  # one variant, still three different byte strings
    for png in answers:
        chunks = _chunks(png)
        assert chunks[-1] == (b"IEND", b"") and any(kind == b"tEXt" for kind, _ in chunks)
        with Image.open(io.BytesIO(png)) as img:
            img.load()
            assert img.size == size
    assert _chunks(pool.take(*size))[:-2] == _chunks(answers[0])[:-2]  # the same picture, another tag
