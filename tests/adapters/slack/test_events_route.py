"""The HTTP events route: answers before bolt, bolt after, and the answers of a burst before any of its work."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.events_http import EventsRoute
from bench.sender import Request
from tests.fakes.slack import CHANNEL, HUMAN, FakeSlack
from tests.fakes.slack.delivery import signed_headers
from tests.fakes.slack.events import encode


def pipelined(fake: FakeSlack, url: str, payloads: list[dict[str, Any]]) -> bytes:
    """Signed requests back to back on one connection, as one write: they reach the server together."""
    out = b""
    for payload in payloads:
        body, content_type = encode(payload)
        out += Request(url, signed_headers(body, content_type, secret=fake.signing_secret), body.encode()).raw()
    return out


def mentions_app(fake: FakeSlack) -> tuple[AsyncApp, list[tuple[float, str]]]:
    """A bolt app whose mention listener records when it started and the event's text."""
    app = AsyncApp(
        client=AsyncWebClient(token=fake.bot_token, base_url=fake.api_url), signing_secret=fake.signing_secret
    )
    started: list[tuple[float, str]] = []

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any]) -> None:
        started.append((time.monotonic(), event["text"]))

    return app, started


def serving(handler: Any) -> TestServer:
    web_app = web.Application()
    web_app.router.add_post("/slack/events", handler)
    return TestServer(web_app, host="127.0.0.1")


async def test_a_burst_is_answered_before_bolt_starts_any_of_it(fake_slack: FakeSlack) -> None:
    app, started = mentions_app(fake_slack)
    route = EventsRoute(app, fake_slack.signing_secret)
    answered: list[float] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        response = await route.handle(request)
        answered.append(time.monotonic())
        return response

    async with serving(handle) as server:
        n = 20
        payloads = [fake_slack.app_mention(HUMAN, CHANNEL, f"hi #{i}") for i in range(n)]
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(pipelined(fake_slack, str(server.make_url("/slack/events")), payloads))
        await writer.drain()
        heads = b""
        while heads.count(b"HTTP/1.1 200 OK") < n:
            heads += await asyncio.wait_for(reader.read(65536), timeout=5)
        writer.close()
        for _ in range(100):
            if len(started) == n:
                break
            await asyncio.sleep(0.02)
        await route.drain()

    assert sorted(text for _, text in started) == sorted(f"hi #{i}" for i in range(n))
    assert len(answered) == n and max(answered) < min(at for at, _ in started)


async def test_drain_hands_over_what_was_answered(fake_slack: FakeSlack) -> None:
    app, started = mentions_app(fake_slack)
    route = EventsRoute(app, fake_slack.signing_secret)
    async with serving(route.handle) as server:
        url = str(server.make_url("/slack/events"))
        answer = await fake_slack.deliver_http(url, fake_slack.app_mention(HUMAN, CHANNEL, "last words"))
        assert answer.status == 200
        await route.drain()  # what stop does: no wait for the debounce to pass on its own
        await asyncio.sleep(0)  # bolt starts its listener as a task
    assert [text for _, text in started] == ["last words"]


async def test_events_arriving_while_stopping_are_refused_for_slack_to_redeliver(fake_slack: FakeSlack) -> None:
    app, started = mentions_app(fake_slack)
    route = EventsRoute(app, fake_slack.signing_secret)
    async with serving(route.handle) as server:
        url = str(server.make_url("/slack/events"))
        await route.drain()
        late = await fake_slack.deliver_http(url, fake_slack.app_mention(HUMAN, CHANNEL, "too late"))
        challenge = await fake_slack.deliver_http(url, fake_slack.url_verification("c-1"))
    assert late.status == 503 and started == []
    assert challenge.status == 200  # only events are refused: nothing else is handed over later
