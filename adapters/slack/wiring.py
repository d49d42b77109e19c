"""Build the bolt app and its Web API client from settings (SLACK_API_URL points both at a proxy or the fake)."""

from __future__ import annotations

import logging

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.app import SlackBot
from bot.services import Services

DOWNLOAD_CONNECTIONS = 64
WEB_API_TIMEOUT_SECONDS = 30  # slack_sdk's own default


class _TokenNotSkipped(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment even when given a client, then warns that the token "will be
    unused": our client carries that same token, so the warning only misleads the operator who set it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


_BOLT_APP_LOG = logging.getLogger(f"slack_bolt.{AsyncApp.__name__}")  # the framework logger bolt's AsyncApp uses
if not any(isinstance(known, _TokenNotSkipped) for known in _BOLT_APP_LOG.filters):
    _BOLT_APP_LOG.addFilter(_TokenNotSkipped())


async def build(services: Services) -> tuple[AsyncApp, SlackBot]:
    """On the running loop (the Web API session belongs to it); close with `close`."""
    settings = services.settings
    assert settings.slack_bot_token is not None
    # One session for every Web API call: without it slack_sdk opens and closes a connection (and a session) per
    # call, ~6 per image turn: at 200 turns in flight that churn cost more CPU than the calls themselves. No
    # cookie jar: each call stood alone before, and nothing here needs Slack's cookies.
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=WEB_API_TIMEOUT_SECONDS), cookie_jar=aiohttp.DummyCookieJar()
    )
    try:
        client = AsyncWebClient(
            token=settings.slack_bot_token.get_secret_value(),
            base_url=settings.slack_api_url,
            session=session,
            timeout=WEB_API_TIMEOUT_SECONDS,
        )
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))  # slack_sdk: no 429 retry
        secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
        app = AsyncApp(
            client=client,
            signing_secret=secret or "socket-mode-needs-no-signature",
            request_verification_enabled=secret is not None and settings.slack_app_token is None,
        )
        downloads = _downloads()
    except BaseException:
        await session.close()
        raise
    bot = SlackBot(services, client, downloads)
    try:
        bot.register(app)
    except BaseException:
        await close(bot)
        raise
    return app, bot


def _downloads() -> aiohttp.ClientSession:
    """File downloads: aiohttp reads a 1.4 MB body for ~1 ms of CPU where httpx (anyio, h11) took ~4 (bench); up
    to DOWNLOAD_CONNECTIONS at once, kept alive. Proxies from the environment apply (`SlackFile.read` passes each
    file host's route, read once: see `bot/proxies.py`); ~/.netrc does not."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=DOWNLOAD_CONNECTIONS),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


async def close(bot: SlackBot) -> None:
    """The downloads' session and the Web API session, each even when the other fails to close."""
    try:
        await bot.http.close()
    finally:
        if bot.client.session is not None:
            await bot.client.session.close()
