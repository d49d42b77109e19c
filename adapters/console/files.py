"""Local files as attachments: declared type and size from the file system, read lazily."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path

from bot.images import ImageRejected, human_bytes


@dataclass(frozen=True, slots=True)
class LocalImage:
    """An image file named with /attach."""

    path: Path

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def declared_mime(self) -> str | None:
        return mimetypes.guess_type(self.path.name)[0]

    @property
    def declared_size(self) -> int | None:
        try:
            return self.path.stat().st_size
        except OSError:
            return None  # gone since /attach: read() says so

    async def read(self, max_bytes: int) -> bytes:
        try:
            size = self.path.stat().st_size
            if size > max_bytes:
                raise ImageRejected(
                    "too_large", f"“{self.filename}” is {human_bytes(size)}; the limit is {human_bytes(max_bytes)}."
                )
            return self.path.read_bytes()
        except OSError as exc:  # moved, deleted or unreadable since /attach
            raise ImageRejected("unavailable", f"I can't read “{self.filename}” any more: {exc.strerror}.") from exc
