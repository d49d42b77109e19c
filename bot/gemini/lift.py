"""Parse an answer's JSON without copying its images through `str`: each long `"data": "<base64>"` value is cut
out of the bytes before `json.loads` and put back as a memoryview over the original bytes.

json.loads of a 2 MB answer decodes the bytes to a str, scans every character and copies the base64 into a
second str: ~3.5 ms and two fresh multi-megabyte allocations, all holding the GIL. The cut-out values are found
with memchr-speed searches, and base64 decodes straight from the bytes. The result is the same tree json.loads
gives, except those values are memoryviews (tests/gemini/test_lift.py checks it on generated documents). Cut
values are only checked by their reader, the strict base64 decoder (see `_restore`).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

LIFT_MIN_BYTES = 64 * 1024  # shorter values stay in the JSON: only images are worth cutting out
_KEY = b'"data"'
_COLON = re.compile(rb'\s*:\s*"')


def loads(raw: bytes) -> Any:
    """`json.loads(raw)`, with long "data" string values as memoryviews of `raw` (only when they hold no escape,
    so their bytes are their text). Anything unusual takes plain json.loads, which also gives the errors."""
    lifted = _lift(raw)
    if lifted is None:
        return json.loads(raw)
    skeleton, spans, token = lifted
    try:
        tree = json.loads(skeleton)
    except ValueError:
        return json.loads(raw)  # the authoritative error, or a document the cut misread
    found = _restore(tree, spans, token)
    if found != len(spans):  # a cut that was not a "data" value after all
        return json.loads(raw)
    return tree


def _lift(raw: bytes) -> tuple[bytes, list[memoryview], str] | None:
    view = memoryview(raw)
    pieces: list[bytes | memoryview] = []
    spans: list[memoryview] = []
    token = f"\\u0000lifted-{uuid.uuid4().hex}-"  # as JSON text: a value no answer can hold by chance
    done = 0
    at = raw.find(_KEY)
    while at >= 0:  # bytes.find, not a regex scan: it skips over megabytes of base64 at memchr speed
        colon = _COLON.match(raw, at + len(_KEY))
        if colon is None or _escaped(raw, at):
            at = raw.find(_KEY, at + 1)
            continue
        start = colon.end()
        end = raw.find(b'"', start)
        if end < 0:
            return None
        if end - start >= LIFT_MIN_BYTES:
            if raw.find(b"\\", start, end) >= 0:
                return None  # escapes: its bytes are not its text
            pieces += (view[done:start], f"{token}{len(spans)}".encode())
            spans.append(view[start:end])
            done = end
        at = raw.find(_KEY, end + 1)
    if not spans:
        return None
    pieces.append(view[done:])
    return b"".join(pieces), spans, json.loads(f'"{token}"')


def _escaped(raw: bytes, quote: int) -> bool:
    """Whether the quote at `quote` follows an odd run of backslashes (so it is inside a string)."""
    run = 0
    while quote - run - 1 >= 0 and raw[quote - run - 1] == 0x5C:
        run += 1
    return run % 2 == 1


def _restore(tree: Any, spans: list[memoryview], token: str) -> int:
    """Put each span back where its placeholder is; how many were put back. Only as the "data" of an inline-data
    object (one with a MIME type): its reader decodes it as strict base64, so bytes json.loads would refuse (a
    control character, invalid UTF-8) are refused there too. A placeholder anywhere else is not counted, and the
    caller parses the whole answer with json.loads instead. Iterative: depth is not limited by Python's stack."""
    found = 0
    stack = [tree]
    while stack:
        node = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if isinstance(node, dict):
            value = node.get("data")
            if isinstance(value, str) and value.startswith(token) and ("mimeType" in node or "mime_type" in node):
                node["data"] = spans[int(value[len(token) :])]
                found += 1
        stack.extend(child for child in children if isinstance(child, dict | list))
    return found
