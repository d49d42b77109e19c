"""Slash commands as Discord sees them; each forwards to the client, which runs the neutral command."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.app_commands import Choice

from bot.catalog import MODELS, SIZES
from commands import help as help_cmd
from commands import imagine, quota, reset

if TYPE_CHECKING:
    from adapters.discord.client import BananaHandlers

Interaction = discord.Interaction[Any]


def ratio_value(ratio: str) -> float:
    width, height = ratio.split(":")
    return int(width) / int(height)


_RATIOS = sorted({ratio for spec in MODELS for ratio in spec.aspect_ratios}, key=ratio_value)


def register(tree: app_commands.CommandTree[Any], client: BananaHandlers) -> None:
    @tree.command(name="imagine", description=imagine.COMMAND.description[:100])
    @app_commands.describe(
        prompt="What to draw, or what to change in this thread's image",
        image="A reference image",
        image2="Another reference image",
        image3="Another reference image",
        aspect_ratio="Aspect ratio",
        resolution="Image size (more credits for larger)",
        model="Gemini image model",
    )
    @app_commands.choices(
        aspect_ratio=[Choice(name=r, value=r) for r in _RATIOS],
        resolution=[Choice(name=s, value=s) for s in SIZES],
        model=[Choice(name=f"{m.nickname} ({m.id})"[:100], value=m.id) for m in MODELS],
    )
    async def imagine_command(
        interaction: Interaction,
        prompt: app_commands.Range[str, 1, 4000],
        image: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        aspect_ratio: Choice[str] | None = None,
        resolution: Choice[str] | None = None,
        model: Choice[str] | None = None,
    ) -> None:
        options = {
            name: choice.value
            for name, choice in (("aspect_ratio", aspect_ratio), ("size", resolution), ("model", model))
            if choice is not None
        }
        attachments = tuple(a for a in (image, image2, image3) if a is not None)
        await client.on_imagine(interaction, prompt, attachments, options)

    @tree.command(name="quota", description=quota.COMMAND.description)
    async def quota_command(interaction: Interaction) -> None:
        await client.on_simple(interaction, "quota")

    @tree.command(name="reset", description=reset.COMMAND.description)
    async def reset_command(interaction: Interaction) -> None:
        await client.on_simple(interaction, "reset")

    @tree.command(name="help", description=help_cmd.COMMAND.description)
    async def help_command(interaction: Interaction) -> None:
        await client.on_simple(interaction, "help")

    admin = app_commands.Group(
        name="bananabot-admin",
        description="Manage users' image credits",
        default_permissions=discord.Permissions(manage_guild=True),
        guild_only=True,
    )

    @admin.command(name="grant", description="Give a user extra credits for today and this month")
    async def grant(interaction: Interaction, user: discord.User, credits: app_commands.Range[int, 1, 100000]) -> None:
        await client.on_admin(interaction, "grant", user, str(credits))

    @admin.command(name="set", description="Set a user's daily credit limit")
    async def set_limit(
        interaction: Interaction, user: discord.User, daily: app_commands.Range[int, 0, 100000]
    ) -> None:
        await client.on_admin(interaction, "set", user, str(daily))

    @admin.command(name="block", description="Stop a user from generating images")
    async def block(interaction: Interaction, user: discord.User) -> None:
        await client.on_admin(interaction, "block", user, None)

    @admin.command(name="unblock", description="Let a blocked user generate images again")
    async def unblock(interaction: Interaction, user: discord.User) -> None:
        await client.on_admin(interaction, "unblock", user, None)

    @admin.command(name="reset", description="Reset a user's usage for today and this month")
    async def reset_usage(interaction: Interaction, user: discord.User) -> None:
        await client.on_admin(interaction, "reset", user, None)

    tree.add_command(admin)
