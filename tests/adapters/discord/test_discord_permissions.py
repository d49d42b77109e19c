"""Discord: where results can and can't be posted, who may make the bot post, and answers that must still arrive."""

from __future__ import annotations

import asyncio

import pytest

import tests.fakes.discord.driver as fake_driver
from tests.adapters.discord.conftest import DiscordBot, World
from tests.adapters.discord.test_discord_e2e import custom_ids, first_result, images_in, private_texts
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.channels import ATTACH_FILES, SEND_IN_THREADS, SEND_MESSAGES
from tests.fakes.discord.payloads import channel_payload
from tests.fakes.gemini import FakeGemini

MiB = 1024 * 1024


def bot_texts(fake: FakeDiscord, channel_id: str) -> list[str]:
    return [m["content"] for m in fake.messages_in(channel_id) if m["author"]["id"] == fake.bot_id]


async def test_after_reset_a_plain_message_starts_a_fresh_session(
    discord_bot: DiscordBot, fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, world: World
) -> None:
    fake = fake_discord_raw
    thread_id, _ = await first_result(fake, world)
    reset = await fake.send_slash_command(world.guild_id, thread_id, world.alice, "reset")
    await fake.wait_for(lambda: any("Session ended" in t for t in bot_texts(fake, thread_id)), timeout=10)
    said = next(t for t in bot_texts(fake, thread_id) if "Session ended" in t)
    assert "The next prompt here starts from scratch" in said  # what the bot promises
    await fake.send_message(thread_id, world.alice, "a red fox in the snow")
    await asyncio.sleep(2.0)
    assert len(fake_gemini.requests) == 2, bot_texts(fake, thread_id)
    assert reset is not None


