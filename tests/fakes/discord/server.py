"""FakeDiscord: REST v10, the gateway websocket and the attachment CDN on one local aiohttp server."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

from .channels import ChannelRoutes
from .commands import CommandRoutes
from .driver import Driver
from .gateway import GUILDS, PRIVILEGED, Gateway, GatewaySession
from .hub import Hub
from .interactions import RESPONSE_RECORD, InteractionRoutes
from .messages import cdn_signature
from .payloads import guild_create_payload, member_payload, ready_payload
from .rest import MetaRoutes
from .state import DiscordState
from .wire import (
    CALL,
    MAX_REQUEST_BYTES,
    UPLOADS,
    DiscordError,
    RecordedCall,
    json_response,
    not_found,
    rate_limited,
    ratelimit_headers,
    read_body,
    unauthorized,
)

log = logging.getLogger(__name__)
API_PREFIX = "/api/v10"
_TOKENLESS = ("/interactions/", "/webhooks/")  # authenticated by the token in the path (§2)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class _RateLimitRule:
    prefix: str
    method: str | None
    retry_after: float
    global_: bool
    times: int


class FakeDiscord(Driver):
    """A local Discord that the unmodified discord.py client talks to (see `point_discord_py_at`).

    Args:
        token: the bot token REST (`Authorization: Bot <token>`) and IDENTIFY must carry.
        bot_name: the bot user's name; its id is also the application id.
        heartbeat_interval_ms: HELLO's interval (Discord sends 41250).
        ack_deadline: seconds to the first interaction response before 10062 Unknown interaction.
        token_ttl: seconds an interaction token works for follow-ups (15 min).
        privileged_intents: the privileged intents "enabled in the Developer Portal"; others close with 4014.
    """

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        bot_name: str = "bananabot",
        heartbeat_interval_ms: int = 41250,
        ack_deadline: float = 3.0,
        token_ttl: float = 15 * 60.0,
        privileged_intents: int = PRIVILEGED,
    ) -> None:
        self.token = token
        self.state = DiscordState(bot_name=bot_name)
        self.gateway = Gateway(
            token=token,
            heartbeat_interval_ms=heartbeat_interval_ms,
            privileged_intents=privileged_intents,
            ready=self._ready,
            after_ready=self._guild_creates,
            members_chunk=self._members_chunk,
            bot_id=self.state.bot.id,
        )
        self.hub = Hub(self.state, self.gateway, ack_deadline=ack_deadline, token_ttl=token_ttl)
        self.calls: list[RecordedCall] = []
        self.errors: list[Exception] = []  # exceptions inside the fake itself; a test seeing any has found a fake bug
        self._rate_limits: list[_RateLimitRule] = []
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        if not self.hub.base_url:
            raise RuntimeError("FakeDiscord is not started")
        return self.hub.base_url

    @property
    def api_url(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/gateway"

    @property
    def ack_deadline(self) -> float:
        return self.hub.ack_deadline

    @ack_deadline.setter
    def ack_deadline(self, seconds: float) -> None:
        self.hub.ack_deadline = seconds

    @property
    def token_ttl(self) -> float:
        return self.hub.token_ttl

    @token_ttl.setter
    def token_ttl(self, seconds: float) -> None:
        self.hub.token_ttl = seconds

    @property
    def application_id(self) -> str:
        return self.state.application_id

    @property
    def bot_id(self) -> str:
        return self.state.bot.id

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        api = web.Application(middlewares=[self._middleware])
        api.add_routes(MetaRoutes(self.hub, lambda: self.gateway_url).routes())
        api.add_routes(ChannelRoutes(self.hub).routes())
        api.add_routes(CommandRoutes(self.hub).routes())
        api.add_routes(InteractionRoutes(self.hub).routes())
        api.router.add_route("*", "/{tail:.*}", self._unknown_route)
        # The parent app's limit applies to every request; larger bodies are Discord's 413 (40005).
        app = web.Application(middlewares=[self._record_outer], client_max_size=MAX_REQUEST_BYTES + 1024 * 1024)
        app.add_subapp(API_PREFIX, api)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/{folder:attachments|ephemeral-attachments}/{parent}/{attachment_id}/{name}", self._cdn)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.hub.base_url = f"http://{host}:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def rate_limit_next(
        self,
        path_prefix: str,
        *,
        retry_after: float = 0.2,
        global_: bool = False,
        method: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` API requests whose path (after `/api/v10`) starts with `path_prefix` with 429."""
        prefix = path_prefix.removeprefix(API_PREFIX)
        self._rate_limits.append(_RateLimitRule(prefix, method and method.upper(), retry_after, global_, times))

    @property
    def unexpected_calls(self) -> list[RecordedCall]:
        """Requests to routes the fake does not know (answered 404): usually a missing fake feature or a bug."""
        return [c for c in self.calls if c.path.startswith(API_PREFIX) and not c.route]

    async def wait_for(self, predicate: Callable[[], Any], *, timeout: float = 5.0) -> None:
        """Poll until `predicate()` is truthy (fake or client state alike); TimeoutError otherwise."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.005)

    @web.middleware
    async def _record_outer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(API_PREFIX):
            return await handler(request)
        call = RecordedCall(request.method, request.path, dict(request.query), _headers(request), at=self.hub.now())
        call.route = _template(request)
        self.calls.append(call)
        response = await handler(request)
        call.status = response.status
        return response

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        call = RecordedCall(request.method, request.path, dict(request.query), _headers(request), at=self.hub.now())
        call.route = _template(request).removeprefix(API_PREFIX)
        self.calls.append(call)
        request[CALL] = call
        try:
            request[UPLOADS] = await read_body(request, call)
            response = await self._api(request, handler, call)
        except DiscordError as e:
            headers = ratelimit_headers(call.route) if call.route else {}
            response = json_response(e.body(), status=e.status, headers=headers)
        except Exception as e:  # a bug in the fake: answer fast (a 5xx would make discord.py retry for ~16 s)
            log.exception("fake-discord failed on %s %s", request.method, request.path)
            self.errors.append(e)
            response = json_response({"message": f"fake-discord bug: {e!r}", "code": 0}, status=400)
        call.status = response.status
        answered = request.get(RESPONSE_RECORD)
        if answered is not None:
            interaction, record = answered
            record.status = response.status
            interaction.responses.append(record)
        return response

    async def _api(self, request: web.Request, handler: Handler, call: RecordedCall) -> web.StreamResponse:
        if not call.route:
            raise not_found()
        tokenless = call.route.startswith(_TOKENLESS) or call.route == "/gateway"
        if not tokenless and request.headers.get("Authorization") != f"Bot {self.token}":
            raise unauthorized()
        rule = self._take_rate_limit(request)
        if rule is not None:
            return rate_limited(call.route, retry_after=rule.retry_after, global_=rule.global_)
        response = await handler(request)
        response.headers.update(ratelimit_headers(call.route))
        return response

    def _take_rate_limit(self, request: web.Request) -> _RateLimitRule | None:
        path = request.path.removeprefix(API_PREFIX)
        for rule in self._rate_limits:
            if path.startswith(rule.prefix) and rule.method in (None, request.method):
                rule.times -= 1
                if rule.times <= 0:
                    self._rate_limits.remove(rule)
                return rule
        return None

    async def _unknown_route(self, request: web.Request) -> web.Response:
        raise not_found()

    async def _cdn(self, request: web.Request) -> web.Response:
        attachment_id = request.match_info["attachment_id"]
        blob = self.state.blobs.get(attachment_id)
        # Discord's CDN refuses unsigned attachment links (hm=…) since 2024.
        expired = request.match_info["name"] in self.state.expired
        if blob is None or expired or request.query.get("hm") != cdn_signature(attachment_id):
            return web.Response(status=404, text="This content is no longer available.")
        content_type = mimetypes.guess_type(request.match_info["name"])[0] or "application/octet-stream"
        return web.Response(body=blob, headers={"Content-Type": content_type})

    def _ready(self, session: GatewaySession) -> dict[str, Any]:
        shard = session.identify.get("shard")
        return ready_payload(self.state, session_id=session.id, resume_url=self.gateway_url, shard=shard)

    def _guild_creates(self, session: GatewaySession) -> list[tuple[str, Any]]:
        if not session.intents & GUILDS:
            return []
        return [("GUILD_CREATE", guild_create_payload(self.state, g)) for g in self.state.guilds.values()]

    def _members_chunk(self, request: dict[str, Any]) -> dict[str, Any]:
        guild = self.state.guild(str(request.get("guild_id")))
        members = [member_payload(self.state, m) for m in guild.members.values()]
        chunk = {"guild_id": guild.id, "members": members, "chunk_index": 0, "chunk_count": 1}
        return {**chunk, "nonce": request["nonce"]} if request.get("nonce") else chunk


def _headers(request: web.Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


def _template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else ""
    return "" if canonical.endswith("/{tail}") else canonical
