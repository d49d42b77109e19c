"""What users see from command acks and response_url posts: ephemeral by default, in_channel on request."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from .methods import bot_message
from .protocol import Context
from .recording import record_of
from .state import ResponsePost, ResponseTarget

MAX_USES = 5  # Slack: a response_url works up to 5 times within 30 minutes


def show(ctx: Context, target: ResponseTarget, body: dict[str, Any]) -> None:
    """Apply a command response (ack body or response_url post) the way Slack renders it."""
    if not body.get("text") and not body.get("blocks"):
        return
    fields: dict[str, Any] = {"text": body.get("text") or ""}
    if body.get("blocks"):
        fields["blocks"] = body["blocks"]
    message = bot_message(ctx, fields, ts=ctx.state.next_ts(), thread_ts=body.get("thread_ts"))
    if body.get("response_type") == "in_channel":
        ctx.state.add(target.channel, message)
    else:
        ctx.state.ephemeral.setdefault(target.user, []).append({**message, "channel": target.channel})


def ack_body(raw: str) -> dict[str, Any]:
    """An HTTP ack body as Slack reads it: JSON, or plain text shown as the message."""
    if not raw:
        return {}
    try:
        decoded = json.loads(raw)
    except json.JSONDecodeError:
        return {"text": raw}
    return decoded if isinstance(decoded, dict) else {"text": raw}


async def response_url(ctx: Context, request: web.Request) -> web.Response:
    call = record_of(request)
    target = ctx.state.response_targets.get(request.path)
    if target is None or target.uses >= MAX_USES:
        return web.Response(status=404, text="no_active_hooks", content_type="text/plain")
    target.uses += 1
    text = call.body.decode()
    body = json.loads(text) if request.content_type == "application/json" else dict(parse_qsl(text))
    call.params = body
    ctx.state.responses.append(ResponsePost(url=str(request.url), body=body))
    show(ctx, target, body)
    return web.Response(text="ok", content_type="text/html")
