"""Replies to a terminal: text to stdout, images saved under the output folder as `image: PATH` lines."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from bot.models import Progress, Reply


class ConsoleResponder:
    """Prints replies; progress goes to stderr so stdout stays a clean transcript."""

    def __init__(self, out_dir: Path, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self.out_dir = out_dir
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.saved: list[Path] = []

    async def send(self, reply: Reply) -> None:
        prefix = "error: " if reply.error else ""
        for line in reply.text.splitlines() or ([""] if not reply.images else []):
            self.stdout.write(f"{prefix}{line}\n")
        if reply.images:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        for image in reply.images:
            path = (self.out_dir / image.filename).resolve()
            path.write_bytes(image.data)
            self.saved.append(path)
            self.stdout.write(f"image: {path}\n")
        if reply.buttons:
            self.stdout.write("actions: " + ", ".join(f"/{b.action.replace('_', ' ')}" for b in reply.buttons) + "\n")
        self.stdout.flush()

    async def progress(self, event: Progress) -> None:
        if event.kind == "queued":
            self.stderr.write(f"… queued, {event.position} ahead\n")
        elif event.kind == "started":
            self.stderr.write("… working\n")
        else:
            self.stderr.write(f"… {event.kind} in {event.elapsed:.1f}s\n")
        self.stderr.flush()
