"""Replies into a Discord thread; private errors and progress through the interaction when there is one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import discord

from adapters.discord.buttons import view_for
from adapters.discord.translate import clip, files_of
from bot.models import Progress, Reply

log = logging.getLogger(__name__)

TICK_SECONDS = 5.0
INTERACTION_TTL = 14 * 60  # Discord: interaction tokens last 15 minutes; keep a margin


class DiscordResponder:
    """Posts results to the thread with the bot token (works past the 15-minute interaction token).

    With an interaction (deferred ephemerally), errors and progress go to that private message; without one
    (a plain message in the thread), errors are replies to the user's message and progress is a status message
    that is deleted when the turn ends.
    """

    def __init__(
        self,
        *,
        thread: discord.abc.Messageable,
        interaction: discord.Interaction[Any] | None = None,
        source: discord.Message | None = None,
        mention: str = "",
        deferral: asyncio.Future[Any] | None = None,
    ) -> None:
        self.thread = thread
        self.interaction = interaction
        asker = interaction.user if interaction is not None else source.author if source is not None else None
        # Only the person who asked is pinged (the caption names them); the client's default pings nobody, so an
        # @everyone, a role or another user in a prompt or in the model's text stays plain text.
        self._pings = discord.AllowedMentions(users=[asker] if asker is not None else False, replied_user=False)
        self._deferral = deferral  # the interaction's defer, still on the way: edits wait for it
        self.source = source
        self.mention = mention
        self.started = time.monotonic()
        self.private_text = ""
        self._status: discord.Message | None = None
        self._ticker: asyncio.Task[None] | None = None

    async def send(self, reply: Reply) -> None:
        if reply.ephemeral and await self._private(reply.text):
            return
        content = reply.text if not reply.ephemeral or not self.mention else f"{self.mention} {reply.text}"
        view = view_for(reply)
        kwargs: dict[str, Any] = {"content": clip(content), "files": files_of(reply), "allowed_mentions": self._pings}
        if view is not None:
            kwargs["view"] = view
        if reply.error and self.source is not None:
            # Not required to exist: the prompt may be deleted (by its author, a moderation bot) before the answer.
            kwargs["reference"] = self.source.to_reference(fail_if_not_exists=False)
            kwargs["mention_author"] = False
        await self.thread.send(**kwargs)

    async def progress(self, event: Progress) -> None:
        if event.kind == "queued":
            await self._show(f"⏳ Queued: {event.position} ahead of you in this thread.")
        elif event.kind == "started":
            self.started = time.monotonic()
            await self._show("🎨 Working on it…")
            self._ticker = asyncio.create_task(self._tick())
        else:
            await self.close(failed=event.kind == "failed", elapsed=event.elapsed)

    async def close(self, *, failed: bool = False, elapsed: float = 0.0) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._status is not None:
            with contextlib.suppress(discord.HTTPException):
                await self._status.delete()
            self._status = None
        if self.interaction is not None and not self.private_text and self._interaction_alive():
            done = "Something went wrong; see above." if failed else f"✅ Done in {elapsed:.0f} s — see the thread."
            with contextlib.suppress(discord.HTTPException):
                await self._edit(done)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            await self._show(f"🎨 Working on it… {time.monotonic() - self.started:.0f} s")

    async def _show(self, text: str) -> None:
        try:
            if self.interaction is not None and self._interaction_alive():
                if not self.private_text:
                    await self._edit(text)
                return
            if self._status is None:
                self._status = await self.thread.send(text)
            else:
                await self._status.edit(content=text)
        except discord.HTTPException as exc:
            log.info("progress not shown: %s", exc)

    async def _private(self, text: str) -> bool:
        """Show an error only to the invoker; False when there is no live interaction to do it with."""
        if self.interaction is None or not self._interaction_alive():
            return False
        try:
            await self._edit(clip(text))
        except discord.HTTPException:
            return False
        self.private_text = text
        return True

    async def _edit(self, content: str) -> None:
        """Edit the interaction's private message, once its defer has landed."""
        assert self.interaction is not None
        if self._deferral is not None:
            await asyncio.shield(self._deferral)
        await self.interaction.edit_original_response(content=content)

    def _interaction_alive(self) -> bool:
        assert self.interaction is not None
        age = (discord.utils.utcnow() - self.interaction.created_at).total_seconds()
        return age < INTERACTION_TTL
