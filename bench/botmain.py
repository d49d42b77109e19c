"""`bananabot run` with timers (`python -m bench.botmain`): loop lag, turn stages and command handler times.

The bench starts the bot this way unless --plain: the samples (time.monotonic(), the clock the bench's loop uses
too) are written as JSON to $BENCH_BOT_STATS when the process exits, and the bench keeps those inside a burst.
Every sample is (started, seconds); the wrappers sit around bot functions at run time, bot code is not changed.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import gc
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import discord

import bot.cli
import bot.dispatcher
import bot.gemini.client
import commands.imagine
from bot.services import Services

SAMPLES: dict[str, list[tuple[float, float]]] = {}


def record(name: str, started: float) -> None:
    SAMPLES.setdefault(name, []).append((started, time.monotonic() - started))


def timed(name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return await fn(*args, **kwargs)
        finally:
            record(name, started)

    return wrapper


def timed_sync(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            record(name, started)

    return wrapper


async def _lag() -> None:
    while True:
        before = time.monotonic()
        await asyncio.sleep(0.01)
        SAMPLES.setdefault("loop_lag", []).append((before, max(0.0, time.monotonic() - before - 0.01)))


def _gc_timer() -> Callable[[str, dict[str, int]], None]:
    """A gc callback: each collection's pause, keyed by generation (a full one walks every live object)."""
    began = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.monotonic()
        else:
            record(f"gc:{info['generation']}", began[0])

    return callback


def _wrap(owner: Any, name: str, label: str) -> None:
    original = getattr(owner, name)
    setattr(owner, name, (timed if asyncio.iscoroutinefunction(original) else timed_sync)(label, original))


def _answer_headers_timer() -> aiohttp.TraceConfig:
    """aiohttp's request trace: from the request's start until its answer's headers arrived."""

    async def start(session: object, context: Any, params: object) -> None:
        context.began = time.monotonic()

    async def end(session: object, context: Any, params: object) -> None:
        record("stage:request sent → answer headers", context.began)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(start)
    trace.on_request_end.append(end)
    trace.freeze()
    return trace


def _instrument(services: Services) -> None:
    """Turn stages: the model call, its HTTP exchange up to the answer's headers, ledger and store writes."""
    _wrap(services.gemini, "generate", "stage:model call")
    services.gemini._session().trace_configs.append(_answer_headers_timer())
    _wrap(services.ledger, "reserve", "stage:ledger reserve")
    _wrap(services.store, "put_blob", "stage:store image (hash + write)")
    _wrap(services.store, "insert_turn", "stage:store turn row")
    if hasattr(services.store, "write"):
        _wrap(services.store, "write", "stage:store write (queue + run)")


def install() -> None:
    build = bot.cli.build_services  # type: ignore[attr-defined]
    call = bot.dispatcher._call
    background: set[asyncio.Task[None]] = set()

    async def build_services(*args: Any, **kwargs: Any) -> Services:
        services = await build(*args, **kwargs)
        _instrument(services)
        background.add(asyncio.get_running_loop().create_task(_lag()))
        return services

    async def timed_call(command: Any, inv: Any, services: Services) -> Any:
        started = time.monotonic()
        try:
            return await call(command, inv, services)
        finally:
            record(f"handler:{command.name}", started)

    bot.cli.build_services = build_services  # type: ignore[attr-defined]
    bot.dispatcher._call = timed_call  # type: ignore[assignment]
    for name, label in (("run_turns", "imagine turn (ledger to reply)"), ("read_references", "intake (references)"),
                        ("session_of", "session (thread, lease)")):  # fmt: skip
        _wrap(commands.imagine, name, f"stage:{label}")
    _wrap(bot.gemini.client, "parse_response", "stage:answer parse (thread)")
    _wrap(discord.InteractionResponse, "defer", "stage:discord defer (call to answer)")
    gc.callbacks.append(_gc_timer())
    atexit.register(_dump)


def _dump() -> None:
    path = os.environ.get("BENCH_BOT_STATS")
    if path:
        with open(path, "w") as out:
            json.dump(SAMPLES, out)


def window(path: str, start: float, end: float) -> dict[str, list[float]]:
    """The samples of a stats file begun between `start` and `end` (time.monotonic())."""
    with open(path) as stats:
        raw: dict[str, list[list[float]]] = json.load(stats)
    return {name: [value for at, value in samples if start <= at <= end] for name, samples in raw.items()}


def starts(path: str, name: str, start: float, end: float) -> list[float]:
    """When each `name` sample began, in seconds after `start`."""
    with open(path) as stats:
        raw: dict[str, list[list[float]]] = json.load(stats)
    return [at - start for at, _ in raw.get(name, []) if start <= at <= end]


if __name__ == "__main__":
    install()
    sys.exit(bot.cli.main(["run"]))
