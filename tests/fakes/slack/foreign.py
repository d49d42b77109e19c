"""A second, non-Slack host on its own port: serves bytes to anyone and records who sent a token."""

from __future__ import annotations

import secrets
from urllib.parse import quote

from aiohttp import web

from .recording import RecordedCall, recorder


class ForeignHost:
    """Stands in for any host that is not Slack's file host (a CDN, an attacker's server)."""

    def __init__(self, calls: list[RecordedCall]) -> None:
        self._files: dict[str, tuple[bytes, str]] = {}
        self._calls = calls
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self, host: str) -> None:
        app = web.Application(middlewares=[recorder(self._calls, foreign=True)])
        app.router.add_get("/{key}/{name}", self._serve)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, 0).start()
        self.base_url = f"http://{host}:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def add(self, name: str, data: bytes, mimetype: str) -> str:
        key = secrets.token_hex(6)
        self._files[key] = (data, mimetype)
        return f"{self.base_url}/{key}/{quote(name)}"

    async def _serve(self, request: web.Request) -> web.Response:
        found = self._files.get(request.match_info["key"])
        if found is None:
            return web.Response(status=404, text="not found")
        data, mimetype = found
        return web.Response(body=data, headers={"Content-Type": mimetype})
