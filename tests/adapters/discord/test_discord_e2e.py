"""bananabot on Discord, end to end: the real discord.py client against the fake Discord and the fake Gemini."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from bot.catalog import FLASH_31
from tests.adapters.discord.conftest import DiscordBot, World
from tests.core.conftest import png_bytes
from tests.fakes.discord import FakeDiscord
from tests.fakes.gemini import FakeGemini, Fault

MiB = 1024 * 1024


def images_in(fake: FakeDiscord, channel_id: str) -> list[dict]:
    return [
        m for m in fake.messages_in(channel_id) if any(a["filename"].startswith("bananabot-") for a in m["attachments"])
    ]


def custom_ids(message: dict) -> dict[str, str]:
    ids = {}
    for row in message.get("components") or ():
        for button in row.get("components") or ():
            ids[button["custom_id"].split(":")[1]] = button["custom_id"]
    return ids


async def wait_images(fake: FakeDiscord, channel_id: str, count: int, timeout: float = 20.0) -> list[dict]:
    await fake.wait_for(lambda: len(images_in(fake, channel_id)) >= count, timeout=timeout)
    return images_in(fake, channel_id)


def private_texts(fake: FakeDiscord, interaction_id: str) -> list[str]:
    """What the invoker saw in the deferred (ephemeral) response: every edit of @original."""
    texts = []
    for response in fake.interaction_responses(interaction_id):
        body = response.body or {}
        content = body.get("content") if isinstance(body, dict) else None
        if content:
            texts.append(content)
    return texts


async def start_session(fake: FakeDiscord, world: World, prompt: str, **options) -> tuple[object, str]:
    sent = await fake.send_slash_command(
        world.guild_id,
        world.channel_id,
        world.alice,
        "imagine",
        {"prompt": prompt, **options},
        attachments=[("ref.png", "image/png", png_bytes(300, 200))],
    )
    await fake.wait_for(lambda: fake.threads_of(world.channel_id), timeout=10)
    thread_id = fake.threads_of(world.channel_id)[-1]["id"]
    return sent, thread_id


async def first_result(fake: FakeDiscord, world: World, prompt: str = "a tea pot") -> tuple[str, dict]:
    """A session started with /imagine, once its first image is posted: the thread id and that result message."""
    _, thread_id = await start_session(fake, world, prompt)
    [result] = await wait_images(fake, thread_id, 1)
    return thread_id, result


async def test_imagine_then_two_users_continue_in_the_thread(
    discord_bot: DiscordBot, fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, world: World
) -> None:
    fake = fake_discord_raw
    sent, thread_id = await start_session(fake, world, "a banana submarine")

    assert sent.ack_elapsed is not None and sent.ack_elapsed < 3.0  # deferred within Discord's window
    [first] = await wait_images(fake, thread_id, 1)
    attachment = first["attachments"][0]
    assert Image.open(io.BytesIO(attachment["data"])).format == "PNG"
    assert set(custom_ids(first)) == {"retry", "undo", "upscale_2k", "upscale_4k", "variations"}
    assert "a banana submarine" in first["content"]
    edit = fake_gemini.requests[0].body["contents"][0]["parts"]
    assert any("inlineData" in p for p in edit)  # the attachment reached the model

    await fake.send_message(thread_id, world.bob, "make it yellow")
    await fake.send_message(thread_id, world.alice, "add a periscope")
    await wait_images(fake, thread_id, 3)

    prompts = [r.body["contents"][-1]["parts"][-1]["text"] for r in fake_gemini.requests]
    assert prompts == ["a banana submarine", "make it yellow", "add a periscope"]
    assert [len(r.body["contents"]) for r in fake_gemini.requests] == [1, 3, 5]
    assert sum("thoughtSignature" in p for c in fake_gemini.requests[2].body["contents"] for p in c["parts"]) >= 4
    assert await discord_bot.credits(world.alice) == 2 and await discord_bot.credits(world.bob) == 1
    assert not fake.unexpected_calls and not fake.errors


async def test_buttons_work_also_after_a_restart(
    discord_bot: DiscordBot, fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, world: World
) -> None:
    fake = fake_discord_raw
    _, thread_id = await start_session(fake, world, "a paper boat")
    await wait_images(fake, thread_id, 1)
    await fake.send_message(thread_id, world.alice, "two boats")
    [_, second] = await wait_images(fake, thread_id, 2)
    buttons = custom_ids(second)

    click = await fake.send_button_click(world.guild_id, thread_id, second["id"], world.alice, buttons["retry"])
    await wait_images(fake, thread_id, 3)
    assert click.ack_elapsed is not None and click.ack_elapsed < 3.0
    assert fake_gemini.requests[2].body["contents"] == fake_gemini.requests[1].body["contents"]

    await discord_bot.restart()
    await fake.send_button_click(world.guild_id, thread_id, second["id"], world.alice, buttons["undo"])
    await wait_images(fake, thread_id, 4)
    await fake.send_button_click(world.guild_id, thread_id, second["id"], world.alice, buttons["upscale_4k"])
    final = await wait_images(fake, thread_id, 5)
    big = Image.open(io.BytesIO(final[-1]["attachments"][0]["data"]))
    assert big.size == FLASH_31.dimensions("4K", "3:2")  # the session took the 300×200 reference's shape
    assert await discord_bot.credits(world.alice) == 1 + 1 + 1 + 4


async def test_out_of_credits_is_a_private_refusal_and_nothing_reaches_the_model(
    make_discord_bot, fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, world: World
) -> None:
    await make_discord_bot(user_daily_credits=0)
    fake = fake_discord_raw
    sent = await fake.send_slash_command(world.guild_id, world.channel_id, world.alice, "imagine", {"prompt": "a cat"})
    await fake.wait_for(lambda: any("credits today" in t for t in private_texts(fake, sent.id)), timeout=10)

    [text] = [t for t in private_texts(fake, sent.id) if "credits today" in t]
    assert "resets" in text and "UTC" in text
    assert fake_gemini.requests == [] and fake.threads_of(world.channel_id) == []
    assert sent.callback_type == 5 and sent.payload is not None  # deferred ephemerally (flag 64)


async def test_failures_each_get_their_own_message_and_a_refund(
    discord_bot: DiscordBot, fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, world: World
) -> None:
    fake = fake_discord_raw
    _, thread_id = await start_session(fake, world, "a tea pot")
    await wait_images(fake, thread_id, 1)

    cases = [
        ("[fault:image_safety] make it scary", "safety filter"),
        ("[fault:text_only] describe it", "without an image"),
    ]
    for prompt, words in cases:
        await fake.send_message(thread_id, world.alice, prompt)
        await fake.wait_for(lambda w=words: any(w in m["content"] for m in fake.messages_in(thread_id)), timeout=10)
    fake_gemini.enqueue(Fault.RATE_LIMIT, times=10, retry_delay="0.01s")
    await fake.send_message(thread_id, world.alice, "again")
    await fake.wait_for(lambda: any("rate-limiting" in m["content"] for m in fake.messages_in(thread_id)), timeout=10)

    assert await discord_bot.credits(world.alice) == 1  # only the first image
    assert len(images_in(fake, thread_id)) == 1


async def test_an_output_over_10_mib_is_reencoded_and_posted(
    discord_bot: DiscordBot, fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, world: World
) -> None:
    fake = fake_discord_raw
    fake_gemini.noise = True  # a 2K noise PNG is about 12 MiB
    sent = await fake.send_slash_command(
        world.guild_id, world.channel_id, world.alice, "imagine", {"prompt": "static", "resolution": "2K"}
    )
    await fake.wait_for(lambda: fake.threads_of(world.channel_id), timeout=10)
    thread_id = fake.threads_of(world.channel_id)[-1]["id"]
    [posted] = await wait_images(fake, thread_id, 1, timeout=40)

    attachment = posted["attachments"][0]
    assert len(attachment["data"]) <= 10 * MiB and attachment["filename"].endswith(".jpg")
    assert "Re-encoded as JPEG" in posted["content"]
    assert sent.ack_elapsed is not None and sent.ack_elapsed < 3.0


async def test_non_images_are_refused_and_unrelated_channels_ignored(
    discord_bot: DiscordBot, fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, world: World
) -> None:
    fake = fake_discord_raw
    await fake.send_message(world.other_channel_id, world.alice, "a cat please")
    sent = await fake.send_slash_command(
        world.guild_id,
        world.channel_id,
        world.alice,
        "imagine",
        {"prompt": "use this"},
        attachments=[("notes.pdf", "application/pdf", b"%PDF-1.7 not an image")],
    )
    await fake.wait_for(lambda: any("isn't an image" in t for t in private_texts(fake, sent.id)), timeout=10)
    await asyncio.sleep(0.3)

    assert fake_gemini.requests == []
    assert [m for m in fake.messages_in(world.other_channel_id) if m["author"]["id"] == fake.bot_id] == []
    assert await discord_bot.credits(world.alice) == 0


async def test_quota_and_admin_commands(
    make_discord_bot, fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, world: World
) -> None:
    fake = fake_discord_raw
    bot = await make_discord_bot(admins=f"discord:{world.bob}")
    admin_group = next(c for c in fake.commands(world.guild_id) if c["name"] == "bananabot-admin")
    assert admin_group["default_member_permissions"] == str(1 << 5)  # Manage Server sees it by default

    quota = await fake.send_slash_command(world.guild_id, world.channel_id, world.alice, "quota")
    await fake.wait_for(lambda: any("credits left" in t for t in private_texts(fake, quota.id)), timeout=10)

    denied = await fake.send_slash_command(
        world.guild_id,
        world.channel_id,
        world.alice,
        "bananabot-admin",
        {"grant": {"user": world.alice, "credits": 5}},
    )
    await fake.wait_for(lambda: any("Only bot admins" in t for t in private_texts(fake, denied.id)), timeout=10)
    granted = await fake.send_slash_command(
        world.guild_id, world.channel_id, world.bob, "bananabot-admin", {"grant": {"user": world.alice, "credits": 5}}
    )
    await fake.wait_for(lambda: any("Granted 5" in t for t in private_texts(fake, granted.id)), timeout=10)
    assert bot.services is not None
    assert await bot.services.store.granted(f"discord:{world.alice}", now=bot.services.now()) == (5, 5)


async def test_a_sharded_replica_serves_its_shards(
    make_discord_bot, fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, world: World
) -> None:
    fake = fake_discord_raw
    await make_discord_bot(discord_shard_count=1, discord_shard_ids="0")
    identify = fake.gateway.identifies[-1]
    assert identify.get("shard") == [0, 1]
    _, thread_id = await start_session(fake, world, "a sharded banana")
    [posted] = await wait_images(fake, thread_id, 1)
    assert "a sharded banana" in posted["content"]


async def test_a_simple_command_runs_while_its_defer_is_on_the_way_and_edits_after_it(
    make_discord_bot, fake_discord_raw: FakeDiscord, fake_gemini: FakeGemini, world: World
) -> None:
    # /quota's store read no longer waits for the defer's round trip; its answer still must (an edit of
    # @original before the callback landed is refused by Discord). A 429 holds the defer back for 0.3 s.
    fake = fake_discord_raw
    await make_discord_bot()
    fake.rate_limit_next("/interactions/", method="POST", retry_after=0.3)
    quota = await fake.send_slash_command(world.guild_id, world.channel_id, world.alice, "quota")
    await fake.wait_for(lambda: any("credits left" in t for t in private_texts(fake, quota.id)), timeout=10)
    callback, *edits = fake.interaction_responses(quota.id)
    assert callback.kind == "callback" and callback.status is not None and callback.status < 300
    assert callback.elapsed >= 0.3  # held back by the 429, retried by discord.py
    assert edits and all(e.kind == "edit" and e.status == 200 for e in edits)
    assert not fake.unexpected_calls
