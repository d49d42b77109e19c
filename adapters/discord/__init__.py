"""The Discord adapter: `/imagine` starts a session in a thread; messages and buttons there continue it."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from pathlib import Path

import discord

from bot.adapter import TokenRefused
from bot.config import Settings
from bot.secret_text import shown_url
from bot.services import Services

log = logging.getLogger(__name__)


# View Channel, Send Messages, Embed Links, Attach Files, Read Message History, Add Reactions,
# Create Public Threads, Send Messages in Threads.
PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 6) | (1 << 35) | (1 << 38)


def application_id_from_token(token: str) -> str | None:
    """A bot token's first segment is the base64 of the bot's user id (= its application id)."""
    head = token.split(".", 1)[0]
    try:
        decoded = base64.b64decode(head + "=" * (-len(head) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded if decoded.isdigit() else None


def invite_url(application_id: str) -> str:
    return (
        "https://discord.com/oauth2/authorize"
        f"?client_id={application_id}&scope=bot+applications.commands&permissions={PERMISSIONS}"
    )


class DiscordAdapter:
    """Started by `bananabot run` when DISCORD_TOKEN is set."""

    name = "discord"
    required = ("DISCORD_TOKEN",)

    def configured(self, settings: Settings) -> bool:
        return settings.discord_token is not None

    def doctor(self, settings: Settings) -> list[str]:
        if settings.discord_token is None:
            return ["discord: not configured (set DISCORD_TOKEN)"]
        lines = [f"discord: token set; REST {shown_url(settings.discord_api_url)}"]
        if settings.discord_gateway_url:
            lines.append(f"discord: gateway {shown_url(settings.discord_gateway_url)}")
        app_id = application_id_from_token(settings.discord_token.get_secret_value())
        if app_id:
            lines.append(f"discord: invite the bot with {invite_url(app_id)}")
        sync = ", ".join(settings.discord_guild_ids) or "global (may take up to an hour to appear)"
        lines.append(f"discord: slash commands sync to {sync}")
        if settings.discord_message_content:
            lines.append(
                "discord: needs the Message Content intent (Developer Portal → Bot → Privileged Gateway "
                "Intents) for plain messages in threads; without it, mention the bot or use /imagine"
            )
        return lines

    async def run(self, services: Services) -> None:
        from adapters.discord.client import make_client
        from adapters.discord.endpoints import point_discord_py

        settings = services.settings
        assert settings.discord_token is not None
        point_discord_py(settings.discord_api_url, settings.discord_gateway_url)
        message_content = settings.discord_message_content
        while True:
            client = make_client(services, message_content=message_content)
            try:
                async with client:
                    try:
                        await client.start(settings.discord_token.get_secret_value())
                    except asyncio.CancelledError:
                        await services.drain()  # turns in flight still post through this client
                        raise
                return
            except discord.LoginFailure:
                services.adapter_status[self.name] = "disconnected"
                raise TokenRefused(
                    "Discord refused DISCORD_TOKEN: it should be the bot's token (Developer Portal → Bot → Reset Token)"
                ) from None
            except discord.PrivilegedIntentsRequired:
                services.adapter_status[self.name] = "disconnected"
                if not message_content:
                    raise
                log.warning(
                    "Discord refused the Message Content intent: plain messages in threads need a mention now. "
                    "Enable it in the Developer Portal (Bot → Privileged Gateway Intents) to drop the mention."
                )
                message_content = False

    async def chat(self, services: Services, *, session: str, out_dir: Path | None) -> None:
        raise NotImplementedError("the Discord adapter has no terminal mode")


ADAPTER = DiscordAdapter()
