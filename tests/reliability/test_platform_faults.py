"""The platform misbehaves mid-turn: rate limits, a dropped gateway or socket, a refused upload."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.gemini import FakeGemini
from tests.fakes.slack import HUMAN, FakeSlack
from tests.reliability.drivers import SETTINGS, DiscordDriver, SlackDriver


async def credits(driver) -> int:
    return (await driver.services.store.usage(driver.user_key, now=driver.services.now())).day_credits


async def test_discord_429_while_posting_is_waited_out(make_discord_bot, fake_discord_raw, world, fake_gemini) -> None:
    driver = DiscordDriver(await make_discord_bot(**SETTINGS), fake_discord_raw, world)
    await driver.first_image("a harbour")
    fake_discord_raw.rate_limit_next(f"/channels/{driver.thread}/messages", retry_after=0.3, times=2)
    await driver.turn("add boats")
    assert driver.images() == 2 and await credits(driver) == 2
    assert any(call.status == 429 for call in fake_discord_raw.calls)


async def test_discord_gateway_lost_mid_turn(
    make_discord_bot, fake_discord_raw, world, fake_gemini: FakeGemini
) -> None:
    driver = DiscordDriver(await make_discord_bot(**SETTINGS), fake_discord_raw, world)
    await driver.first_image("a windmill")
    fake_gemini.latency = 1.0
    turn = asyncio.create_task(driver.turn("add sails"))
    while len(fake_gemini.requests) < 2:
        await asyncio.sleep(0.02)
    await fake_discord_raw.drop_gateway()  # the model is still working; the bot reconnects meanwhile
    await turn
    assert driver.images() == 2 and await credits(driver) == 2
    await fake_discord_raw.wait_for(lambda: len(fake_discord_raw.gateway.resumes) >= 1, timeout=10)


@pytest.fixture
def mode() -> str:
    return "socket"


async def test_slack_socket_lost_mid_turn(make_slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini) -> None:
    driver = SlackDriver(await make_slack_bot(**SETTINGS), fake_slack)
    await driver.first_image("a lantern")
    fake_gemini.latency = 1.0
    connects = fake_slack.socket_connects
    turn = asyncio.create_task(driver.turn("light it"))
    while len(fake_gemini.requests) < 2:
        await asyncio.sleep(0.02)
    await fake_slack.drop_socket()
    await turn
    assert driver.images() == 2 and await credits(driver) == 2
    await fake_slack.wait_socket(timeout=10, more_than=connects)  # and it is back for the next event
    await driver.turn("make it green")
    assert driver.images() == 3


async def test_slack_429_on_upload_is_retried(make_slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini) -> None:
    driver = SlackDriver(await make_slack_bot(**SETTINGS), fake_slack)
    await driver.first_image("a kettle")
    fake_slack.rate_limit_next("files.getUploadURLExternal", retry_after=0)
    await driver.turn("make it copper")
    assert driver.images() == 2 and await credits(driver) == 2
    assert any(call.method == "files.getUploadURLExternal" and call.status == 429 for call in fake_slack.calls)


async def test_a_refused_upload_is_refunded_and_said(make_slack_bot, fake_slack: FakeSlack, fake_gemini) -> None:
    driver = SlackDriver(await make_slack_bot(**SETTINGS), fake_slack)
    await driver.first_image("a teacup")
    fake_slack.fail_next("files.getUploadURLExternal", "file_upload_size_restricted")
    await driver.turn("add a saucer")
    assert driver.images() == 1 and await credits(driver) == 1
    assert "couldn't post it here; nothing was charged" in driver.said()
    [session] = await driver.services.store.recent_sessions(driver.user_key, limit=1)
    head = await driver.services.store.get_turn(session.head_turn_id or "")
    assert head is not None and head.prompt == "a teacup"
    assert [m for m in fake_slack.ephemerals(HUMAN) if "couldn't post" in m.get("text", "")]


async def test_a_thread_deleted_mid_turn_costs_nothing(
    make_discord_bot, fake_discord_raw, world, fake_gemini: FakeGemini, caplog
) -> None:
    from tests.reliability.drivers import settle

    driver = DiscordDriver(await make_discord_bot(**SETTINGS), fake_discord_raw, world)
    await driver.first_image("a sandcastle")
    fake_gemini.latency = 1.0
    await fake_discord_raw.send_message(driver.thread, world.alice, "add a moat")
    while len(fake_gemini.requests) < 2:
        await asyncio.sleep(0.02)
    thread = fake_discord_raw.state.channels.pop(driver.thread)  # someone deletes the thread meanwhile
    await fake_discord_raw.hub.emit(
        "THREAD_DELETE", {"id": thread.id, "guild_id": thread.guild_id, "parent_id": thread.parent_id, "type": 11}
    )
    await asyncio.sleep(1.2)
    await settle(driver.services)

    assert await credits(driver) == 1  # the image that could not be posted is not charged
    assert await driver.services.store.held_owners() == [] and driver.services.charges == {}
    [session] = await driver.services.store.recent_sessions(driver.user_key, limit=1)
    head = await driver.services.store.get_turn(session.head_turn_id or "")
    assert head is not None and head.prompt == "a sandcastle"
