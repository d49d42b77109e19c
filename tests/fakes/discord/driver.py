"""The test-facing half of FakeDiscord: build the world, act as users, inspect what the bot did."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .events import Upload, command_data, has_button, interaction, user_message
from .gateway import GUILD_MEMBERS, GUILDS, INVALID_SESSION, RECONNECT, Gateway
from .hub import FakeInteraction, Hub, InteractionResponse
from .messages import new_message
from .payloads import channel_payload, guild_create_payload, member_payload, role_payload, thread_payload
from .state import DEFAULT_PERMISSIONS, Channel, DiscordState, Guild, Member, Role, User

_COMMAND, _COMPONENT = 2, 3


class Driver:
    """Mixed into FakeDiscord. World-building calls made after READY also reach the client as gateway events."""

    state: DiscordState
    gateway: Gateway
    hub: Hub

    # -- the world --------------------------------------------------------------------------------------------
    def add_user(self, username: str, *, bot: bool = False) -> str:
        user = User(self.state.ids.next(), username, bot=bot)
        self.state.users[user.id] = user
        return user.id

    def add_guild(
        self,
        name: str = "Test Guild",
        *,
        owner_id: str | None = None,
        premium_tier: int = 0,
        features: Iterable[str] = (),
    ) -> str:
        """A guild with an @everyone role (DEFAULT_PERMISSIONS), its owner and the bot as members."""
        owner = owner_id or self.add_user(f"{name.lower().replace(' ', '-')}-owner")
        self.state.user(owner)
        guild = Guild(self.state.ids.next(), name, owner, premium_tier=premium_tier, features=list(features))
        guild.roles[guild.id] = Role(guild.id, "@everyone", DEFAULT_PERMISSIONS)  # @everyone's id is the guild's
        guild.members[owner] = Member(owner)
        guild.members[self.state.bot.id] = Member(self.state.bot.id)
        self.state.guilds[guild.id] = guild
        self.gateway.dispatch("GUILD_CREATE", guild_create_payload(self.state, guild), intent=GUILDS)
        return guild.id

    def add_role(self, guild_id: str, name: str, *, permissions: int = 0) -> str:
        guild = self.state.guild(guild_id)
        role = Role(self.state.ids.next(), name, permissions, position=len(guild.roles))
        guild.roles[role.id] = role
        self.gateway.dispatch("GUILD_ROLE_CREATE", {"guild_id": guild_id, "role": role_payload(role)}, intent=GUILDS)
        return role.id

    def add_member(self, guild_id: str, user_id: str, *, roles: Sequence[str] = (), nick: str | None = None) -> None:
        guild = self.state.guild(guild_id)
        self.state.user(user_id)
        unknown_roles = [r for r in roles if r not in guild.roles]
        if unknown_roles:
            raise LookupError(f"fake-discord: roles {unknown_roles} are not in guild {guild_id}")
        member = Member(user_id, roles=list(roles), nick=nick)
        guild.members[user_id] = member
        data = {**member_payload(self.state, member), "guild_id": guild_id}
        self.gateway.dispatch("GUILD_MEMBER_ADD", data, intent=GUILD_MEMBERS)

    def add_channel(self, guild_id: str, name: str, *, topic: str | None = None) -> str:
        guild = self.state.guild(guild_id)
        position = sum(1 for c in guild.channel_ids if not self.state.channels[c].is_thread)
        channel = Channel(self.state.ids.next(), guild_id, name, position=position, topic=topic)
        self.state.channels[channel.id] = channel
        guild.channel_ids.append(channel.id)
        self.gateway.dispatch("CHANNEL_CREATE", channel_payload(channel), intent=GUILDS)
        return channel.id

    def add_message(
        self, channel_id: str, *, author_id: str | None = None, content: str = "", components: Sequence[Any] = ()
    ) -> str:
        """Seed history (no gateway event), e.g. a bot message with buttons from before a restart."""
        author = self.state.user(author_id or self.state.bot.id)
        body = {"content": content, "components": list(components)}
        limit = self.state.upload_limit(channel_id)
        message = new_message(
            self.state,
            channel_id=channel_id,
            author=author,
            body=body,
            uploads={},
            base_url=self.hub.base_url,
            limit=limit,
        )
        self.state.store_message(message)
        return str(message["id"])

    # -- users acting -----------------------------------------------------------------------------------------
    async def send_slash_command(
        self,
        guild_id: str,
        channel_id: str,
        user_id: str,
        name: str,
        options: Mapping[str, Any] | None = None,
        attachments: Sequence[Upload] | None = None,
    ) -> FakeInteraction:
        """INTERACTION_CREATE type 2 for a registered command (guild first, then global); the 3 s clock starts."""
        self._in_guild(guild_id, channel_id)
        command = self.state.find_command(name, guild_id)
        data = command_data(self.hub, command, options or {}, attachments or [])
        return await self._dispatch(
            interaction(self.hub, type_=_COMMAND, channel_id=channel_id, user_id=user_id, data=data)
        )

    async def send_button_click(
        self, guild_id: str, channel_id: str, message_id: str, user_id: str, custom_id: str
    ) -> FakeInteraction:
        """INTERACTION_CREATE type 3 for a button on a message the bot sent."""
        self._in_guild(guild_id, channel_id)
        message = self.state.message(channel_id, message_id)
        if not has_button(message, custom_id):
            raise LookupError(f"fake-discord: message {message_id} has no component with custom_id {custom_id!r}")
        data = {"custom_id": custom_id, "component_type": 2}
        found = interaction(
            self.hub, type_=_COMPONENT, channel_id=channel_id, user_id=user_id, data=data, message=message
        )
        return await self._dispatch(found)

    async def send_message(
        self,
        channel_id: str,
        user_id: str,
        content: str = "",
        attachments: Sequence[Upload] | None = None,
        message_reference: str | None = None,
    ) -> dict[str, Any]:
        """A user's message (MESSAGE_CREATE); returns the stored message object."""
        message = user_message(
            self.hub,
            channel_id=channel_id,
            user_id=user_id,
            content=content,
            attachments=attachments or [],
            message_reference=message_reference,
        )
        await self.hub.publish(message)
        return message

    # -- gateway faults ---------------------------------------------------------------------------------------
    async def drop_gateway(self, code: int = 4000) -> None:
        """Close the websocket(s) with `code`; discord.py reconnects and RESUMEs (missed events are replayed)."""
        await self.gateway.drop(code)

    async def request_reconnect(self) -> None:
        await self.gateway.send_op(RECONNECT)

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        await self.gateway.send_op(INVALID_SESSION, resumable)

    # -- what happened ----------------------------------------------------------------------------------------
    def messages_in(self, channel_id: str) -> list[dict[str, Any]]:
        """Messages oldest first (ephemeral ones included, flag 64); each attachment also carries its `data` bytes."""
        found = copy.deepcopy(list(self.state.messages.get(channel_id, {}).values()))
        for message in found:
            for attachment in message["attachments"]:
                attachment["data"] = self.state.blobs[attachment["id"]]
        return found

    def threads_of(self, channel_id: str) -> list[dict[str, Any]]:
        threads = [c for c in self.state.channels.values() if c.is_thread and c.parent_id == channel_id]
        return [thread_payload(t) for t in threads]

    def interaction(self, interaction_id: str) -> FakeInteraction:
        return self.hub.interactions[interaction_id]

    def interaction_responses(self, interaction_id: str) -> list[InteractionResponse]:
        return list(self.hub.interactions[interaction_id].responses)

    def commands(self, guild_id: str | None = None) -> list[dict[str, Any]]:
        return list(self.state.commands(guild_id))

    def _in_guild(self, guild_id: str, channel_id: str) -> None:
        if self.state.channel(channel_id).guild_id != guild_id:
            raise LookupError(f"fake-discord: channel {channel_id} is not in guild {guild_id}")

    async def _dispatch(self, found: FakeInteraction) -> FakeInteraction:
        if not self.gateway.sessions:
            raise RuntimeError("fake-discord: no identified gateway session to deliver the interaction to")
        sent = await asyncio.gather(*self.gateway.dispatch("INTERACTION_CREATE", found.payload))
        # Discord's 3 s clock starts when it sends the event, not when a busy fake queued it.
        found.dispatched_at = min(sent, default=found.dispatched_at)
        return found
