"""The process's HTTP server on BANANABOT_HTTP_PORT: /healthz, /metrics, and adapters' routes (Slack events)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from bot.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebServer:
    """Started once, on demand: by `bananabot run` when a port is set, or by an adapter that needs HTTP."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None
        self._lock = asyncio.Lock()
        self.port: int | None = None

    def add_post(self, path: str, handler: Handler) -> None:
        self.app.router.add_post(path, handler)

    async def start(self, port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 - platforms must reach it
        async with self._lock:
            if self._runner is not None:
                return
            self.app.freeze()  # routes are fixed once serving
            runner = web.AppRunner(self.app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, host, port).start()
            self._runner, self.port = runner, port
            log.info("http: listening on :%d (/healthz, /metrics)", port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def health(self) -> tuple[bool, dict[str, object]]:
        database = await self.services.store.ping()
        adapters = dict(self.services.adapter_status)
        healthy = database and all(state == "connected" for state in adapters.values())
        return healthy, {"status": "ok" if healthy else "unhealthy", "database": database, "adapters": adapters}

    async def _healthz(self, request: web.Request) -> web.Response:
        healthy, body = await self.health()
        return web.Response(
            status=200 if healthy else 503, body=json.dumps(body).encode(), content_type="application/json"
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.services.metrics.render(), headers={"Content-Type": CONTENT_TYPE})
