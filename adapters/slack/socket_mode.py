"""Socket Mode: event envelopes are acknowledged on arrival, then handed to bolt; the rest keep bolt's answer.

Bolt's handler acknowledges an envelope after `async_dispatch` returns: after its middleware (auth.test on the
first request) and listener matching. An event's acknowledgement never carries a payload, so it goes out first,
as in HTTP mode (events_http.py); slash commands and interactivity may answer with a payload and keep bolt's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from adapters.slack.handover import hand_to_bolt, settle


class SocketModeHandler(AsyncSocketModeHandler):
    """bolt's handler, acknowledging event envelopes first; `drain` waits for the ones being handed over."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: set[asyncio.Task[None]] = set()

    async def handle(self, client: Any, req: SocketModeRequest) -> None:
        if req.type != "events_api":
            await super().handle(client, req)
            return
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
        task = asyncio.current_task()
        if task is not None:
            self._pending.add(task)  # type: ignore[arg-type]
        try:
            await hand_to_bolt(lambda: run_async_bolt_app(self.app, req))
        finally:
            self._pending.discard(task)  # type: ignore[arg-type]

    async def drain(self) -> None:
        await settle(self._pending)
