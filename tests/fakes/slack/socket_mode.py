"""Socket Mode: the websocket behind apps.connections.open, envelopes out, acks in (reference §8.1)."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

# Slack: events_api envelopes take no response payload; commands and interactivity do.
ACCEPTS_RESPONSE_PAYLOAD = {"events_api": False, "slash_commands": True, "interactive": True}


@dataclass(frozen=True, slots=True)
class Ack:
    """What the client sent back for one envelope, and how long after the envelope went out."""

    envelope_id: str
    payload: dict[str, Any] | None
    elapsed: float
    raw: dict[str, Any]


class SocketHub:
    """Tickets, live connections, sent envelopes and their acks."""

    def __init__(self, *, app_id: str, on_ack: Callable[[dict[str, Any], Ack], None] | None = None) -> None:
        self.app_id = app_id
        self.on_ack = on_ack
        self.connects = 0  # websocket connections accepted so far
        self.received: list[dict[str, Any]] = []  # every JSON message from clients, acks included
        self.envelopes: dict[str, dict[str, Any]] = {}
        self.acks: dict[str, Ack] = {}
        self._tickets: set[str] = set()
        self._open: list[web.WebSocketResponse] = []
        self._sent_at: dict[str, float] = {}
        self._changed = asyncio.Condition()

    def issue_url(self, base_url: str) -> str:
        ticket = secrets.token_hex(16)
        self._tickets.add(ticket)
        return f"{base_url.replace('http://', 'ws://', 1)}/link/?ticket={ticket}&app_id={self.app_id}"

    @property
    def connected(self) -> bool:
        return any(not ws.closed for ws in self._open)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket") not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True)  # answers the SDK's sdk-ping-pong PINGs
        await ws.prepare(request)
        hello = {
            "type": "hello",
            "num_connections": len(self._open) + 1,
            "debug_info": {"host": "fake-slack", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id},
        }
        await ws.send_str(json.dumps(hello))
        async with self._changed:
            self.connects += 1
            self._open.append(ws)
            self._changed.notify_all()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._receive(msg.data)
        finally:
            async with self._changed:
                self._open.remove(ws)
                self._changed.notify_all()
        return ws

    async def _receive(self, data: str) -> None:
        try:
            message = json.loads(data)
        except json.JSONDecodeError:
            log.warning("fake Slack got a non-JSON websocket message: %r", data)
            return
        self.received.append(message)
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        if envelope_id in self._sent_at and envelope_id not in self.acks:
            elapsed = time.monotonic() - self._sent_at[envelope_id]
            ack = Ack(envelope_id=envelope_id, payload=message.get("payload"), elapsed=elapsed, raw=message)
            async with self._changed:
                self.acks[envelope_id] = ack
                self._changed.notify_all()
            if self.on_ack is not None:
                self.on_ack(self.envelopes[envelope_id], ack)

    async def wait_connected(self, timeout: float = 5.0, *, more_than: int = 0) -> None:
        """Until a connection is open and more than `more_than` connections have been accepted in total."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: self.connected and self.connects > more_than), timeout
            )

    async def deliver(
        self,
        payload_type: str,
        payload: dict[str, Any],
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
        envelope_id: str | None = None,
        timeout: float = 5.0,
    ) -> str:
        await self.wait_connected(timeout)
        envelope_id = envelope_id or str(uuid.uuid4())
        envelope: dict[str, Any] = {"envelope_id": envelope_id, "type": payload_type, "payload": payload}
        envelope["accepts_response_payload"] = ACCEPTS_RESPONSE_PAYLOAD.get(payload_type, False)
        if payload_type == "events_api":
            envelope.update({"retry_attempt": retry_attempt, "retry_reason": retry_reason})
        self.envelopes[envelope_id] = envelope
        self._sent_at[envelope_id] = time.monotonic()
        ws = next(ws for ws in reversed(self._open) if not ws.closed)
        await ws.send_str(json.dumps(envelope))
        return envelope_id

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: envelope_id in self.acks), timeout)
        return self.acks[envelope_id]

    async def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Slack's polite goodbye; the SDK opens a new connection with a fresh URL."""
        info = {"host": "fake-slack"}
        for ws in list(self._open):
            await ws.send_str(json.dumps({"type": "disconnect", "reason": reason, "debug_info": info}))

    async def drop(self) -> None:
        """Close every connection with a CLOSE frame; the SDK reconnects when auto-reconnect is on."""
        for ws in list(self._open):
            await ws.close(code=1001, message=b"going away")

    async def close(self) -> None:
        await self.drop()
