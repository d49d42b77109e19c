"""The reference photo every edit attaches: a 1.4 MB photo-like JPEG made once, byte-unique per use."""

from __future__ import annotations

import functools
import itertools

from tests.fakes.gemini.photo import encode, render_photo, tag_unique

REFERENCE_SIZE = (2048, 1365)  # a 3:2 phone-style picture, within BANANABOT_REFERENCE_MAX_SIDE (kept as sent)
_serial = itertools.count(1)


@functools.cache
def reference_jpeg() -> bytes:
    return encode(render_photo(*REFERENCE_SIZE, seed=7, grain=17), "JPEG", quality=92)


def unique_reference() -> bytes:
    """Users send different photos: each copy hashes differently, so the blob store can't deduplicate them."""
    return tag_unique(reference_jpeg(), f"reference {next(_serial)}")
