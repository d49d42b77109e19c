"""What /imagine and thread messages must not do on Discord: leave a user on "thinking…", ping people a prompt
names, or read Discord's own notices (a thread rename) as prompts. The real discord.py against the fakes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.discord import ADAPTER
from bot.adapter import TokenRefused
from tests.adapters import refusal_at_start
from tests.adapters.discord.conftest import DiscordBot, World
from tests.adapters.discord.test_discord_e2e import private_texts, start_session, wait_images
from tests.core.conftest import make_settings
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.channels import CREATE_PUBLIC_THREADS, SEND_MESSAGES
from tests.fakes.discord.messages import new_message
from tests.fakes.gemini import FakeGemini

CHANNEL_NAME_CHANGE, PINS_ADD = 4, 6  # message types Discord posts itself, written "by" the member who acted


def starters(fake: FakeDiscord, world: World) -> list[str]:
    return [m["content"] for m in fake.messages_in(world.channel_id) if "started an image session" in m["content"]]


@pytest.mark.parametrize(("denied", "says"), [(CREATE_PUBLIC_THREADS, "Create Public Threads"), (SEND_MESSAGES, "")])
async def test_imagine_where_the_bot_may_not_open_a_thread_tells_the_user_and_leaves_nothing_behind(
    discord_bot: DiscordBot,
    fake_discord_raw: FakeDiscord,
    fake_gemini: FakeGemini,
    world: World,
    denied: int,
    says: str,
) -> None:
    fake = fake_discord_raw
    everyone = fake.state.guilds[world.guild_id].roles[world.guild_id]
    everyone.permissions &= ~denied  # what a channel overwrite denying the permission does
    sent = await fake.send_slash_command(world.guild_id, world.channel_id, world.alice, "imagine", {"prompt": "a cat"})
    await fake.wait_for(lambda: private_texts(fake, sent.id), timeout=10)

    [text] = private_texts(fake, sent.id)
    assert "I can't start a session here" in text and says in text and "Nothing was charged" in text
    assert not fake.interaction(sent.id).loading  # no longer "bananabot is thinking…"
    assert starters(fake, world) == []  # the starter message did not stay without its thread
    assert fake.threads_of(world.channel_id) == []
    assert fake_gemini.requests == [] and await discord_bot.credits(world.alice) == 0


async def test_a_command_that_fails_unexpectedly_still_answers_its_user(
    discord_bot: DiscordBot, fake_discord_raw: FakeDiscord, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    fake = fake_discord_raw
    assert discord_bot.services is not None
    await discord_bot.services.store.close()  # every store call now raises: nothing in the command expects that
    sent = await fake.send_slash_command(world.guild_id, world.channel_id, world.alice, "imagine", {"prompt": "a cat"})
    await fake.wait_for(lambda: private_texts(fake, sent.id), timeout=10)
    assert private_texts(fake, sent.id) == [
        "Something went wrong running /imagine on my side. It has been logged; please try again."
    ]
    assert "/imagine failed" in caplog.text and "Traceback" in caplog.text


async def test_result_captions_ping_only_the_person_who_asked(
    discord_bot: DiscordBot, fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, world: World
) -> None:
    fake = fake_discord_raw
    prompt = f"@everyone <@{world.bob}> <@&{world.guild_id}> a cat"
    _, thread_id = await start_session(fake, world, prompt)
    [result] = await wait_images(fake, thread_id, 1)
    assert f"<@{world.bob}>" in result["content"] and "@everyone" in result["content"]  # shown, as plain text

    posts = [c for c in fake.calls if c.method == "POST" and c.path.endswith(f"/channels/{thread_id}/messages")]
    # Discord parses mentions from the content when allowed_mentions is absent; with it, only these are pinged.
    pinged = [c.json.get("allowed_mentions") for c in posts]
    assert pinged == [{"parse": [], "users": [int(world.alice)]}]
    in_channel = f"/channels/{world.channel_id}/messages"
    started = [c for c in fake.calls if c.method == "POST" and c.path.endswith(in_channel)]
    assert [c.json.get("allowed_mentions") for c in started] == [{"parse": []}]


@pytest.mark.parametrize("kind", [CHANNEL_NAME_CHANGE, PINS_ADD])
async def test_discords_own_notices_in_a_session_thread_are_not_prompts(
    discord_bot: DiscordBot, fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, world: World, kind: int
) -> None:
    fake = fake_discord_raw
    _, thread_id = await start_session(fake, world, "a tea pot")
    await wait_images(fake, thread_id, 1)
    credits = await discord_bot.credits(world.alice)
    # What Discord sends when alice renames the thread: a message "by" her whose content is the new name.
    notice = new_message(
        fake.state,
        channel_id=thread_id,
        author=fake.state.user(world.alice),
        body={"content": "Tea pots (final)"},
        uploads={},
        base_url=fake.hub.base_url,
        limit=0,
        extra={"type": kind},
    )
    await fake.hub.publish(notice)
    await fake.send_message(thread_id, world.alice, "now in blue")  # an ordinary message after it still counts
    await wait_images(fake, thread_id, 2)
    await asyncio.sleep(0.3)
    prompts = [r.body["contents"][-1]["parts"][-1].get("text") for r in fake_gemini.requests]
    assert prompts == ["a tea pot", "now in blue"]
    assert await discord_bot.credits(world.alice) == credits + 1


async def test_a_token_discord_refuses_stops_the_adapter_naming_its_variable(
    fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, world: World, tmp_path: Path
) -> None:
    fake = fake_discord_raw
    wrong = "MTAx.not-the-real-token.at-all"
    settings = make_settings(
        fake_gemini,
        tmp_path,
        discord_token=wrong,
        discord_api_url=fake.api_url,
        discord_gateway_url=fake.gateway_url,
        discord_guild_ids=world.guild_id,
    )
    refused = await refusal_at_start(ADAPTER, settings, TokenRefused)
    assert str(refused).startswith("Discord refused DISCORD_TOKEN: ")
    assert wrong not in str(refused) and fake.gateway.identifies == []
