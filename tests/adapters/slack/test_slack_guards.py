"""Slack cases users meet that the happy path misses: /imagine where the bot isn't a member, buttons in a DM, a
thread reply also sent to the channel. The real bolt app against the fakes, in both modes."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from adapters.slack import ADAPTER
from adapters.slack.app import OOPS
from bot.adapter import TokenRefused
from bot.dispatcher import STOPPED
from tests.adapters import refusal_at_start
from tests.adapters.slack.test_slack_e2e import ALICE_KEY, credits, idle, uploads
from tests.core.conftest import make_settings
from tests.fakes.gemini import FakeGemini
from tests.fakes.slack import CHANNEL, HUMAN, FakeSlack

NOT_JOINED, DM = "C0NOTJOINED", "D0HUMAN"


async def test_imagine_where_the_bot_is_not_a_member_is_acknowledged_and_says_how_to_invite_it(
    make_slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini
) -> None:
    fake_slack.add_channel(NOT_JOINED, "design", is_member=False)
    bot = await make_slack_bot()
    answer = await bot.deliver(fake_slack.slash_command("/imagine", "a fox", HUMAN, NOT_JOINED))
    # Answered in time, not a failed command (bolt answers HTTP 404, or no socket ack, when a listener raises).
    assert answer.status == 200 if bot.mode == "http" else answer.elapsed < 3
    posted = await fake_slack.wait_until(fake_slack.response_posts, timeout=10)
    assert [p.body for p in posted] == [
        {
            "text": f"I'm not in this channel yet: invite me with `/invite` <@{fake_slack.bot_user_id}>, then try "
            "again. Nothing was charged.",
            "response_type": "ephemeral",
        }
    ]
    await idle(bot)
    assert fake_slack.history(NOT_JOINED) == [] and fake_gemini.requests == []
    assert await credits(bot, ALICE_KEY) == 0


async def test_the_buttons_of_a_dm_session_act_on_it(make_slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini):
    fake_slack.add_channel(DM, "alice-dm")
    bot = await make_slack_bot()
    await bot.deliver(fake_slack.message(HUMAN, DM, "a red kite"))  # a top-level DM message starts the session
    [first] = await uploads(fake_slack, 1)
    assert first.channel_id == DM and first.thread_ts is None
    await idle(bot)
    [buttons] = [m for m in fake_slack.history(DM) if any(b.get("type") == "actions" for b in m.get("blocks") or ())]
    ids = [e["action_id"] for b in buttons["blocks"] if b["type"] == "actions" for e in b["elements"]]
    retry = next(i for i in ids if i.startswith("bb:retry:"))
    await bot.deliver(fake_slack.block_actions(HUMAN, DM, buttons["ts"], None, retry, retry.split(":")[2]))
    [_, again] = await uploads(fake_slack, 2)
    assert again.channel_id == DM and again.thread_ts is None  # the result lands where the session is
    assert [r.body["contents"][-1]["parts"][-1]["text"] for r in fake_gemini.requests] == ["a red kite"] * 2
    assert not [m["text"] for m in fake_slack.ephemerals(HUMAN)]
    await idle(bot)
    assert await credits(bot, ALICE_KEY) == 2


async def test_a_thread_reply_also_sent_to_the_channel_continues_the_session(
    make_slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini
) -> None:
    bot = await make_slack_bot()
    mention = fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> a banana boat")
    root = mention["event"]["ts"]
    await bot.deliver(mention)
    await uploads(fake_slack, 1)
    await idle(bot)
    await bot.deliver(fake_slack.message(HUMAN, CHANNEL, "make it blue", thread_ts=root, subtype="thread_broadcast"))
    [_, edited] = await uploads(fake_slack, 2)
    assert edited.thread_ts == root
    assert fake_gemini.requests[-1].body["contents"][-1]["parts"][-1]["text"] == "make it blue"


async def test_a_command_that_fails_after_its_ack_stays_acknowledged_and_tells_the_user(
    make_slack_bot, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await make_slack_bot()
    await bot.services.store.close()  # every store call now raises: nothing in the command expects that
    answer = await bot.deliver(fake_slack.slash_command("/imagine", "a fox", HUMAN, CHANNEL))
    assert answer.status == 200 if bot.mode == "http" else answer.elapsed < 3
    posted = await fake_slack.wait_until(fake_slack.response_posts, timeout=10)
    assert [p.body for p in posted] == [{"text": OOPS, "response_type": "ephemeral"}]
    assert "on_imagine failed" in caplog.text and "Traceback" in caplog.text


@pytest.mark.parametrize("failure", ["answered", "hung up"])
async def test_an_image_posted_without_its_buttons_is_still_delivered_and_charged(
    make_slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    bot = await make_slack_bot()
    if failure == "answered":  # the buttons message after the upload (and the progress messages) fail
        fake_slack.fail_next("chat.postMessage", "ratelimited", times=10)
    else:
        fake_slack.hang_up_next("chat.postMessage", times=10)
    await bot.deliver(fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> a banana boat"))
    await uploads(fake_slack, 1)
    await idle(bot)
    assert await credits(bot, ALICE_KEY) == 1  # the user got the image: it is paid for, not refunded
    assert not [m["text"] for m in fake_slack.ephemerals(HUMAN) if "couldn't" in m["text"]]
    why = "ratelimited" if failure == "answered" else "Error"  # aiohttp's own, for a connection that closed
    assert "buttons of a posted image were not posted: " in caplog.text and why in caplog.text


@pytest.mark.parametrize(
    ("variable", "values"),
    [
        ("SLACK_BOT_TOKEN", {"slack_bot_token": "xoxb-1-not-the-real-one", "slack_signing_secret": "s"}),
        ("SLACK_APP_TOKEN", {"slack_app_token": "xapp-1-A0APP-1-not-the-real-one"}),
    ],
)
async def test_a_token_slack_refuses_stops_the_adapter_naming_its_variable(
    fake_slack: FakeSlack, fake_gemini: FakeGemini, tmp_path: Path, variable: str, values: dict[str, str]
) -> None:
    settings = make_settings(
        fake_gemini,
        tmp_path,
        **{"slack_bot_token": fake_slack.bot_token, "slack_api_url": fake_slack.api_url, **values},
    )
    refused = await refusal_at_start(ADAPTER, settings, TokenRefused)
    assert str(refused).startswith(f"Slack refused {variable} (invalid_auth): it should be ")
    assert "not-the-real-one" not in str(refused)
    assert fake_slack.socket_connects == 0


async def test_the_bot_token_from_the_environment_raises_no_warning_that_it_is_unused(
    make_slack_bot, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Operators set SLACK_BOT_TOKEN; bolt reads it too and warned it "will be unused" beside our client (which uses it).
    monkeypatch.setenv("SLACK_BOT_TOKEN", fake_slack.bot_token)
    caplog.set_level(logging.WARNING)
    bot = await make_slack_bot()
    await bot.deliver(fake_slack.slash_command("/imagine", "a fox", HUMAN, CHANNEL))
    await uploads(fake_slack, 1)  # the bot still posts with its token
    assert [r.getMessage() for r in caplog.records if r.name.startswith("slack_bolt")] == []


@pytest.mark.parametrize("mode", ["socket"])
async def test_healthz_says_503_while_the_socket_is_down_and_200_once_it_is_back(
    make_slack_bot, fake_slack: FakeSlack
) -> None:
    bot = await make_slack_bot()
    assert (await bot.services.web.health())[0]
    fake_slack.fail_next("apps.connections.open", "internal_error", times=10_000)  # no new socket for now
    await fake_slack.drop_socket()

    async def healthy() -> bool:
        return (await bot.services.web.health())[0]

    await wait_for_health(healthy, want=False)
    assert (await bot.services.web.health())[1]["adapters"]["slack"] == "disconnected"
    connects = fake_slack.socket_connects
    fake_slack.heal("apps.connections.open")
    await fake_slack.wait_socket(timeout=30, more_than=connects)
    await wait_for_health(healthy, want=True)


async def wait_for_health(healthy, *, want: bool, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while await healthy() != want:
        assert asyncio.get_running_loop().time() < deadline, f"/healthz never became {'ok' if want else '503'}"
        await asyncio.sleep(0.2)


async def test_a_stop_drains_for_the_configured_grace_and_tells_the_user(
    make_slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini
) -> None:
    bot = await make_slack_bot(shutdown_grace_seconds=0.5)
    fake_gemini.latency = 60
    await bot.deliver(fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> a slow fox"))
    await fake_slack.wait_until(lambda: fake_gemini.requests, timeout=10)

    started = asyncio.get_running_loop().time()
    await bot.stop()  # what SIGTERM does: the adapter stops and drains, then the services close
    assert asyncio.get_running_loop().time() - started < 8  # 0.5 s of grace, not the 30 s it used to be

    assert [m["text"] for m in fake_slack.ephemerals(HUMAN)] == [STOPPED]
    await bot.start()  # the database is kept: nothing is left held
    assert await credits(bot, ALICE_KEY) == 0 and await bot.services.store.held_owners() == []
