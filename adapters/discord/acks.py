"""Acks first: a turn's work waits until the defers already on the way have landed (200 ms at most).

Discord wants every interaction answered within 3 s. A burst's INTERACTION_CREATE events reach the handlers
together and each sends its defer at once, but the first defers to land let their turns start downloading,
storing and posting while the rest are still on the way, on the same event loop. Holding that work until no
defer is in flight gives the whole burst its acks first; one interaction alone waits for nothing but its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import discord

HOLD_MAX = 0.2


class AckGate:
    def __init__(self) -> None:
        self._in_flight = 0
        self._clear = asyncio.Event()
        self._clear.set()

    async def defer(self, interaction: discord.Interaction[Any]) -> None:
        """Defer (ephemeral, thinking), then wait until no other defer is in flight, or HOLD_MAX."""
        self._in_flight += 1
        self._clear.clear()
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._clear.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._clear.wait(), HOLD_MAX)
