"""Point the unmodified discord.py at another Discord (the fake, or a proxy): two class attributes, nothing else.

discord.py 2.7 has no option for either URL:
- REST: `discord.http.Route.BASE` (default `https://discord.com/api/v10`) is read by every `Route(...)`, which
  the interaction webhook adapter (`discord/webhook/async_.py`) uses too.
- Gateway: `Client.connect()` never asks `GET /gateway/bot`; it dials `DiscordWebSocket.DEFAULT_GATEWAY`
  (default `wss://gateway.discord.gg/`), and falls back to it after INVALID_SESSION. RESUMEs go to READY's
  `resume_gateway_url`, which the server supplies. Only `AutoShardedClient` reads `GET /gateway/bot`.
"""

from __future__ import annotations

from types import TracebackType

import discord.gateway
import discord.http
import yarl


class DiscordRedirect:
    """The applied redirect; `undo()` (or leaving the `with` block) restores the previous URLs."""

    def __init__(self, api_url: str, gateway_url: str) -> None:
        self._saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
        discord.http.Route.BASE = api_url.rstrip("/")
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)

    def undo(self) -> None:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self._saved

    def __enter__(self) -> DiscordRedirect:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.undo()


def point_discord_py_at(api_url: str, gateway_url: str) -> DiscordRedirect:
    """Send discord.py's REST calls to `api_url` (…/api/v10) and its gateway connections to `gateway_url` (ws[s]://).

    Process-global, like the attributes it sets. Applies at once; use as a context manager or call `undo()`.
    """
    return DiscordRedirect(api_url, gateway_url)
