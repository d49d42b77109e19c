"""The outbound surface every adapter implements."""

from __future__ import annotations

from typing import Protocol

from bot.models import Progress, Reply


class Responder(Protocol):
    """Where the answers to one invocation go (a thread, an interaction, a terminal)."""

    async def send(self, reply: Reply) -> None:
        """Post a reply (ephemeral where the platform allows it and the reply asks for it)."""

    async def progress(self, event: Progress) -> None:
        """Show progress: queued with position, started, finished or failed."""
