"""Run the real Discord adapter (discord.py) against the fake Discord and the fake Gemini."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord.gateway
import discord.http
import pytest

from adapters.discord import ADAPTER
from bot.services import Services, build_services
from tests.core.conftest import make_settings
from tests.fakes.discord import FakeDiscord
from tests.fakes.gemini import FakeGemini


@dataclass
class World:
    guild_id: str
    channel_id: str
    other_channel_id: str
    alice: str
    bob: str


@pytest.fixture
async def fake_discord_raw() -> AsyncIterator[FakeDiscord]:
    """The fake alone: the adapter itself must point discord.py at it (DISCORD_API_URL / DISCORD_GATEWAY_URL)."""
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    async with FakeDiscord() as fake:
        yield fake
    discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


@pytest.fixture
def world(fake_discord_raw: FakeDiscord) -> World:
    fake = fake_discord_raw
    guild = fake.add_guild("Banana Lab")
    channel = fake.add_channel(guild, "images")
    other = fake.add_channel(guild, "chat")
    alice, bob = fake.add_user("alice"), fake.add_user("bob")
    fake.add_member(guild, alice)
    fake.add_member(guild, bob)
    return World(guild, channel, other, alice, bob)


class DiscordBot:
    """`bananabot`'s Discord adapter in a task; restart() keeps the database, like a process restart."""

    def __init__(self, fake: FakeDiscord, gemini: FakeGemini, tmp_path: Path, world: World, overrides: dict[str, Any]):
        self.fake, self.gemini, self.tmp_path, self.world, self.overrides = fake, gemini, tmp_path, world, overrides
        self.services: Services | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        settings = make_settings(
            self.gemini,
            self.tmp_path,
            discord_token=self.fake.token,
            discord_api_url=self.fake.api_url,
            discord_gateway_url=self.fake.gateway_url,
            discord_guild_ids=self.world.guild_id,
            **self.overrides,
        )
        self.services = await build_services(settings)
        sessions = len(self.fake.gateway.identifies)
        self.task = asyncio.create_task(ADAPTER.run(self.services))
        await self.fake.wait_for(lambda: len(self.fake.gateway.identifies) > sessions, timeout=15)
        await self.fake.wait_for(lambda: self.fake.commands(self.world.guild_id), timeout=15)
        await asyncio.sleep(0.3)  # READY and GUILD_CREATE reach the cache

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        if self.services is not None:
            await self.services.close()
            self.services = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def credits(self, user_id: str) -> int:
        assert self.services is not None
        return (await self.services.store.usage(f"discord:{user_id}", now=self.services.now())).day_credits


@pytest.fixture
async def make_discord_bot(fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path, world: World):
    bots: list[DiscordBot] = []

    async def factory(**overrides: Any) -> DiscordBot:
        bot = DiscordBot(fake_discord_raw, fake_gemini, tmp_path, world, overrides)
        await bot.start()
        bots.append(bot)
        return bot

    yield factory
    for bot in bots:
        await bot.stop()


@pytest.fixture
async def discord_bot(make_discord_bot) -> AsyncIterator[DiscordBot]:
    yield await make_discord_bot()
