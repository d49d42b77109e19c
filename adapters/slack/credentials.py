"""The tokens checked once at start: a token Slack refuses stops the bot with its variable named, instead of a
Socket Mode client retrying forever or an HTTP-mode bot that looks healthy until its first post fails."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapter import TokenRefused

log = logging.getLogger(__name__)

# Slack's answers meaning "this token will never work" (not a network problem, not a rate limit).
REFUSED = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "not_allowed_token_type"}
)


async def check_tokens(client: AsyncWebClient, *, app_token: str | None) -> None:
    """`auth.test` with the bot token and, in Socket Mode, `apps.connections.open` with the app token. Slack being
    unreachable is not decided here: it is logged in one line, and connecting retries as it always does."""
    await _check("SLACK_BOT_TOKEN", "the Bot User OAuth Token, xoxb-…", client.auth_test())
    if app_token is not None:
        opened = client.apps_connections_open(app_token=app_token)
        await _check("SLACK_APP_TOKEN", "an app-level token with connections:write, xapp-…", opened)


async def _check(variable: str, what: str, call: Awaitable[Any]) -> None:
    try:
        await call
    except SlackApiError as exc:
        error = str(exc.response.get("error", ""))
        if error in REFUSED:
            raise TokenRefused(f"Slack refused {variable} ({error}): it should be {what}") from None
        log.warning("checking %s: Slack answered %s; going on", variable, error)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("checking %s: Slack unreachable (%s); connecting anyway", variable, type(exc).__name__)
