"""The discord.py client: slash commands, thread messages and buttons into invocations for the core."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Mapping
from typing import Any

import discord
from discord import app_commands

from adapters.discord import glue
from adapters.discord.access import refusal
from adapters.discord.buttons import ResultButton
from adapters.discord.responder import DiscordResponder
from adapters.discord.translate import (
    DiscordAttachment,
    clip,
    thread_key,
    thread_name,
    thread_ref,
    turn_of_message,
    user_ref,
)
from bot.dispatcher import dispatch, too_busy
from bot.models import Button, Invocation
from bot.services import Services
from bot.targets import size_option
from commands import COMMANDS
from commands.imagine import refusal_before_start

log = logging.getLogger(__name__)
Interaction = discord.Interaction[Any]
PROMPT_TYPES = (discord.MessageType.default, discord.MessageType.reply)


def session_refused(error: discord.HTTPException) -> str:
    """Why /imagine could not open its thread, for the user who asked (nothing was charged)."""
    if isinstance(error, discord.Forbidden):
        return (
            "I can't start a session here: I need the Send Messages and Create Public Threads permissions in this "
            "channel. Ask a server admin, or use /imagine in another channel. Nothing was charged."
        )
    return (
        f"Discord didn't let me open the session thread (HTTP {error.status}). "
        "Try again in a moment; nothing was charged."
    )


def intents(*, message_content: bool) -> discord.Intents:
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_messages = True
    wanted.dm_messages = True
    wanted.message_content = message_content
    return wanted


class BananaHandlers(discord.Client):
    """The bot's Discord handlers; every one acks first (Discord's 3-second rule), then runs the core."""

    def __init__(self, services: Services, *, message_content: bool = True, **options: Any) -> None:
        # Nobody is pinged unless a send says so: prompts and the model's text land in captions verbatim.
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        super().__init__(intents=intents(message_content=message_content), **options)
        self.services = services
        self.tree: app_commands.CommandTree[Any] = app_commands.CommandTree(self)
        self.tree.on_error = self.on_command_error  # type: ignore[method-assign]
        glue.register(self.tree, self)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(ResultButton)  # buttons of messages posted before a restart keep working
        guilds = self.services.settings.discord_guild_ids
        if guilds:
            for guild_id in guilds:
                guild = discord.Object(int(guild_id))
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()

    async def on_ready(self) -> None:
        self.services.adapter_status["discord"] = "connected"

    async def on_resumed(self) -> None:
        self.services.adapter_status["discord"] = "connected"

    async def on_disconnect(self) -> None:
        self.services.adapter_status["discord"] = "disconnected"

    async def on_command_error(self, interaction: Interaction, error: app_commands.AppCommandError) -> None:
        """A slash command that raised still answers its user (privately), instead of "thinking…" forever."""
        name = interaction.command.qualified_name if interaction.command is not None else "that command"
        log.error("/%s failed", name, exc_info=error)
        text = f"Something went wrong running /{name} on my side. It has been logged; please try again."
        with contextlib.suppress(discord.HTTPException):
            if interaction.response.is_done():
                await interaction.edit_original_response(content=text)
            else:
                await interaction.response.send_message(text, ephemeral=True)

    # Slash commands
    async def on_imagine(
        self,
        interaction: Interaction,
        prompt: str,
        attachments: tuple[discord.Attachment, ...],
        options: dict[str, str],
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        channel = interaction.channel
        if isinstance(channel, discord.Thread):
            cannot = self._cannot_post(interaction, channel)
            if cannot is not None:
                await interaction.edit_original_response(content=cannot)
                return
            await self._run(interaction, "imagine", channel, text=prompt, attachments=attachments, options=options)
            return
        if not isinstance(channel, discord.TextChannel):
            await interaction.edit_original_response(
                content="Use /imagine in a server text channel or a session thread."
            )
            return
        if await self._refused(interaction, channel.id):
            return
        cannot = self._cannot_post(interaction, None)
        if cannot is not None:  # no paid image nobody could see, and no empty thread
            await interaction.edit_original_response(content=cannot)
            return
        user = user_ref(interaction.user)
        busy = too_busy(self.services, user)
        if busy is not None:
            await interaction.edit_original_response(content=busy)
            return
        asked = Invocation("imagine", user, None, prompt, tuple(DiscordAttachment(a) for a in attachments), options)
        wrong = refusal_before_start(asked, self.services)
        if wrong is not None:  # no public thread for a request that can't run
            await interaction.edit_original_response(content=wrong)
            return
        credits = self.services.settings.credits_for(size_option(options.get("size")) or "1K")
        short = await self.services.ledger.precheck(user, credits=credits, now=self.services.now())
        if short is not None:  # don't open an empty thread for someone who is out of credits
            await interaction.edit_original_response(content=short.message)
            return
        try:
            starter = await channel.send(
                clip(f"🎨 {interaction.user.mention} started an image session: “{prompt}”"),
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            await interaction.edit_original_response(content=session_refused(exc))
            return
        try:
            thread = await channel.create_thread(name=thread_name(prompt), message=starter, auto_archive_duration=1440)
        except discord.HTTPException as exc:
            with contextlib.suppress(discord.HTTPException):  # no starter left without its thread
                await starter.delete()
            await interaction.edit_original_response(content=session_refused(exc))
            return
        await self._run(interaction, "imagine", thread, text=prompt, attachments=attachments, options=options)

    async def on_simple(self, interaction: Interaction, command: str) -> None:
        # The defer goes out at once, and the command (/quota, /help: a store read) runs while it is on the way:
        # every edit of the answer waits for it, so the answer comes one round trip sooner.
        deferral = asyncio.ensure_future(interaction.response.defer(ephemeral=True, thinking=True))
        channel = interaction.channel
        thread = channel if isinstance(channel, discord.Thread) else None
        try:
            await self._run(interaction, command, thread, deferral=deferral)
        finally:
            await deferral  # its failure is this interaction's failure, as when it was awaited first

    async def on_admin(self, interaction: Interaction, action: str, target: discord.User, amount: str | None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        options = {"action": action, "user": f"discord:{target.id}"}
        if amount is not None:
            options["amount"] = amount
        channel = interaction.channel
        await self._run(interaction, "admin", channel if isinstance(channel, discord.Thread) else None, options=options)

    async def on_result_button(self, interaction: Interaction, action: str, turn_id: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        channel = interaction.channel
        if not isinstance(channel, discord.Thread):
            await interaction.edit_original_response(content="This button only works in its session thread.")
            return
        found = Button.command_for(Button(action, "", turn_id).custom_id)  # type: ignore[arg-type]
        if found is None:
            await interaction.edit_original_response(content="I don't know that button.")
            return
        if not interaction.permissions.send_messages_in_threads:  # the bot would post for someone who may not
            await interaction.edit_original_response(content="You can't post in this thread, so I won't for you.")
            return
        cannot = self._cannot_post(interaction, channel) if found[0] != "undo" else None
        if cannot is not None:
            await interaction.edit_original_response(content=cannot)
            return
        await self._run(interaction, found[0], channel, options=found[1])

    @staticmethod
    def _cannot_post(interaction: Interaction, thread: discord.Thread | None) -> str | None:
        """Why a result could not be posted where this interaction would put it (checked before the model is
        paid), or None. The bot's own permissions in the channel come with the interaction."""
        if thread is not None and thread.locked:  # an archived one reopens when the bot posts; a locked one doesn't
            return "This thread is locked, so I can't post results here. Nothing was charged."
        allowed = interaction.app_permissions
        missing = [
            name
            for name, granted in (
                ("Send Messages in Threads", allowed.send_messages_in_threads),
                ("Attach Files", allowed.attach_files),
                *((("Create Public Threads", allowed.create_public_threads),) if thread is None else ()),
            )
            if not granted
        ]
        if not missing:
            return None
        need = f"I need the {' and '.join(missing)} permission{'s' if len(missing) > 1 else ''}"
        if thread is None:
            return (
                f"I can't start a session here: {need} in this channel. Ask a server admin, or use /imagine in "
                "another channel. Nothing was charged."
            )
        return f"I can't post images in this thread: {need}. Ask a server admin. Nothing was charged."

    # Plain messages in a session thread
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or not isinstance(message.channel, discord.Thread):
            return
        if message.type not in PROMPT_TYPES:  # a rename, a pin, a member added: Discord's notices, not prompts
            return
        thread = message.channel
        key = thread_key(thread.guild.id, thread.parent_id, thread.id)
        if await self.services.store.active_session(key) is None and thread.owner_id != self._my_id():
            return  # not one of ours: stay quiet (a thread the bot opened is, also after /reset)
        user = user_ref(message.author)
        denied = refusal(
            self.services.settings, guild_id=thread.guild.id, channel_id=thread.parent_id, role_ids=user.roles
        )
        if denied:
            await thread.send(denied, reference=message, mention_author=False)
            return
        text = self._without_mention(message.content)
        if not text and not message.attachments and not self._addressed(message):
            return  # a sticker, an embed: nothing to draw (a bare @mention is answered with what to send)
        options: dict[str, str] = {}
        parent_turn = await self._replied_turn(message)
        if parent_turn:
            options["turn"] = parent_turn
        invocation = Invocation(
            "imagine",
            user,
            thread_ref(thread),
            text,
            tuple(DiscordAttachment(a) for a in message.attachments),
            options,
            upload_limit=thread.guild.filesize_limit,
        )
        responder = DiscordResponder(thread=thread, source=message, mention=message.author.mention)
        try:
            await dispatch(invocation, responder, self.services, COMMANDS)
        finally:
            await responder.close()

    def _my_id(self) -> int | None:
        return self.user.id if self.user is not None else None

    def _addressed(self, message: discord.Message) -> bool:
        me = self.user
        return me is not None and any(user.id == me.id for user in message.mentions)

    async def _run(
        self,
        interaction: Interaction,
        command: str,
        thread: discord.Thread | None,
        *,
        text: str = "",
        attachments: tuple[discord.Attachment, ...] = (),
        options: Mapping[str, str] | None = None,
        deferral: asyncio.Future[Any] | None = None,
    ) -> None:
        parent = thread.parent_id if thread is not None else interaction.channel_id
        if await self._refused(interaction, parent, deferral):
            return
        channel = thread or interaction.channel
        if channel is None or not isinstance(channel, discord.abc.Messageable):
            if deferral is not None:
                await deferral
            await interaction.edit_original_response(content="I can't post here.")
            return
        invocation = Invocation(
            command,
            user_ref(interaction.user),
            thread_ref(thread) if thread is not None else None,
            text,
            tuple(DiscordAttachment(a) for a in attachments),
            dict(options or {}),
            # The interaction's limit is the larger of the user's (Nitro) and the server's; the bot posts as itself.
            upload_limit=min(interaction.filesize_limit, interaction.guild.filesize_limit)
            if interaction.guild is not None
            else interaction.filesize_limit,
        )
        responder = DiscordResponder(
            thread=channel, interaction=interaction, deferral=deferral, mention=interaction.user.mention
        )
        try:
            await dispatch(invocation, responder, self.services, COMMANDS)
        finally:
            await responder.close()

    async def _refused(
        self, interaction: Interaction, channel_id: int | None, deferral: asyncio.Future[Any] | None = None
    ) -> bool:
        roles = user_ref(interaction.user).roles
        denied = refusal(self.services.settings, guild_id=interaction.guild_id, channel_id=channel_id, role_ids=roles)
        if denied:
            if deferral is not None:
                await deferral
            await interaction.edit_original_response(content=denied)
        return denied is not None

    async def _replied_turn(self, message: discord.Message) -> str | None:
        reference = message.reference
        if reference is None or reference.message_id is None:
            return None
        target = reference.resolved
        if not isinstance(target, discord.Message):
            try:
                target = await message.channel.fetch_message(reference.message_id)
            except discord.HTTPException:
                return None
        if self.user is None or target.author.id != self.user.id:
            return None
        return turn_of_message(target)

    def _without_mention(self, content: str) -> str:
        if self.user is None:
            return content.strip()
        return re.sub(rf"<@!?{self.user.id}>", "", content).strip()


class BananaClient(BananaHandlers):
    """One gateway connection."""


class ShardedBananaClient(BananaHandlers, discord.AutoShardedClient):
    """A subset of shards (DISCORD_SHARD_COUNT / DISCORD_SHARD_IDS): replicas split a large bot between them."""


def make_client(services: Services, *, message_content: bool) -> BananaHandlers:
    settings = services.settings
    if settings.discord_shard_count is None:
        return BananaClient(services, message_content=message_content)
    shard_ids = [int(shard) for shard in settings.discord_shard_ids] or None
    return ShardedBananaClient(
        services, message_content=message_content, shard_count=settings.discord_shard_count, shard_ids=shard_ids
    )
