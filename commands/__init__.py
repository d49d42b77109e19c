"""Every command, explicitly listed (no plugin discovery)."""

from __future__ import annotations

from types import MappingProxyType

from bot.command import Command
from commands import admin, help, imagine, quota, reset, retry, undo, upscale, variations

ALL_COMMANDS: tuple[Command, ...] = (
    imagine.COMMAND,
    retry.COMMAND,
    undo.COMMAND,
    upscale.COMMAND,
    variations.COMMAND,
    quota.COMMAND,
    reset.COMMAND,
    help.COMMAND,
    admin.COMMAND,
)
COMMANDS = MappingProxyType({command.name: command for command in ALL_COMMANDS})
