"""HTTP plumbing for the REST routes: Discord error bodies, exact JSON responses, multipart, rate-limit headers."""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import aiohttp
from aiohttp import web

# discord.py parses a body as JSON only if Content-Type is exactly this (reference §6.1).
JSON_TYPE = "application/json"
UPLOAD_LIMIT = 10 * 1024 * 1024  # bots, webhooks and interaction responses since 2025-01 (reference §8)
MAX_REQUEST_BYTES = 25 * 1024 * 1024


class UploadedFile(NamedTuple):
    filename: str
    content_type: str
    data: bytes


@dataclass(slots=True)
class RecordedCall:
    """One HTTP request as the fake saw it: REST, interaction webhooks and attachment downloads alike.

    `path` is the full path (`/api/v10/...` or `/attachments/...`); `route` is the matched template
    (`/channels/{channel_id}/messages`), empty for unknown routes. `json` holds the JSON body, or the decoded
    `payload_json` of a multipart body; `files` the uploaded `files[n]` parts in order.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    route: str = ""
    json: Any = None
    files: list[UploadedFile] = field(default_factory=list)
    status: int = 0
    at: float = 0.0

    @property
    def authorized(self) -> bool:
        return "authorization" in self.headers


CALL = web.RequestKey("fake_discord_call", RecordedCall)
UPLOADS: web.RequestKey[dict[int, UploadedFile]] = web.RequestKey("fake_discord_uploads")


class DiscordError(Exception):
    """An error the fake answers with, in Discord's `{"message", "code"[, "errors"]}` shape."""

    def __init__(self, status: int, code: int, message: str, *, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


_UNKNOWN = {
    "application": 10002,
    "channel": 10003,
    "guild": 10004,
    "member": 10007,
    "message": 10008,
    "role": 10011,
    "user": 10013,
    "emoji": 10014,
    "webhook": 10015,
    "interaction": 10062,
}


def unknown(kind: str) -> DiscordError:
    return DiscordError(404, _UNKNOWN[kind], f"Unknown {kind.capitalize()}")


def not_found() -> DiscordError:
    return DiscordError(404, 0, "404: Not Found")


def unauthorized() -> DiscordError:
    return DiscordError(401, 0, "401: Unauthorized")


def too_large() -> DiscordError:
    return DiscordError(413, 40005, "Request entity too large")


def invalid_form(path: str, code: str, message: str) -> DiscordError:
    """50035 with the nested `errors` tree Discord uses, e.g. path `components.0.components.1.custom_id`."""
    tree: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path.split(".")):
        tree = {key: tree}
    return DiscordError(400, 50035, "Invalid Form Body", errors=tree)


def json_response(obj: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    all_headers = {"Content-Type": JSON_TYPE, **(headers or {})}
    return web.Response(body=json.dumps(obj).encode(), status=status, headers=all_headers)


def ratelimit_headers(bucket: str, *, remaining: int = 4, reset_after: float = 1.0) -> dict[str, str]:
    # A constant, never-exhausted bucket: realistic headers without making discord.py sleep (reference §6.8).
    return {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        "X-RateLimit-Bucket": bucket_hash(bucket),
    }


def rate_limited(bucket: str, *, retry_after: float, global_: bool) -> web.Response:
    """A 429 discord.py retries: `Via` header and a JSON body with a float `retry_after` (reference §6.3, §11)."""
    headers = {
        **ratelimit_headers(bucket, remaining=0, reset_after=retry_after),
        "Retry-After": str(max(1, round(retry_after + 0.5))),
        "X-RateLimit-Scope": "global" if global_ else "user",
        "Via": "1.1 google",
    }
    if global_:
        headers["X-RateLimit-Global"] = "true"
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": global_}
    return json_response(body, status=429, headers=headers)


def bucket_hash(route: str) -> str:
    return f"{zlib.crc32(route.encode()):08x}"


async def read_body(request: web.Request, call: RecordedCall) -> dict[int, UploadedFile]:
    """Fill `call.json`/`call.files`; returns uploads keyed by n of `files[n]` (attachment ids refer to n)."""
    try:
        if request.content_type == "multipart/form-data":
            return await _read_multipart(request, call)
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large() from None
    if raw:
        try:
            call.json = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise DiscordError(400, 50109, "The request body contains invalid JSON.") from None
    return {}


async def _read_multipart(request: web.Request, call: RecordedCall) -> dict[int, UploadedFile]:
    uploads: dict[int, UploadedFile] = {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, aiohttp.BodyPartReader):  # nested multipart: Discord does not accept it either
            raise DiscordError(400, 50035, "Invalid Form Body")
        data = await part.read(decode=False)
        name = part.name or ""
        if name == "payload_json":
            call.json = json.loads(data)
        elif part.filename is not None:
            upload = UploadedFile(part.filename, part.headers.get("Content-Type", ""), bytes(data))
            call.files.append(upload)
            index = name.removeprefix("files[").removesuffix("]")
            uploads[int(index) if index.isdigit() else len(uploads)] = upload
    return uploads
