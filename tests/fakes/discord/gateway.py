"""The gateway websocket: HELLO, heartbeats, IDENTIFY → READY + GUILD_CREATE, RESUME with replay, dispatches."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

log = logging.getLogger(__name__)

DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, VOICE, RESUME, RECONNECT = 0, 1, 2, 3, 4, 6, 7
REQUEST_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 8, 9, 10, 11
GUILDS, GUILD_MEMBERS, GUILD_PRESENCES, GUILD_MESSAGES, MESSAGE_CONTENT = 1, 1 << 1, 1 << 8, 1 << 9, 1 << 15
PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT
_CONTENT_FIELDS = ("content", "embeds", "attachments", "components")


@dataclass(slots=True)
class GatewaySession:
    """One identified session; it outlives its websocket so the client can RESUME it."""

    id: str
    intents: int
    identify: dict[str, Any]
    seq: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    connection: _Connection | None = None

    def frame(self, event: str, data: Any) -> dict[str, Any]:
        self.seq += 1
        frame = {"op": DISPATCH, "t": event, "s": self.seq, "d": data}
        self.history.append(frame)
        return frame


class _Connection:
    """One websocket. Frames go through a queue so synchronous callers can dispatch in order."""

    def __init__(self, ws: web.WebSocketResponse, *, zlib_stream: bool) -> None:
        self.ws = ws
        self.session: GatewaySession | None = None
        self._zlib = zlib.compressobj() if zlib_stream else None
        self._queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[float]]] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop())
        self.closed = False

    def send(self, frame: dict[str, Any]) -> asyncio.Future[float]:
        """Resolves to the loop time at which the frame was handed to the socket (or dropped)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[float] = loop.create_future()
        if self.closed:
            done.set_result(loop.time())
        else:
            self._queue.put_nowait((frame, done))
        return done

    async def _write_loop(self) -> None:
        while True:
            frame, done = await self._queue.get()
            try:
                text = json.dumps(frame)
                if self._zlib is None:
                    await self.ws.send_str(text)
                else:  # zlib-stream transport compression: one shared context, each message ends with Z_SYNC_FLUSH
                    await self.ws.send_bytes(self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH))
            except (ConnectionError, RuntimeError) as e:  # closed underneath us: the event stays in history
                log.debug("gateway write failed: %s", e)
            if not done.done():
                done.set_result(asyncio.get_running_loop().time())

    async def close(self, code: int, message: str = "") -> None:
        self.closed = True
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        while not self._queue.empty():  # unsent frames stay in the session history for a RESUME
            _, done = self._queue.get_nowait()
            if not done.done():
                done.set_result(asyncio.get_running_loop().time())
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close(code=code, message=message.encode())


