"""What /imagine and thread messages bring in on Discord, and what is said when it can't be used."""

from __future__ import annotations

import pytest

from tests.adapters.discord.conftest import DiscordBot, World
from tests.adapters.discord.test_discord_e2e import first_result, private_texts
from tests.core.conftest import png_bytes
from tests.fakes.discord import FakeDiscord
from tests.fakes.gemini import FakeGemini


def bot_texts(fake: FakeDiscord, channel_id: str) -> list[str]:
    return [m["content"] for m in fake.messages_in(channel_id) if m["author"]["id"] == fake.bot_id]


@pytest.mark.parametrize(
    ("options", "attachments", "says"),
    [
        ({"prompt": "use this"}, [("notes.pdf", "application/pdf", b"%PDF-1.7 not an image")], "isn't an image"),
        ({"prompt": "a cat", "resolution": "512", "model": "gemini-3-pro-image-preview"}, [], "can't make 512"),
    ],
)
async def test_a_refused_imagine_opens_no_public_thread(
    discord_bot: DiscordBot,
    fake_discord_raw: FakeDiscord,
    fake_gemini: FakeGemini,
    world: World,
    options: dict[str, str],
    attachments: list[tuple[str, str, bytes]],
    says: str,
) -> None:
    fake = fake_discord_raw
    sent = await fake.send_slash_command(
        world.guild_id, world.channel_id, world.alice, "imagine", options, attachments=attachments
    )
    await fake.wait_for(lambda: any(says in t for t in private_texts(fake, sent.id)), timeout=10)

    assert fake_gemini.requests == [] and await discord_bot.credits(world.alice) == 0
    assert fake.threads_of(world.channel_id) == []
    assert not any("started an image session" in m["content"] for m in fake.messages_in(world.channel_id))


async def test_an_attachment_discord_no_longer_serves_is_named(
    discord_bot: DiscordBot, fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, world: World
) -> None:
    fake = fake_discord_raw
    thread_id, _ = await first_result(fake, world)
    fake.state.expired.add("later.png")
    await fake.send_message(
        thread_id, world.alice, "use this one", attachments=[("later.png", "image/png", png_bytes())]
    )

    await fake.wait_for(lambda: [t for t in bot_texts(fake, thread_id) if "later.png" in t], timeout=10)
    [said] = [t for t in bot_texts(fake, thread_id) if "later.png" in t]
    assert "Discord no longer serves “later.png”; attach it again." in said
    assert len(fake_gemini.requests) == 1 and await discord_bot.credits(world.alice) == 1


async def test_a_bare_mention_in_a_session_thread_is_told_what_to_send(
    discord_bot: DiscordBot, fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, world: World
) -> None:
    fake = fake_discord_raw
    thread_id, _ = await first_result(fake, world)
    await fake.send_message(thread_id, world.alice, f"<@{fake.bot_id}>")

    await fake.wait_for(lambda: [t for t in bot_texts(fake, thread_id) if "Tell me what to draw" in t], timeout=10)
    assert len(fake_gemini.requests) == 1 and await discord_bot.credits(world.alice) == 1
