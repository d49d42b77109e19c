"""One turn at a time per thread; the others wait in order and know their position."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


class ThreadQueue:
    """FIFO per thread key, within this process."""

    def __init__(self) -> None:
        self._lines: dict[str, deque[asyncio.Event]] = {}

    def depth(self, key: str | None = None) -> int:
        """Turns running or waiting, for one thread or for all."""
        if key is not None:
            return len(self._lines.get(key, ()))
        return sum(len(line) for line in self._lines.values())

    @asynccontextmanager
    async def turn(self, key: str, on_queued: Callable[[int], Awaitable[None]] | None = None) -> AsyncIterator[None]:
        """Wait for this thread's earlier turns, then hold the thread until the block ends."""
        line = self._lines.setdefault(key, deque())
        ticket = asyncio.Event()
        line.append(ticket)
        try:
            if len(line) > 1:
                if on_queued is not None:
                    await on_queued(len(line) - 1)
                await ticket.wait()
            yield
        finally:
            was_first = line[0] is ticket
            line.remove(ticket)
            if was_first and line:
                line[0].set()
            if not line:
                self._lines.pop(key, None)
