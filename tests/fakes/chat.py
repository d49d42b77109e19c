"""Test doubles for the adapter side: a responder that records, attachments from bytes."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.images import ImageRejected
from bot.models import Progress, Reply


@dataclass
class RecordingResponder:
    """Keeps every reply and progress event, in order."""

    replies: list[Reply] = field(default_factory=list)
    events: list[Progress] = field(default_factory=list)
    fail_sends: bool = False

    async def send(self, reply: Reply) -> None:
        if self.fail_sends and reply.images:
            raise ConnectionError("upload refused")
        self.replies.append(reply)

    async def progress(self, event: Progress) -> None:
        self.events.append(event)

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.replies]


@dataclass(frozen=True)
class BytesImage:
    """An attachment whose bytes are already here; declared type/size as a platform would state them."""

    data: bytes
    filename: str = "ref.png"
    declared_mime: str | None = "image/png"
    declared_size: int | None = None
    reads: list[int] = field(default_factory=list)

    async def read(self, max_bytes: int) -> bytes:
        self.reads.append(max_bytes)
        if len(self.data) > max_bytes:
            raise ImageRejected("too_large", f"“{self.filename}” is too large.")
        return self.data
