"""Who may use the bot where: allowed servers, channels and roles from config; DMs off unless enabled."""

from __future__ import annotations

from bot.config import Settings


def refusal(
    settings: Settings, *, guild_id: int | None, channel_id: int | None, role_ids: tuple[str, ...]
) -> str | None:
    """None when allowed, else the sentence to show. For threads pass the parent channel's id."""
    if guild_id is None:
        return None if settings.discord_allow_dms else "I only work in server channels here, not in DMs."
    if settings.discord_allowed_guilds and str(guild_id) not in settings.discord_allowed_guilds:
        return "I'm not enabled on this server."
    if settings.discord_allowed_channels and str(channel_id) not in settings.discord_allowed_channels:
        return "I'm not enabled in this channel; ask an admin where to use me."
    if settings.discord_allowed_roles and not set(role_ids) & set(settings.discord_allowed_roles):
        return "You need one of the roles allowed to use the image bot."
    return None