async def test_a_nitro_users_large_result_is_reencoded_to_fit_the_bots_limit(
    discord_bot: DiscordBot,
    fake_discord_raw: FakeDiscord,
    fake_gemini: FakeGemini,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Discord's interaction `attachment_size_limit` is the max of the user's and the guild's limit (reference §8):
    # a Nitro user gets 500 MiB. The bot posts results with its bot token, limited to the guild's 10 MiB.
    fake = fake_discord_raw
    real = fake_driver.interaction

    def nitro(*args, **kwargs):
        found = real(*args, **kwargs)
        found.payload["attachment_size_limit"] = 500 * MiB
        return found

    monkeypatch.setattr(fake_driver, "interaction", nitro)
    fake_gemini.noise = True  # a 2K noise PNG is about 12 MiB
    sent = await fake.send_slash_command(
        world.guild_id, world.channel_id, world.alice, "imagine", {"prompt": "static", "resolution": "2K"}
    )
    await fake.wait_for(lambda: fake.threads_of(world.channel_id), timeout=10)
    thread_id = fake.threads_of(world.channel_id)[-1]["id"]
    await fake.wait_for(
        lambda: images_in(fake, thread_id) or any("couldn't post" in t for t in private_texts(fake, sent.id)),
        timeout=60,
    )
    assert images_in(fake, thread_id), private_texts(fake, sent.id)


@pytest.mark.parametrize("denied", [SEND_IN_THREADS, ATTACH_FILES])
async def test_imagine_where_the_bot_cannot_post_results_spends_nothing_and_says_why(
    discord_bot: DiscordBot,
    fake_discord_raw: FakeDiscord,
    fake_gemini: FakeGemini,
    world: World,
    denied: int,
) -> None:
    fake = fake_discord_raw
    everyone = fake.state.guilds[world.guild_id].roles[world.guild_id]
    everyone.permissions &= ~denied
    sent = await fake.send_slash_command(world.guild_id, world.channel_id, world.alice, "imagine", {"prompt": "a cat"})
    await fake.wait_for(lambda: private_texts(fake, sent.id), timeout=15)
    await asyncio.sleep(0.5)
    texts = private_texts(fake, sent.id)
    assert "permission" in texts[-1] and "Nothing was charged" in texts[-1], texts
    assert fake_gemini.requests == [], texts  # a paid generation nobody can ever see
    assert fake.threads_of(world.channel_id) == []  # no empty public thread left behind


async def test_imagine_refused_for_too_many_in_flight_leaves_no_empty_thread(
    make_discord_bot, fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, world: World
) -> None:
    fake = fake_discord_raw
    await make_discord_bot(user_max_in_flight=1)
    fake_gemini.latency = 4.0
    await fake.send_slash_command(world.guild_id, world.channel_id, world.alice, "imagine", {"prompt": "one"})
    await fake.wait_for(lambda: fake_gemini.requests, timeout=10)
    second = await fake.send_slash_command(world.guild_id, world.channel_id, world.alice, "imagine", {"prompt": "two"})
    await fake.wait_for(lambda: any("on the way" in t for t in private_texts(fake, second.id)), timeout=10)
    starters = [m for m in fake.messages_in(world.channel_id) if "started an image session" in m["content"]]
    assert len(fake.threads_of(world.channel_id)) == 1, [m["content"] for m in starters]
    assert len(starters) == 1


async def test_a_member_who_may_not_post_in_the_thread_cannot_make_the_bot_post_there(
    discord_bot: DiscordBot, fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, world: World
) -> None:
    fake = fake_discord_raw
    guild = fake.state.guilds[world.guild_id]
    everyone = guild.roles[world.guild_id]
    posters = fake.add_role(world.guild_id, "posters", permissions=everyone.permissions)
    guild.members[fake.bot_id].roles.append(posters)
    guild.members[world.alice].roles.append(posters)
    everyone.permissions &= ~(SEND_MESSAGES | SEND_IN_THREADS)  # bob may read, not post
    thread_id, result = await first_result(fake, world)
    click = await fake.send_button_click(
        world.guild_id, thread_id, result["id"], world.bob, custom_ids(result)["variations"]
    )
    await fake.wait_for(lambda: private_texts(fake, click.id), timeout=10)
    await asyncio.sleep(1.5)
    assert len(images_in(fake, thread_id)) == 1, private_texts(fake, click.id)
    assert await discord_bot.credits(world.bob) == 0


async def test_a_deleted_prompt_that_fails_is_still_explained(
    discord_bot: DiscordBot, fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, world: World
) -> None:
    fake = fake_discord_raw
    thread_id, _ = await first_result(fake, world)
    fake_gemini.latency = 1.5
    sent = await fake.send_message(thread_id, world.alice, "[fault:image_safety] make it scary")
    await asyncio.sleep(0.3)
    await fake.hub.publish_delete(thread_id, sent["id"])
    await asyncio.sleep(3.0)
    texts = bot_texts(fake, thread_id)
    assert any("safety" in t for t in texts), texts


async def test_a_failed_click_that_waited_past_the_interaction_token_names_its_user(
    discord_bot: DiscordBot,
    fake_discord_raw: FakeDiscord,
    fake_gemini: FakeGemini,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import adapters.discord.responder as responder
    from tests.fakes.gemini import Fault

    fake = fake_discord_raw
    thread_id, first = await first_result(fake, world)
    monkeypatch.setattr(responder, "INTERACTION_TTL", 1.0)  # 15 minutes, scaled down
    fake.token_ttl = 1.0
    fake_gemini.latency = 2.5
    await fake.send_message(thread_id, world.alice, "make it blue")
    await fake.wait_for(lambda: len(fake_gemini.requests) == 2, timeout=10)
    fake_gemini.enqueue(Fault.IMAGE_SAFETY)
    await fake.send_button_click(world.guild_id, thread_id, first["id"], world.bob, custom_ids(first)["retry"])
    await asyncio.sleep(8.0)
    texts = bot_texts(fake, thread_id)
    said = [t for t in texts if "safety filter" in t]
    assert said, texts
    assert f"<@{world.bob}>" in said[0], texts  # the public answer names whose click it was


async def test_a_click_in_a_locked_thread_spends_no_generation(
    discord_bot: DiscordBot, fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, world: World
) -> None:
    fake = fake_discord_raw
    thread_id, first = await first_result(fake, world)
    thread = fake.state.channel(thread_id)
    thread.archived = thread.locked = True  # a moderator closed the thread: Discord tells the bot
    await fake.hub.emit("THREAD_UPDATE", channel_payload(thread), intent=1)
    await asyncio.sleep(0.3)
    click = await fake.send_button_click(
        world.guild_id, thread_id, first["id"], world.alice, custom_ids(first)["retry"]
    )
    await fake.wait_for(lambda: any("post" in t or "Done" in t for t in private_texts(fake, click.id)), timeout=15)
    assert len(fake_gemini.requests) == 1, private_texts(fake, click.id)