class _Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Gateway:
    """Serves `/gateway`. `on_identify(session)` returns the (event, data) pairs that follow READY."""

    def __init__(
        self,
        *,
        token: str,
        heartbeat_interval_ms: int,
        privileged_intents: int,
        ready: Callable[[GatewaySession], dict[str, Any]],
        after_ready: Callable[[GatewaySession], list[tuple[str, Any]]],
        members_chunk: Callable[[dict[str, Any]], dict[str, Any]],
        bot_id: str,
    ) -> None:
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.privileged_intents = privileged_intents
        self._ready = ready
        self._after_ready = after_ready
        self._members_chunk = members_chunk
        self._bot_id = bot_id
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: set[_Connection] = set()
        self.received: list[dict[str, Any]] = []  # every frame the client sent, heartbeats included
        self.connects: list[dict[str, str]] = []  # the query string of each websocket connection

    @property
    def identifies(self) -> list[dict[str, Any]]:
        return [f["d"] for f in self.received if f.get("op") == IDENTIFY]

    @property
    def resumes(self) -> list[dict[str, Any]]:
        return [f["d"] for f in self.received if f.get("op") == RESUME]

    def dispatch(self, event: str, data: Any, *, intent: int = 0) -> list[asyncio.Future[float]]:
        """Send a DISPATCH to every session whose intents include `intent` (0 = always); queued while offline."""
        sent = []
        for session in self.sessions.values():
            if intent and not session.intents & intent:
                continue
            frame = session.frame(event, self._redact(session, event, data))
            if session.connection is not None:
                sent.append(session.connection.send(frame))
        return sent

    async def drop(self, code: int = 4000) -> None:
        """Close every websocket (sessions stay resumable), as when Discord or the network drops the client."""
        for connection in list(self.connections):
            await connection.close(code, "fake-discord: dropped")

    async def send_op(self, op: int, data: Any = None) -> None:
        """Send a bare opcode, e.g. RECONNECT (7) or INVALID_SESSION (9), to every connection."""
        await asyncio.gather(*(c.send({"op": op, "d": data, "s": None, "t": None}) for c in self.connections))

    async def close(self) -> None:
        for connection in list(self.connections):
            await connection.close(1001, "fake-discord: stopping")

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=4096 * 1024)
        await ws.prepare(request)
        self.connects.append(dict(request.query))
        # discord.py asks for zlib-stream (or zstd-stream with `zstandard` installed); it reads text frames either way.
        connection = _Connection(ws, zlib_stream=request.query.get("compress") == "zlib-stream")
        self.connections.add(connection)
        connection.send({"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None, "t": None})
        try:
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                await self._receive(connection, message.data)
        except _Closed as closed:
            await connection.close(closed.code, closed.reason)
        finally:
            closed_by_client = not connection.closed
            await connection.close(1000)
            self.connections.discard(connection)
            session = connection.session
            if session is not None and session.connection is connection:
                session.connection = None
                if closed_by_client and ws.close_code in (1000, 1001):  # a clean client close ends the session
                    self.sessions.pop(session.id, None)
        return ws

    async def _receive(self, connection: _Connection, text: str) -> None:
        try:
            frame = json.loads(text)
            op = frame["op"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise _Closed(4002, "Error while decoding payload.") from None
        self.received.append(frame)
        if op == HEARTBEAT:
            connection.send({"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == IDENTIFY:
            self._identify(connection, frame.get("d") or {})
        elif op == RESUME:
            self._resume(connection, frame.get("d") or {})
        elif connection.session is None:
            raise _Closed(4003, "Not authenticated.")
        elif op == REQUEST_MEMBERS:
            chunk = self._members_chunk(frame.get("d") or {})
            connection.send(connection.session.frame("GUILD_MEMBERS_CHUNK", chunk))
        elif op not in (PRESENCE, VOICE):
            raise _Closed(4001, "Unknown opcode.")

    def _identify(self, connection: _Connection, data: dict[str, Any]) -> None:
        if connection.session is not None:
            raise _Closed(4005, "Already authenticated.")
        if data.get("token") != self.token:
            raise _Closed(4004, "Authentication failed.")
        intents = data.get("intents")
        if not isinstance(intents, int) or intents < 0:
            raise _Closed(4013, "Invalid intent(s).")
        if intents & PRIVILEGED & ~self.privileged_intents:
            raise _Closed(4014, "Disallowed intent(s).")
        session = GatewaySession(id=uuid.uuid4().hex, intents=intents, identify=data)
        self.sessions[session.id] = session
        self._attach(connection, session)
        connection.send(session.frame("READY", self._ready(session)))
        for event, payload in self._after_ready(session):
            connection.send(session.frame(event, self._redact(session, event, payload)))

    def _resume(self, connection: _Connection, data: dict[str, Any]) -> None:
        session = self.sessions.get(str(data.get("session_id")))
        if data.get("token") != self.token:
            raise _Closed(4004, "Authentication failed.")
        if session is None:
            connection.send({"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        self._attach(connection, session)
        seen = int(data.get("seq") or 0)
        for frame in session.history:
            if frame["s"] > seen:
                connection.send(frame)
        connection.send(session.frame("RESUMED", {"_trace": ['["fake-discord-gateway",{"micros":0}]']}))

    def _attach(self, connection: _Connection, session: GatewaySession) -> None:
        if session.connection is not None and session.connection is not connection:
            session.connection = None
        session.connection = connection
        connection.session = session

    def _redact(self, session: GatewaySession, event: str, data: Any) -> Any:
        if event == "GUILD_CREATE" and not session.intents & GUILD_MEMBERS:
            # Without GUILD_MEMBERS, Discord lists only the bot itself (and members in voice).
            return {**data, "members": [m for m in data["members"] if m["user"]["id"] == self._bot_id]}
        # Without MESSAGE_CONTENT, Discord blanks content fields except in messages that mention the app (§4.6).
        if event not in ("MESSAGE_CREATE", "MESSAGE_UPDATE") or session.intents & MESSAGE_CONTENT:
            return data
        if data.get("author", {}).get("id") == self._bot_id:
            return data
        if any(u.get("id") == self._bot_id for u in data.get("mentions", [])):
            return data
        return {**data, **{k: "" if k == "content" else [] for k in _CONTENT_FIELDS if k in data}}
