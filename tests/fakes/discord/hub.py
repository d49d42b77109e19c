"""Shared by REST routes and the test driver: the state, the gateway, the clock, and event publishing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

from .gateway import GUILD_MESSAGES, GUILDS, Gateway
from .messages import EPHEMERAL
from .payloads import member_payload, thread_payload
from .state import PUBLIC_THREAD, Channel, DiscordState, now_iso
from .wire import UploadedFile, invalid_form

ResponseKind = Literal["callback", "followup", "get", "edit", "delete"]
_ARCHIVE_DURATIONS = (60, 1440, 4320, 10080)


@dataclass(slots=True)
class InteractionResponse:
    """One thing the bot did with an interaction: its callback, a follow-up, or a read/edit/delete of a message.

    `elapsed` is seconds since the fake dispatched INTERACTION_CREATE; `message_id` is `@original` resolved.
    """

    kind: ResponseKind
    elapsed: float
    status: int
    type: int | None = None
    body: Any = None
    files: list[UploadedFile] = field(default_factory=list)
    message_id: str | None = None


@dataclass(slots=True)
class FakeInteraction:
    """An interaction the fake dispatched, and everything the bot answered to it."""

    id: str
    token: str
    type: int
    guild_id: str
    channel_id: str
    user_id: str
    payload: dict[str, Any]
    dispatched_at: float
    callback_type: int | None = None
    acknowledged_at: float | None = None
    original_message_id: str | None = None
    loading: bool = False  # a type-5 defer whose "thinking…" message no follow-up or edit has replaced yet
    followup_ids: list[str] = field(default_factory=list)
    responses: list[InteractionResponse] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    @property
    def ack_elapsed(self) -> float | None:
        return None if self.acknowledged_at is None else self.acknowledged_at - self.dispatched_at


class Hub:
    """The fake's moving parts, handed to the REST and interaction routes."""

    def __init__(self, state: DiscordState, gateway: Gateway, *, ack_deadline: float, token_ttl: float) -> None:
        self.state = state
        self.gateway = gateway
        self.ack_deadline = ack_deadline
        self.token_ttl = token_ttl
        self.base_url = ""
        self.interactions: dict[str, FakeInteraction] = {}

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    async def emit(self, event: str, data: Any, *, intent: int = 0) -> None:
        """Dispatch and wait until the frames are written (events then precede the REST answer)."""
        await asyncio.gather(*self.gateway.dispatch(event, data, intent=intent))

    def gateway_message(self, message: dict[str, Any]) -> dict[str, Any]:
        """A stored message as MESSAGE_CREATE/UPDATE carries it: plus guild_id and the author's member."""
        channel = self.state.channel(message["channel_id"])
        guild = self.state.guild(channel.guild_id)
        data = {**message, "guild_id": guild.id}
        member = guild.members.get(message["author"]["id"])
        if member is not None and "webhook_id" not in message:
            data["member"] = member_payload(self.state, member, with_user=False)
        return data

    async def publish(self, message: dict[str, Any]) -> None:
        self.state.store_message(message)
        if not message["flags"] & EPHEMERAL:  # ephemeral messages never reach the gateway
            await self.emit("MESSAGE_CREATE", self.gateway_message(message), intent=GUILD_MESSAGES)

    async def publish_update(self, message: dict[str, Any]) -> None:
        if not message["flags"] & EPHEMERAL:
            await self.emit("MESSAGE_UPDATE", self.gateway_message(message), intent=GUILD_MESSAGES)

    async def publish_delete(self, channel_id: str, message_id: str) -> None:
        self.state.messages.get(channel_id, {}).pop(message_id, None)
        guild_id = self.state.channel(channel_id).guild_id
        data = {"id": message_id, "channel_id": channel_id, "guild_id": guild_id}
        await self.emit("MESSAGE_DELETE", data, intent=GUILD_MESSAGES)

    async def create_thread(
        self,
        parent: Channel,
        body: dict[str, Any],
        *,
        owner_id: str,
        message_id: str | None = None,
    ) -> Channel:
        """Validate and store a thread; THREAD_CREATE (`newly_created`) goes out before the REST answer (§4.3)."""
        name = str(body.get("name") or "")
        if not 1 <= len(name) <= 100:
            raise invalid_form("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        duration = int(body.get("auto_archive_duration") or 1440)
        if duration not in _ARCHIVE_DURATIONS:
            raise invalid_form("auto_archive_duration", "BASE_TYPE_CHOICES", "Value must be one of (60, 1440, …).")
        thread = Channel(
            id=message_id or self.state.ids.next(),  # a thread started from a message shares its id
            guild_id=parent.guild_id,
            name=name,
            type=PUBLIC_THREAD if message_id else int(body.get("type") or PUBLIC_THREAD),
            parent_id=parent.id,
            owner_id=owner_id,
            auto_archive_duration=duration,
            archive_timestamp=now_iso(),
            member_ids={owner_id},
            rate_limit_per_user=int(body.get("rate_limit_per_user") or 0),
        )
        self.state.channels[thread.id] = thread
        self.state.guild(parent.guild_id).channel_ids.append(thread.id)
        await self.emit("THREAD_CREATE", thread_payload(thread, newly_created=True), intent=GUILDS)
        return thread
