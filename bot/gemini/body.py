"""A request body whose images are base64-encoded piece by piece while it is sent.

A 1.4 MB reference image is 1.9 MB of base64 inside the JSON. Encoding the whole body with `json.dumps` costs
~8 ms of CPU with the GIL held (standard-library base64) and three whole copies (base64 text, JSON text, bytes),
and the finished body stays in memory for the whole model call. Here the JSON around the images is dumped once
with a placeholder per image, and each image is encoded (pybase64, SIMD) in 192 KiB slices as the connection
takes them: nothing big is copied or kept, and the event loop is never held for more than one slice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pybase64

from bot.gemini.parts import b64_length

SLICE = 3 * 64 * 1024  # raw bytes per piece: a multiple of 3, so the pieces join into one valid base64 text


class StreamedBody:
    """The JSON text of `build(inline)`, where `inline(data)` stands for the base64 of each image.

    Args:
        build: Makes the wire object, calling `inline` for each image's `data` field.
    """

    def __init__(self, build: Callable[[Callable[[bytes], str]], Any]) -> None:
        marker = f"bananabot-inline-{uuid.uuid4().hex}"  # unguessable: user text can't contain it
        images: list[memoryview] = []

        def inline(data: bytes) -> str:
            images.append(memoryview(data))
            return marker

        text = json.dumps(build(inline), separators=(",", ":"), ensure_ascii=False)
        self._frame = [piece.encode() for piece in text.split(marker)]
        self._images = images
        if len(self._frame) != len(images) + 1:
            raise ValueError("an inline marker appeared outside an image field")

    @property
    def length(self) -> int:
        """Content-Length of the whole body."""
        return sum(map(len, self._frame)) + sum(b64_length(len(image)) for image in self._images)

    def __iter__(self) -> Iterator[bytes]:
        for frame, image in zip(self._frame, self._images, strict=False):
            yield frame
            for start in range(0, len(image), SLICE):
                yield pybase64.b64encode(image[start : start + SLICE])
        yield self._frame[-1]

    def __bytes__(self) -> bytes:
        return b"".join(self)
