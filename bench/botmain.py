"""`bananabot run` with timers (`python -m bench.botmain`): loop lag, store-lock waits and command handler times.

The bench starts the bot this way unless --plain: the samples (time.monotonic(), the clock the bench's loop uses
too) are written as JSON to $BENCH_BOT_STATS when the process exits, and the bench keeps those inside a burst.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import sys
import time
from typing import Any, Literal

import bot.cli
import bot.dispatcher
from bot.services import Services

SAMPLES: dict[str, list[tuple[float, float]]] = {"loop_lag": [], "store_lock_wait": [], "store_lock_hold": []}
HANDLERS: dict[str, list[tuple[float, float]]] = {}


class TimedLock(asyncio.Lock):
    """The SQLite store's lock, recording how long each acquisition waited and how long it was then held."""

    _held_since = 0.0

    async def acquire(self) -> Literal[True]:
        started = time.monotonic()
        acquired = await super().acquire()
        self._held_since = time.monotonic()
        SAMPLES["store_lock_wait"].append((started, self._held_since - started))
        return acquired

    def release(self) -> None:
        SAMPLES["store_lock_hold"].append((self._held_since, time.monotonic() - self._held_since))
        super().release()


async def _lag() -> None:
    while True:
        before = time.monotonic()
        await asyncio.sleep(0.01)
        SAMPLES["loop_lag"].append((before, max(0.0, time.monotonic() - before - 0.01)))


def install() -> None:
    build = bot.cli.build_services  # type: ignore[attr-defined]
    call = bot.dispatcher._call
    background: set[asyncio.Task[None]] = set()

    async def build_services(*args: Any, **kwargs: Any) -> Services:
        services = await build(*args, **kwargs)
        if isinstance(getattr(services.store, "_lock", None), asyncio.Lock):
            services.store._lock = TimedLock()  # type: ignore[attr-defined]
        background.add(asyncio.get_running_loop().create_task(_lag()))
        return services

    async def timed_call(command: Any, inv: Any, services: Services) -> Any:
        started = time.monotonic()
        try:
            return await call(command, inv, services)
        finally:
            HANDLERS.setdefault(command.name, []).append((started, time.monotonic() - started))

    bot.cli.build_services = build_services  # type: ignore[attr-defined]
    bot.dispatcher._call = timed_call  # type: ignore[assignment]
    atexit.register(_dump)


def _dump() -> None:
    path = os.environ.get("BENCH_BOT_STATS")
    if path:
        with open(path, "w") as out:
            json.dump({**SAMPLES, **{f"handler:{k}": v for k, v in HANDLERS.items()}}, out)


def window(path: str, start: float, end: float) -> dict[str, list[float]]:
    """The samples of a stats file taken between `start` and `end` (time.monotonic())."""
    with open(path) as stats:
        raw: dict[str, list[list[float]]] = json.load(stats)
    return {name: [value for at, value in samples if start <= at <= end] for name, samples in raw.items()}


if __name__ == "__main__":
    install()
    sys.exit(bot.cli.main(["run"]))
