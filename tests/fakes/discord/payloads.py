"""Discord-shaped JSON for the fake's objects (reference §3, §4): users, members, channels, threads, guilds."""

from __future__ import annotations

from typing import Any

from .state import Channel, DiscordState, Guild, Member, Role, User


def user_payload(user: User) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": user.id,
        "username": user.username,
        "discriminator": "0",
        "global_name": user.global_name,
        "avatar": None,
        "public_flags": 0,
    }
    if user.bot:
        payload["bot"] = True
    return payload


def role_payload(role: Role) -> dict[str, Any]:
    return {
        "id": role.id,
        "name": role.name,
        "permissions": str(role.permissions),
        "position": role.position,
        "color": 0,
        "hoist": False,
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def member_payload(state: DiscordState, member: Member, *, with_user: bool = True) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "roles": list(member.roles),
        "nick": member.nick,
        "avatar": None,
        "joined_at": member.joined_at,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
    }
    if with_user:
        payload["user"] = user_payload(state.user(member.user_id))
    return payload


def channel_payload(channel: Channel) -> dict[str, Any]:
    if channel.is_thread:
        return thread_payload(channel)
    return {
        "id": channel.id,
        "type": channel.type,
        "guild_id": channel.guild_id,
        "name": channel.name,
        "position": channel.position,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": channel.parent_id,
        "topic": channel.topic,
        "last_message_id": channel.last_message_id,
        "rate_limit_per_user": channel.rate_limit_per_user,
        "flags": 0,
    }


def thread_payload(thread: Channel, *, newly_created: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": thread.id,
        "type": thread.type,
        "guild_id": thread.guild_id,
        "parent_id": thread.parent_id,
        "owner_id": thread.owner_id,
        "name": thread.name,
        "last_message_id": thread.last_message_id,
        "message_count": thread.message_count,
        "total_message_sent": thread.message_count,
        "member_count": len(thread.member_ids),
        "rate_limit_per_user": thread.rate_limit_per_user,
        "flags": 0,
        "thread_metadata": {
            "archived": thread.archived,
            "auto_archive_duration": thread.auto_archive_duration,
            "archive_timestamp": thread.archive_timestamp,
            "locked": thread.locked,
            "create_timestamp": thread.archive_timestamp,
        },
    }
    if newly_created:
        payload["newly_created"] = True
    return payload


def guild_payload(state: DiscordState, guild: Guild) -> dict[str, Any]:
    """The REST `GET /guilds/{id}` object (no channels or members)."""
    return {
        "id": guild.id,
        "name": guild.name,
        "icon": None,
        "splash": None,
        "banner": None,
        "description": None,
        "owner_id": guild.owner_id,
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": guild.premium_tier,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "system_channel_id": guild.channel_ids[0] if guild.channel_ids else None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "features": list(guild.features),
        "roles": [role_payload(r) for r in guild.roles.values()],
        "emojis": [],
        "stickers": [],
        "application_id": None,
        "vanity_url_code": None,
    }


def guild_create_payload(state: DiscordState, guild: Guild) -> dict[str, Any]:
    """GUILD_CREATE: the guild plus channels, active threads and members, as sent after READY (§3)."""
    channels = [state.channels[c] for c in guild.channel_ids]
    return {
        **guild_payload(state, guild),
        "unavailable": False,
        "joined_at": guild.members[state.bot.id].joined_at,
        "large": False,
        "member_count": len(guild.members),
        "members": [member_payload(state, m) for m in guild.members.values()],
        "channels": [channel_payload(c) for c in channels if not c.is_thread],
        "threads": [thread_payload(c) for c in channels if c.is_thread and not c.archived],
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


def ready_payload(state: DiscordState, *, session_id: str, resume_url: str, shard: list[int] | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "v": 10,
        "user": {**user_payload(state.bot), "verified": True, "mfa_enabled": False, "flags": 0},
        "guilds": [{"id": g, "unavailable": True} for g in state.guilds],
        "session_id": session_id,
        "session_type": "normal",
        "resume_gateway_url": resume_url,
        "application": {"id": state.application_id, "flags": 0},
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "user_settings": {},
        "guild_join_requests": [],
        "geo_ordered_rtc_regions": [],
        "auth": {},
        "_trace": ['["fake-discord-gateway",{"micros":0}]'],
    }
    if shard is not None:
        payload["shard"] = shard
    return payload


def application_payload(state: DiscordState) -> dict[str, Any]:
    """`GET /oauth2/applications/@me`: every key AppInfo requires (§2); no interactions_endpoint_url."""
    return {
        "id": state.application_id,
        "name": state.bot.username,
        "icon": None,
        "description": "",
        "summary": "",
        "type": None,
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "flags": 0,
        "owner": user_payload(state.app_owner),
        "team": None,
        "bot": user_payload(state.bot),
        "redirect_uris": [],
        "tags": [],
        "integration_types_config": {"0": {}},
    }
