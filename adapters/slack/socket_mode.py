"""Socket Mode: event envelopes are acknowledged on arrival, then handed to bolt; the rest keep bolt's answer.

Bolt's handler acknowledges an envelope after `async_dispatch` returns: after its middleware (auth.test on the
first request) and listener matching. An event's acknowledgement never carries a payload, so it goes out first,
as in HTTP mode (events_http.py); slash commands and interactivity may answer with a payload and keep bolt's.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

log = logging.getLogger(__name__)


class SocketModeHandler(AsyncSocketModeHandler):
    async def handle(self, client: Any, req: SocketModeRequest) -> None:
        if req.type != "events_api":
            await super().handle(client, req)
            return
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
        try:
            response = await run_async_bolt_app(self.app, req)
        except Exception:
            log.exception("slack: an acknowledged event failed in bolt")
            return
        if response.status >= 400 and response.status != 404:  # 404: no listener wanted it
            log.warning("slack: bolt refused an acknowledged event (%d): %s", response.status, response.body[:200])
