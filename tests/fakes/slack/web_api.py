"""The Web API (`POST /api/{method}`): auth, scripted faults, and the methods a bot uses (files.* in files.py)."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from aiohttp import web

from . import files, methods
from .protocol import Answer, Context, Params, SlackError, form_parts
from .recording import record_of

Method = Callable[[Context, Params], Answer]

# method → (bot scope it needs, handler). Slack checks scopes after the token.
METHODS: dict[str, tuple[str | None, Method]] = {**methods.METHODS, **files.METHODS}
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
JSON_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True, slots=True)
class _Script:
    error: str
    retry_after: int | None = None  # set: HTTP 429 ratelimited


class WebApi:
    """Answers Web API calls like Slack: HTTP 200 with ok true/false, 429 + Retry-After when rate limited."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._scripts: dict[str, deque[_Script]] = {}
        self._delays: dict[str, deque[float]] = {}
        self._hang_ups: dict[str, int] = {}

    def rate_limit_next(self, method: str, retry_after: int = 1, *, times: int = 1) -> None:
        self._scripts.setdefault(method, deque()).extend([_Script("ratelimited", retry_after)] * times)

    def fail_next(self, method: str, error: str, *, times: int = 1) -> None:
        self._scripts.setdefault(method, deque()).extend([_Script(error)] * times)

    def heal(self, method: str) -> None:
        self._scripts.pop(method, None)

    def delay_next(self, method: str, seconds: float, *, times: int = 1) -> None:
        self._delays.setdefault(method, deque()).extend([seconds] * times)

    def hang_up_next(self, method: str, *, times: int = 1) -> None:
        self._hang_ups[method] = self._hang_ups.get(method, 0) + times

    async def handle(self, request: web.Request) -> web.Response:
        call = record_of(request)
        delays = self._delays.get(call.method)
        if delays:
            await asyncio.sleep(delays.popleft())
        if self._hang_ups.get(call.method):
            self._hang_ups[call.method] -= 1
            assert request.transport is not None
            request.transport.close()  # no answer at all: the client sees the connection drop
            return web.Response(status=500)
        call.params = _params(request, call.body)
        token = call.token or call.params.get("token")  # Slack also takes `token` as a form field
        status, headers, body = self._answer(call.method, call.params, token)
        call.response = body
        return web.Response(status=status, headers={"Content-Type": JSON_TYPE, **headers}, text=json.dumps(body))

    def _answer(self, method: str, params: Params, token: str | None) -> tuple[int, dict[str, str], Answer]:
        scripts = self._scripts.get(method)
        if scripts:
            script = scripts.popleft()
            if script.retry_after is not None:
                headers = {"Retry-After": str(script.retry_after)}
                return 429, headers, {"ok": False, "error": "ratelimited"}
            return 200, {}, {"ok": False, "error": script.error}
        entry = METHODS.get(method)
        if entry is None:
            return 200, {}, {"ok": False, "error": "unknown_method", "req_method": method}
        scope, handler = entry
        settings = self.ctx.settings
        try:
            self._authenticate(method, token)
            headers = {}
            if token == settings.bot_token:
                headers = {"x-oauth-scopes": ",".join(sorted(settings.scopes)), "x-accepted-oauth-scopes": scope or ""}
            if scope is not None and scope not in settings.scopes:
                provided = ",".join(sorted(settings.scopes))
                raise SlackError("missing_scope", needed=scope, provided=provided)
            return 200, headers, {"ok": True, **handler(self.ctx, params)}
        except SlackError as e:
            return 200, {}, e.body()

    def _authenticate(self, method: str, token: str | None) -> None:
        settings = self.ctx.settings
        if not token:
            raise SlackError("not_authed")
        wanted, other = settings.bot_token, settings.app_token
        if method in APP_TOKEN_METHODS:
            wanted, other = other, wanted
        if token == other:
            raise SlackError("not_allowed_token_type")
        if token != wanted:
            raise SlackError("invalid_auth")


def _params(request: web.Request, body: bytes) -> Params:
    """Merge query string, form and JSON body: slack_sdk uses all three (reference §1)."""
    params: Params = dict(request.query)
    if not body:
        return params
    if request.content_type == "application/json":
        decoded = json.loads(body)
        if isinstance(decoded, dict):
            params.update(decoded)
    elif request.content_type == "application/x-www-form-urlencoded":
        params.update(parse_qsl(body.decode(), keep_blank_values=True))
    elif request.content_type == "multipart/form-data":
        for name, filename, data in form_parts(request.headers["Content-Type"], body):
            params[name] = data if filename else data.decode()
    return params
