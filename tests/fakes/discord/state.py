"""What the fake Discord knows: users, guilds with roles and members, channels and threads, messages, commands."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .wire import UPLOAD_LIMIT, unknown

DISCORD_EPOCH_MS = 1420070400000
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
# view, send, embed, attach, history, reactions, app commands, create public threads, send in threads (§3)
DEFAULT_PERMISSIONS = 311385246784
ALL_PERMISSIONS = 8866461766385663

GUILD_TEXT, PUBLIC_THREAD, PRIVATE_THREAD = 0, 11, 12
THREAD_TYPES = frozenset({10, PUBLIC_THREAD, PRIVATE_THREAD})
_TIER_UPLOAD_LIMITS = {0: UPLOAD_LIMIT, 1: UPLOAD_LIMIT, 2: 50 * 1024 * 1024, 3: 100 * 1024 * 1024}


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class Snowflakes:
    """Increasing ids whose timestamp bits are the current time, as discord.py derives `created_at` from them."""

    def __init__(self) -> None:
        self._last = 0
        self._counter = itertools.count()

    def next(self) -> str:
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22 | (next(self._counter) & 0xFFF)
        self._last = max(candidate, self._last + 1)
        return str(self._last)


@dataclass(slots=True)
class User:
    id: str
    username: str
    bot: bool = False
    global_name: str | None = None


@dataclass(slots=True)
class Role:
    id: str
    name: str
    permissions: int
    position: int = 0


@dataclass(slots=True)
class Member:
    user_id: str
    roles: list[str] = field(default_factory=list)
    joined_at: str = field(default_factory=now_iso)
    nick: str | None = None


@dataclass(slots=True)
class Channel:
    """A guild text channel or a thread (type 11/12, with `parent_id` and `owner_id`)."""

    id: str
    guild_id: str
    name: str
    type: int = GUILD_TEXT
    position: int = 0
    topic: str | None = None
    parent_id: str | None = None
    owner_id: str | None = None
    archived: bool = False
    locked: bool = False
    auto_archive_duration: int = 1440
    archive_timestamp: str = field(default_factory=now_iso)
    message_count: int = 0
    member_ids: set[str] = field(default_factory=set)
    last_message_id: str | None = None
    rate_limit_per_user: int = 0

    @property
    def is_thread(self) -> bool:
        return self.type in THREAD_TYPES


@dataclass(slots=True)
class Guild:
    id: str
    name: str
    owner_id: str
    premium_tier: int = 0
    roles: dict[str, Role] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    channel_ids: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)

    @property
    def upload_limit(self) -> int:
        return _TIER_UPLOAD_LIMITS[self.premium_tier]


class DiscordState:
    """The fake's world. Lookups raise the DiscordError the real API would answer with."""

    def __init__(self, *, bot_name: str) -> None:
        self.ids = Snowflakes()
        self.bot = User(self.ids.next(), bot_name, bot=True)
        self.application_id = self.bot.id  # true for every bot created since 2020
        self.app_owner = User(self.ids.next(), "app-owner")
        self.users: dict[str, User] = {self.bot.id: self.bot, self.app_owner.id: self.app_owner}
        self.guilds: dict[str, Guild] = {}
        self.channels: dict[str, Channel] = {}
        self.messages: dict[str, dict[str, dict[str, Any]]] = {}  # channel id → message id → message object
        self.blobs: dict[str, bytes] = {}  # attachment id → bytes served by the CDN route
        self.expired: set[str] = set()  # file names whose CDN links answer 404, as links do once they expire
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[str, list[dict[str, Any]]] = {}

    def user(self, user_id: str) -> User:
        if user_id not in self.users:
            raise unknown("user")
        return self.users[user_id]

    def guild(self, guild_id: str) -> Guild:
        if guild_id not in self.guilds:
            raise unknown("guild")
        return self.guilds[guild_id]

    def channel(self, channel_id: str) -> Channel:
        if channel_id not in self.channels:
            raise unknown("channel")
        return self.channels[channel_id]

    def member(self, guild_id: str, user_id: str) -> Member:
        guild = self.guild(guild_id)
        if user_id not in guild.members:
            raise unknown("member")
        return guild.members[user_id]

    def message(self, channel_id: str, message_id: str) -> dict[str, Any]:
        found = self.messages.get(self.channel(channel_id).id, {}).get(message_id)
        if found is None:
            raise unknown("message")
        return found

    def store_message(self, message: dict[str, Any]) -> None:
        channel = self.channel(message["channel_id"])
        self.messages.setdefault(channel.id, {})[message["id"]] = message
        channel.last_message_id = message["id"]
        if channel.is_thread:
            channel.message_count += 1

    def permissions(self, guild_id: str, user_id: str) -> int:
        """Guild-level permissions (channel overwrites are not modelled): owner and Administrator get everything."""
        guild = self.guild(guild_id)
        member = self.member(guild_id, user_id)
        value = guild.roles[guild.id].permissions
        for role_id in member.roles:
            value |= guild.roles[role_id].permissions
        if user_id == guild.owner_id or value & ADMINISTRATOR:
            return ALL_PERMISSIONS
        return value

    def commands(self, guild_id: str | None = None) -> list[dict[str, Any]]:
        return self.global_commands if guild_id is None else self.guild_commands.get(guild_id, [])

    def find_command(self, name: str, guild_id: str | None) -> dict[str, Any]:
        for command in [*self.commands(guild_id), *self.global_commands] if guild_id else self.global_commands:
            if command["name"] == name and command.get("type", 1) == 1:
                return command
        where = f"guild {guild_id} or globally" if guild_id else "globally"
        raise LookupError(f"fake-discord: no slash command {name!r} registered {where}; sync the command tree first")

    def upload_limit(self, channel_id: str) -> int:
        return self.guild(self.channel(channel_id).guild_id).upload_limit
