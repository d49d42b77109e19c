"""The Slack adapter: mentions and /imagine start sessions in threads; replies there continue them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Settings
from bot.secret_text import shown_url
from bot.services import Services

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

log = logging.getLogger(__name__)
DEFAULT_HTTP_PORT = 3000


class SlackAdapter:
    """Socket Mode when SLACK_APP_TOKEN is set, else HTTP mode at /slack/events when SLACK_SIGNING_SECRET is."""

    name = "slack"
    required = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode)")

    def configured(self, settings: Settings) -> bool:
        return settings.slack_bot_token is not None and (
            settings.slack_app_token is not None or settings.slack_signing_secret is not None
        )

    def doctor(self, settings: Settings) -> list[str]:
        if settings.slack_bot_token is None:
            return ["slack: not configured (set SLACK_BOT_TOKEN and SLACK_APP_TOKEN or SLACK_SIGNING_SECRET)"]
        if settings.slack_app_token is not None:
            mode = "Socket Mode (SLACK_APP_TOKEN)"
        elif settings.slack_signing_secret is not None:
            mode = f"HTTP mode at :{settings.http_port or DEFAULT_HTTP_PORT}/slack/events"
        else:
            mode = "MISSING: set SLACK_APP_TOKEN or SLACK_SIGNING_SECRET"
        return [
            f"slack: bot token set; {mode}; Web API {shown_url(settings.slack_api_url)}",
            f"slack: files fetched only from {', '.join(settings.slack_file_hosts)}",
        ]

    async def run(self, services: Services) -> None:
        from adapters.slack.credentials import check_tokens
        from adapters.slack.wiring import build, close

        app, bot = await build(services)
        app_token = services.settings.slack_app_token
        try:
            await check_tokens(bot.client, app_token=app_token.get_secret_value() if app_token else None)
            if app_token is not None:
                await _socket_mode(app, services, app_token.get_secret_value())
            else:
                await _http_mode(app, services, services.settings.http_port or DEFAULT_HTTP_PORT)
        except asyncio.CancelledError:
            await services.drain()  # turns in flight still post through the app's Web API client
            raise
        finally:
            services.adapter_status[self.name] = "stopped"
            await close(bot)

    async def chat(self, services: Services, *, session: str, out_dir: Path | None) -> None:
        raise NotImplementedError("the Slack adapter has no terminal mode")


HEALTH_POLL_SECONDS = 2.0


async def _socket_mode(app: AsyncApp, services: Services, app_token: str) -> None:
    from adapters.slack.socket_mode import SocketModeHandler

    handler = SocketModeHandler(app, app_token)
    try:
        await handler.connect_async()  # type: ignore[no-untyped-call]
        while True:  # /healthz says 503 while the socket is down (slack_sdk reconnects it meanwhile)
            up = await handler.client.is_connected()
            services.adapter_status["slack"] = "connected" if up else "disconnected"
            await asyncio.sleep(HEALTH_POLL_SECONDS)
    finally:
        with contextlib.suppress(Exception):
            await handler.close_async()  # type: ignore[no-untyped-call]
        await handler.drain()  # envelopes already acknowledged start their turns, which the caller then drains


async def _http_mode(app: AsyncApp, services: Services, port: int) -> None:
    from adapters.slack.events_http import EventsRoute

    assert services.settings.slack_signing_secret is not None
    route = EventsRoute(app, services.settings.slack_signing_secret.get_secret_value())
    # Slack's events share the process's HTTP server with /healthz and /metrics.
    services.web.add_post("/slack/events", route.handle)
    await services.web.start(port)
    services.adapter_status["slack"] = "connected"
    try:
        await asyncio.Event().wait()
    finally:
        await route.drain()  # events already answered start their turns, which the caller then drains


ADAPTER = SlackAdapter()
