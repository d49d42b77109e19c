"""A burst of gateway events is parsed one per turn of the event loop, so handlers and I/O run in between."""

from __future__ import annotations

import asyncio
from typing import Any

import discord.gateway
import pytest

from tests.adapters.discord.conftest import DiscordBot, World
from tests.adapters.discord.test_discord_e2e import private_texts
from tests.fakes.discord import FakeDiscord


async def test_the_loop_turns_between_the_events_of_a_burst(
    discord_bot: DiscordBot, fake_discord_raw: FakeDiscord, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = fake_discord_raw
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    seen: list[int] = []  # the loop's turn in which each gateway event was handled
    received = discord.gateway.DiscordWebSocket.received_message

    async def spy(self: Any, msg: Any) -> None:
        seen.append(turns)
        await received(self, msg)

    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "received_message", spy)
    counter = asyncio.create_task(count_turns())
    try:
        # 40 events queued at once: the fake writes them back to back, discord.py finds them buffered together.
        sent = await asyncio.gather(
            *(fake.send_slash_command(world.guild_id, world.channel_id, world.alice, "quota") for _ in range(40))
        )
        await fake.wait_for(lambda: all(private_texts(fake, s.id) for s in sent), timeout=20)
    finally:
        counter.cancel()
    assert len(seen) >= 40
    assert len(set(seen)) == len(seen), "several gateway events were handled in one turn of the loop"
    assert all(any("credits left" in t for t in private_texts(fake, s.id)) for s in sent)
