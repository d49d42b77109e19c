"""How the CLI finds platform adapters without importing them: entry points in group `bananabot.adapters`."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol

from bot.config import Settings
from bot.services import Services

GROUP = "bananabot.adapters"


class TokenRefused(RuntimeError):
    """The platform refused a configured credential at start; the message names its variable, never its value.
    `bananabot run` prints it and exits, rather than retrying a token that will never work."""


class Adapter(Protocol):
    """A platform adapter that `bananabot run` starts when its credentials are configured."""

    name: str
    required: tuple[str, ...]  # the variables that switch it on, for the "nothing configured" message

    def configured(self, settings: Settings) -> bool: ...

    def doctor(self, settings: Settings) -> list[str]:
        """Human lines: what is set, what is missing, invite URLs."""

    async def run(self, services: Services) -> None:
        """Serve until cancelled; raise TokenRefused when the platform refuses the configured credentials."""

    async def chat(self, services: Services, *, session: str, out_dir: Path | None) -> None:
        """A terminal session (only the console adapter does this; others raise NotImplementedError)."""


def load_adapters() -> dict[str, Adapter]:
    """Every installed adapter by name (the console registers too, for `bananabot chat`)."""
    found: dict[str, Adapter] = {}
    for entry in entry_points(group=GROUP):
        adapter = entry.load()
        found[adapter.name] = adapter
    return found
