"""Every request either fake server receives, as a RecordedCall (aiohttp middleware)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class RecordedCall:
    """One request: `method` is the Web API method ("chat.postMessage") or, for anything else, the path.

    `params` merges query string, form and JSON body (Web API calls only); `body` is the raw request body
    (the uploaded bytes for the upload URL). `foreign` marks requests to the second, non-Slack host. `peer` tells
    requests on one kept-alive connection from requests on new ones.
    """

    method: str
    http_method: str
    path: str
    host: str
    headers: dict[str, str]
    body: bytes
    has_authorization: bool
    token: str | None
    params: dict[str, Any] = field(default_factory=dict)
    status: int = 0
    response: Any = None
    foreign: bool = False
    peer: str = ""  # the client's address and port: one per TCP connection


RECORD_KEY: Any = (
    web.RequestKey("slack_fake_record", RecordedCall) if hasattr(web, "RequestKey") else "slack_fake_record"
)


def bearer(headers: dict[str, str]) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def recorder(calls: list[RecordedCall], *, foreign: bool = False) -> Any:
    """Middleware that appends a RecordedCall before the handler runs and fills in the status after."""

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        path = request.path
        call = RecordedCall(
            method=path.removeprefix("/api/") if path.startswith("/api/") else path,
            http_method=request.method,
            path=path,
            host=request.host,
            headers=headers,
            body=await request.read() if request.can_read_body else b"",
            has_authorization="authorization" in headers,
            token=bearer(headers),
            foreign=foreign,
            peer=str(request.transport.get_extra_info("peername") if request.transport else ""),
        )
        calls.append(call)
        request[RECORD_KEY] = call
        try:
            response = await handler(request)
        except web.HTTPException as e:
            call.status = e.status
            raise
        call.status = response.status
        return response

    return record


def record_of(request: web.Request) -> RecordedCall:
    call = request[RECORD_KEY]
    assert isinstance(call, RecordedCall)
    return call
