"""Point discord.py at DISCORD_API_URL and DISCORD_GATEWAY_URL (REST and gateway proxies, tests' fake)."""

from __future__ import annotations

import discord.gateway
import discord.http
import yarl

DEFAULT_API_URL = "https://discord.com/api/v10"


def point_discord_py(api_url: str, gateway_url: str | None) -> None:
    """discord.py keeps both as class attributes: every REST route (webhooks and interaction callbacks included)
    is built from `Route.BASE`, and a plain Client connects to `DEFAULT_GATEWAY` (RESUME uses the URL READY gives).
    """
    discord.http.Route.BASE = api_url.rstrip("/")
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
