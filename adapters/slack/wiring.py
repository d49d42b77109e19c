"""Build the bolt app and its Web API client from settings (SLACK_API_URL points both at a proxy or the fake)."""

from __future__ import annotations

import httpx
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.app import SlackBot
from bot.services import Services


def build(services: Services) -> tuple[AsyncApp, SlackBot]:
    settings = services.settings
    assert settings.slack_bot_token is not None
    client = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))  # slack_sdk: no 429 retry
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    app = AsyncApp(
        client=client,
        signing_secret=secret or "socket-mode-needs-no-signature",
        request_verification_enabled=secret is not None and settings.slack_app_token is None,
    )
    bot = SlackBot(services, client, httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0)))
    bot.register(app)
    return app, bot
