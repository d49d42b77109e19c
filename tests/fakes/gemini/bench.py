"""Benchmark mode: realistic 1–2 MB PNGs (at 1K) from a pool rendered once per size, byte-unique per answer."""

from __future__ import annotations

import io
import itertools
import threading

import pybase64
from PIL import Image, UnidentifiedImageError

from .errors import BAD_IMAGE, ApiError
from .jsonbytes import Base64Text
from .photo import encode, render_photo, tag_unique
from .render import Picture
from .request import ImageRequest

POOL_VARIANTS = 2


class PhotoPool:
    """Photo-like PNGs per pixel size, rendered on first use (blocking: call from a worker thread).

    Every answer gets its own tEXt chunk, so the bot stores and uploads distinct bytes as it would for real images,
    while the fake spends microseconds instead of a render per request: the base64 of each pooled picture is kept,
    up to the last whole 3-byte group before the tag, and only the few bytes from there on are encoded per answer.
    """

    def __init__(self, variants: int = POOL_VARIANTS) -> None:
        self.variants = variants
        self._pool: dict[tuple[int, int], list[tuple[bytes, str]]] = {}
        self._locks: dict[tuple[int, int], threading.Lock] = {}
        self._guard = threading.Lock()
        self._serial = itertools.count(1)

    def _variants(self, width: int, height: int) -> list[tuple[bytes, str]]:
        key = (width, height)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._pool:
                pngs = [encode(render_photo(width, height, seed=seed), "PNG") for seed in range(self.variants)]
                self._pool[key] = [(png, pybase64.b64encode(png[: _kept(png)]).decode("ascii")) for png in pngs]
        return self._pool[key]

    def take(self, width: int, height: int) -> bytes:
        """A pooled picture's bytes, made unique (the tag goes before IEND, the last 12 bytes)."""
        serial = next(self._serial)
        png, _ = self._variants(width, height)[serial % self.variants]
        return tag_unique(png, f"answer {serial}")

    def take_base64(self, width: int, height: int) -> Base64Text:
        """`take()` as base64 text, encoding only the bytes after the kept prefix."""
        serial = next(self._serial)
        png, head = self._variants(width, height)[serial % self.variants]
        kept = _kept(png)
        tail = tag_unique(png, f"answer {serial}")[kept:]
        return Base64Text(head + pybase64.b64encode(tail).decode("ascii"))

    def picture(self, picture: Picture) -> Base64Text:
        return self.take_base64(picture.width, picture.height)


def _kept(png: bytes) -> int:
    """How many leading bytes every tagged copy shares with `png`, rounded down to whole base64 groups."""
    return (len(png) - 12) // 3 * 3


def probe_headers(req: ImageRequest) -> list[tuple[int, int] | None]:
    """Like validate.probe_images, but reads only each image's header (no full decode)."""
    sizes: list[tuple[int, int] | None] = []
    for content in req.contents:
        for part in content.parts:
            if part.data is None or not part.is_image:
                continue
            try:
                with Image.open(io.BytesIO(part.data)) as img:
                    sizes.append(img.size)
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
                raise ApiError(400, BAD_IMAGE) from None
    return sizes
