"""Let the event loop run between gateway events.

discord.py reads its gateway socket in a loop (`DiscordWebSocket.poll_event`) that never yields while events are
already buffered: a burst of 200 INTERACTION_CREATE events is parsed and dispatched in one go (~0.3-0.7 ms each)
before any handler sends its defer, and every other callback (a cheap command's answer, an upload's next piece)
waits behind it. One `sleep(0)` after each event lets handlers and I/O interleave with the parsing.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import discord.gateway

_PACED = "_bananabot_paced"


def pace_gateway() -> None:
    """Wrap `DiscordWebSocket.poll_event` once, so each event it handles ends with a turn of the event loop."""
    poll: Callable[[Any], Awaitable[None]] = discord.gateway.DiscordWebSocket.poll_event
    if getattr(poll, _PACED, False):
        return

    @functools.wraps(poll)
    async def poll_event(self: Any) -> None:
        await poll(self)
        await asyncio.sleep(0)

    setattr(poll_event, _PACED, True)
    discord.gateway.DiscordWebSocket.poll_event = poll_event  # type: ignore[method-assign]
