"""Discord objects into neutral values, and neutral replies into send() arguments: pure functions."""

from __future__ import annotations

import io
from dataclasses import dataclass

import aiohttp
import discord

from bot.images import ImageRejected, human_bytes
from bot.models import Button, Reply, ThreadRef, UserRef

CONTENT_LIMIT = 2000  # Discord: message content max 2,000 characters
BUTTON_TEMPLATE = r"bb:(?P<action>retry|undo|upscale_2k|upscale_4k|variations):(?P<turn>[0-9a-f]{32})"


@dataclass(frozen=True, slots=True)
class DiscordAttachment:
    """A Discord attachment as an ImageRef: type and size from the payload, bytes from the URL Discord gave."""

    attachment: discord.Attachment

    @property
    def filename(self) -> str:
        return self.attachment.filename

    @property
    def declared_mime(self) -> str | None:
        return self.attachment.content_type

    @property
    def declared_size(self) -> int | None:
        return self.attachment.size

    async def read(self, max_bytes: int) -> bytes:
        if self.attachment.size > max_bytes:
            raise ImageRejected(
                "too_large",
                f"“{self.filename}” is {human_bytes(self.attachment.size)}; the limit is {human_bytes(max_bytes)}.",
            )
        try:
            data = await self.attachment.read()
        except (discord.NotFound, discord.Forbidden) as exc:  # an expired CDN link, a deleted message
            raise ImageRejected("unavailable", f"Discord no longer serves “{self.filename}”; attach it again.") from exc
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as exc:
            raise ImageRejected(
                "unavailable", f"I couldn't download “{self.filename}” from Discord; send it again in a moment."
            ) from exc
        if len(data) > max_bytes:
            raise ImageRejected(
                "too_large", f"“{self.filename}” is larger than it said; the limit is {human_bytes(max_bytes)}."
            )
        return data


def user_ref(user: discord.User | discord.Member) -> UserRef:
    # "Manage Server" only decides who sees the admin commands; bot admins come from BANANABOT_ADMINS.
    roles: tuple[str, ...] = ()
    workspace = ""
    if isinstance(user, discord.Member):
        roles = tuple(str(role.id) for role in user.roles)
        workspace = str(user.guild.id)
    return UserRef("discord", str(user.id), display_name=user.display_name, workspace_id=workspace, roles=roles)


def thread_ref(thread: discord.Thread) -> ThreadRef:
    return ThreadRef("discord", str(thread.guild.id), str(thread.parent_id or ""), str(thread.id))


def thread_key(guild_id: int | None, parent_id: int | None, thread_id: int) -> str:
    return ThreadRef("discord", str(guild_id or ""), str(parent_id or ""), str(thread_id)).key


def clip(text: str, limit: int = CONTENT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def thread_name(prompt: str) -> str:
    name = " ".join(prompt.split()) or "image session"
    return name if len(name) <= 90 else name[:89] + "…"


def files_of(reply: Reply) -> list[discord.File]:
    return [discord.File(io.BytesIO(image.data), filename=image.filename) for image in reply.images]


def turn_of_message(message: discord.Message) -> str | None:
    """The turn a bot result message belongs to, read from its buttons (replies to it branch from that turn)."""
    for row in message.components:
        for child in getattr(row, "children", ()):
            parsed = Button.parse(getattr(child, "custom_id", None) or "")
            if parsed:
                return parsed[1]
    return None
