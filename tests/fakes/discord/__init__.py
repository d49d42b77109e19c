"""A wire-level fake Discord (REST v10, gateway, CDN) for running the real discord.py client in tests."""

from .client_setup import DiscordRedirect, point_discord_py_at
from .hub import FakeInteraction, InteractionResponse
from .server import FakeDiscord
from .state import ADMINISTRATOR, DEFAULT_PERMISSIONS, MANAGE_GUILD
from .wire import RecordedCall, UploadedFile

__all__ = [
    "ADMINISTRATOR",
    "DEFAULT_PERMISSIONS",
    "MANAGE_GUILD",
    "DiscordRedirect",
    "FakeDiscord",
    "FakeInteraction",
    "InteractionResponse",
    "RecordedCall",
    "UploadedFile",
    "point_discord_py_at",
]
