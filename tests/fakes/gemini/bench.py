"""Benchmark mode: realistic 1–2 MB PNGs (at 1K) from a pool rendered once per size, byte-unique per answer."""

from __future__ import annotations

import io
import itertools
import threading

from PIL import Image, UnidentifiedImageError

from .errors import BAD_IMAGE, ApiError
from .photo import encode, render_photo, tag_unique
from .render import Picture
from .request import ImageRequest

POOL_VARIANTS = 2


class PhotoPool:
    """Photo-like PNGs per pixel size, rendered on first use (blocking: call from a worker thread).

    Every answer gets its own tEXt chunk, so the bot stores and uploads distinct bytes as it would for real images,
    while the fake spends microseconds instead of a render per request.
    """

    def __init__(self, variants: int = POOL_VARIANTS) -> None:
        self.variants = variants
        self._pool: dict[tuple[int, int], list[bytes]] = {}
        self._locks: dict[tuple[int, int], threading.Lock] = {}
        self._guard = threading.Lock()
        self._serial = itertools.count(1)

    def take(self, width: int, height: int) -> bytes:
        key = (width, height)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._pool:
                self._pool[key] = [
                    encode(render_photo(width, height, seed=seed), "PNG") for seed in range(self.variants)
                ]
        serial = next(self._serial)
        return tag_unique(self._pool[key][serial % self.variants], f"answer {serial}")

    def picture(self, picture: Picture) -> bytes:
        return self.take(picture.width, picture.height)


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
