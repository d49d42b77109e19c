"""REST: what discord.py asks at login and for lookups — users, application info, gateway URL, guilds."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from .hub import Hub
from .payloads import (
    application_payload,
    channel_payload,
    guild_payload,
    member_payload,
    role_payload,
    thread_payload,
    user_payload,
)
from .wire import json_response


class MetaRoutes:
    """`/users`, `/oauth2/applications/@me`, `/gateway[/bot]` and read-only `/guilds/{id}/...`."""

    def __init__(self, hub: Hub, gateway_url: Callable[[], str]) -> None:
        self.hub = hub
        self.state = hub.state
        self._gateway_url = gateway_url

    def routes(self) -> list[web.RouteDef]:
        guild = "/guilds/{guild_id}"
        return [
            web.get("/users/@me", self.me),
            web.get("/users/{user_id}", self.user),
            web.get("/oauth2/applications/@me", self.application),
            web.get("/applications/@me", self.application),
            web.get("/gateway", self.gateway),
            web.get("/gateway/bot", self.gateway_bot),
            web.get(guild, self.guild),
            web.get(guild + "/channels", self.guild_channels),
            web.get(guild + "/roles", self.roles),
            web.get(guild + "/members/{user_id}", self.member),
            web.get(guild + "/threads/active", self.active_threads),
        ]

    async def me(self, request: web.Request) -> web.Response:
        bot = user_payload(self.state.bot)
        return json_response({**bot, "verified": True, "mfa_enabled": False, "flags": 0, "locale": "en-US"})

    async def user(self, request: web.Request) -> web.Response:
        return json_response(user_payload(self.state.user(request.match_info["user_id"])))

    async def application(self, request: web.Request) -> web.Response:
        return json_response(application_payload(self.state))

    async def gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self._gateway_url()})

    async def gateway_bot(self, request: web.Request) -> web.Response:
        limits = {"total": 1000, "remaining": 999, "reset_after": 86400000, "max_concurrency": 1}
        return json_response({"url": self._gateway_url(), "shards": 1, "session_start_limit": limits})

    async def guild(self, request: web.Request) -> web.Response:
        return json_response(guild_payload(self.state, self.state.guild(request.match_info["guild_id"])))

    async def guild_channels(self, request: web.Request) -> web.Response:
        guild = self.state.guild(request.match_info["guild_id"])
        channels = [self.state.channels[c] for c in guild.channel_ids]
        return json_response([channel_payload(c) for c in channels if not c.is_thread])

    async def roles(self, request: web.Request) -> web.Response:
        guild = self.state.guild(request.match_info["guild_id"])
        return json_response([role_payload(r) for r in guild.roles.values()])

    async def member(self, request: web.Request) -> web.Response:
        member = self.state.member(request.match_info["guild_id"], request.match_info["user_id"])
        return json_response(member_payload(self.state, member))

    async def active_threads(self, request: web.Request) -> web.Response:
        guild = self.state.guild(request.match_info["guild_id"])
        threads = [self.state.channels[c] for c in guild.channel_ids]
        active = [thread_payload(t) for t in threads if t.is_thread and not t.archived]
        return json_response({"threads": active, "members": []})
