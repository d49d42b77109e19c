"""Small asyncio helpers: waiting for a condition, and a monitor of this process's own event-loop lag."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


async def wait_until(check: Callable[[], Any], *, timeout: float, step: float = 0.01) -> bool:
    """Poll `check` until truthy; False on timeout (the caller reports what it got)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(step)
    return True


class LagMonitor:
    """How late a 10 ms sleep wakes up in this process: shows whether the fakes' side kept up."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def __enter__(self) -> LagMonitor:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, loop.time() - before - self.interval))
