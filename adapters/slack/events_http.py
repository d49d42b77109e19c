"""POST /slack/events in HTTP mode: event callbacks are answered as soon as their signature checks out, then
handed to bolt; everything else goes through bolt before its answer.

Slack wants a 2xx within 3 s and asks apps to answer first and work after. Bolt's own aiohttp route parses each
request into a BoltRequest, runs every middleware and matches listeners before it answers: ~0.3 ms of one event
loop per event. With 200 mentions arriving at once the last answer waited ~75 ms (bench section 1). An event
callback's answer never carries anything (bolt answers it with an empty 200 once a listener matched), so this
route answers it after the signature check and a JSON parse, and bolt processes it right after, in a task of its
own. url_verification, ssl_check, slash commands and interactivity keep bolt's answer, which may carry a body.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

from adapters.slack.handover import hand_to_bolt, settle

QUIET = 0.002
HOLD_MAX = 0.2
FRESH_SECONDS = 240  # answered early only when signed within this (bolt's window is 300 s)


class EventsRoute:
    """The route's handler; `drain` waits for the events already answered to reach bolt (on stop)."""

    def __init__(self, app: AsyncApp, signing_secret: str) -> None:
        self.app = app
        self.verifier = SignatureVerifier(signing_secret)
        self._answered: deque[web.Request] = deque()  # answered, not yet handed to bolt (bodies read and kept)
        self._last_answer = 0.0
        self._pump: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._closing = False

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        timestamp = request.headers.get("X-Slack-Request-Timestamp")
        if timestamp is not None and not timestamp.strip().isdigit():
            # slack_sdk's verifier raises on it (bolt would answer 500 and log a traceback): no signature holds
            return web.Response(status=401, text="invalid request")
        if self._is_signed_event_callback(request, body):
            if self._closing:  # nobody would hand it over: Slack redelivers it, to this process or another
                return web.Response(status=503, text="stopping")
            self._answered.append(request)
            self._last_answer = asyncio.get_running_loop().time()
            if self._pump is None or self._pump.done():
                self._pump = asyncio.create_task(self._hand_over())
            return web.Response(status=200)
        return await to_aiohttp_response(await self._dispatch(request))

    def _is_signed_event_callback(self, request: web.Request, body: str) -> bool:
        if request.content_type != "application/json":
            return False
        timestamp = request.headers.get("X-Slack-Request-Timestamp")
        signature = request.headers.get("X-Slack-Signature")
        if not self.verifier.is_valid(body, timestamp, signature):
            return False  # bolt answers 401 with its own log line
        if abs(time.time() - int(timestamp or 0)) > FRESH_SECONDS:
            return False  # near the end of the 5 minutes bolt would refuse it after the answer (and its retries)
        try:
            payload: Any = json.loads(body)
        except ValueError:
            return False
        return isinstance(payload, dict) and payload.get("type") == "event_callback"

    async def _hand_over(self) -> None:
        """Events that arrive together get all their answers before any of their work starts: bolt gets them once
        no event has arrived for QUIET seconds (at most HOLD_MAX after the first). One event waits QUIET."""
        loop = asyncio.get_running_loop()
        first = loop.time()
        while True:  # a debounce: the arrivals it waits on are HTTP requests, not something to await
            quiet = self._last_answer + QUIET - loop.time()
            if quiet <= 0 or loop.time() - first >= HOLD_MAX:
                break
            await asyncio.sleep(quiet)
        while self._answered:
            task = asyncio.create_task(self._hand_over_one(self._answered.popleft()))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _hand_over_one(self, request: web.Request) -> None:
        await hand_to_bolt(lambda: self._dispatch(request))

    async def _dispatch(self, request: web.Request) -> BoltResponse:
        return await self.app.async_dispatch(await to_bolt_request(request))  # the body was read: aiohttp kept it

    async def drain(self) -> None:
        """On stop: answer new events 503 (Slack redelivers them), hand over the answered ones (bounded wait)."""
        self._closing = True
        if self._pump is not None:
            await settle({self._pump})
        await settle(self._pending)
