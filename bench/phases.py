"""Timers wrapped around the bot's own functions at run time (this process only; bot code is not changed)."""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp

import bot.engine
import commands.imagine
from adapters.discord.responder import DiscordResponder
from bot.models import Reply
from bot.services import Services
from bot.store.base import Store

PHASES = ("intake & download", "store", "model client", "re-encode", "upload")
SERVER_HEADER = "x-fake-server-seconds"


class PhaseClock:
    """Seconds spent per phase since `reset()`, plus the fake Gemini's own work and the request bodies sent."""

    def __init__(self) -> None:
        self.spent: defaultdict[str, float] = defaultdict(float)
        self.fake_server = 0.0
        self.request_bytes: list[int] = []
        self.posted: float | None = None  # loop time the result upload returned; phases are frozen then
        self.at_post: dict[str, float] = {}

    def reset(self) -> None:
        self.spent.clear()
        self.fake_server = 0.0
        self.request_bytes.clear()
        self.posted = None
        self.at_post = {}

    def timed(self, phase: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.spent[phase] += time.perf_counter() - started

        return wrapper

    @contextmanager
    def installed(self, services: Services) -> Iterator[PhaseClock]:
        """Wrap intake, every Store method, the Gemini client, fit_upload and image uploads."""
        saved: list[tuple[Any, str, Any]] = []

        def patch(owner: Any, name: str, phase: str) -> None:
            original = getattr(owner, name)
            saved.append((owner, name, owner.__dict__.get(name) if hasattr(owner, "__dict__") else None))
            setattr(owner, name, self.timed(phase, original))

        patch(commands.imagine, "read_references", "intake & download")
        patch(bot.engine, "fit_upload", "re-encode")
        for name, member in inspect.getmembers(Store):
            if inspect.iscoroutinefunction(member) and not name.startswith("_") and name not in ("open", "close"):
                patch(services.store, name, "store")
        patch(services.gemini, "generate", "model client")
        traces, trace = services.gemini._session().trace_configs, self._http_trace()
        traces.append(trace)
        self._wrap_uploads(saved)
        try:
            yield self
        finally:
            traces.remove(trace)
            for owner, name, original in reversed(saved):
                if original is None:
                    delattr(owner, name)  # an instance attribute shadowing the class's method
                else:
                    setattr(owner, name, original)

    def _http_trace(self) -> aiohttp.TraceConfig:
        """The request body size and the fake's work, read by a trace on the Gemini client's aiohttp session."""

        async def started(session: object, context: object, params: aiohttp.TraceRequestStartParams) -> None:
            self.request_bytes.append(int(params.headers.get("content-length", 0)))

        async def answered(session: object, context: object, params: aiohttp.TraceRequestEndParams) -> None:
            self.fake_server += float(params.response.headers.get(SERVER_HEADER, 0.0))

        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(started)
        trace.on_request_end.append(answered)
        trace.freeze()
        return trace

    def _wrap_uploads(self, saved: list[tuple[Any, str, Any]]) -> None:
        send = DiscordResponder.send

        async def timed_send(responder: DiscordResponder, reply: Reply) -> None:
            if not reply.images:
                return await send(responder, reply)
            started = time.perf_counter()
            await send(responder, reply)
            self.spent["upload"] += time.perf_counter() - started
            self.at_post = {**self.spent, "model client": self.model_client(), "fake server": self.fake_server}
            self.posted = asyncio.get_running_loop().time()

        saved.append((DiscordResponder, "send", send))
        DiscordResponder.send = timed_send  # type: ignore[method-assign,assignment]

    def model_client(self) -> float:
        """The client's own share: generate() minus what the fake spent making the answer."""
        return max(0.0, self.spent["model client"] - self.fake_server)
