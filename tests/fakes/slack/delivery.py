"""HTTP event delivery to the bot's request URL, signed like Slack (reference §6, §7)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from .events import signature

USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


@dataclass(frozen=True, slots=True)
class Delivery:
    """The bot's HTTP answer; Slack wants a 2xx within 3 s (`elapsed`) or it redelivers."""

    status: int
    body: str
    headers: dict[str, str]
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body)


def signed_headers(body: str, content_type: str, *, secret: str, timestamp: int | str | None = None) -> dict[str, str]:
    """The headers Slack sends with a request: its type, user agent, timestamp (now by default) and signature."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": content_type,
        "User-Agent": USER_AGENT,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature(secret, ts, body),
    }


async def post_signed(
    session: aiohttp.ClientSession,
    target_url: str,
    body: str,
    content_type: str,
    *,
    secret: str,
    signed: bool = True,
    timestamp: int | str | None = None,
    bad_signature: bool = False,
    retry_num: int | None = None,
    retry_reason: str | None = None,
    timeout: float = 10.0,
) -> Delivery:
    if signed:
        key = "not-the-signing-secret" if bad_signature else secret
        headers = signed_headers(body, content_type, secret=key, timestamp=timestamp)
    else:
        headers = {"Content-Type": content_type, "User-Agent": USER_AGENT}
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
    elif retry_reason is not None:
        headers["X-Slack-Retry-Reason"] = retry_reason
    started = time.monotonic()
    async with session.post(
        target_url, data=body.encode(), headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as response:
        elapsed = time.monotonic() - started  # Slack's clock stops when the answer starts, not at the last byte
        text = await response.text()
        return Delivery(status=response.status, body=text, headers=dict(response.headers), elapsed=elapsed)
