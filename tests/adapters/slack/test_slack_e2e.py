"""bananabot on Slack, end to end: the real bolt app against the fake Slack and the fake Gemini, both modes."""

from __future__ import annotations

import asyncio
import io
import os

import pytest
from PIL import Image

from adapters.slack import handover
from bot.catalog import FLASH_31
from tests.core.conftest import png_bytes
from tests.fakes.gemini import FakeGemini, Fault
from tests.fakes.proxy import ForwardProxy
from tests.fakes.slack import CHANNEL, HUMAN, OTHER_HUMAN, FakeSlack

ALICE_KEY, BOB_KEY = f"slack:{HUMAN}", f"slack:{OTHER_HUMAN}"


async def uploads(fake: FakeSlack, count: int, timeout: float = 20.0) -> list:
    return await fake.wait_until(lambda: fake.uploads() if len(fake.uploads()) >= count else None, timeout=timeout)


async def ephemeral(fake: FakeSlack, user: str, words: str, timeout: float = 20.0) -> dict:
    def found():
        return next((m for m in fake.ephemerals(user) if words in m.get("text", "")), None)

    return await fake.wait_until(found, timeout=timeout)


def button_messages(fake: FakeSlack, thread_ts: str) -> list[dict]:
    return [
        m for m in fake.thread(CHANNEL, thread_ts) if any(b.get("type") == "actions" for b in m.get("blocks") or ())
    ]


async def action_ids(fake: FakeSlack, thread_ts: str, count: int) -> dict[str, tuple[str, str]]:
    """action name -> (action_id, message ts) on the `count`-th button message of the thread (waits for it)."""
    await fake.wait_until(lambda: len(button_messages(fake, thread_ts)) >= count, timeout=20)
    found: dict[str, tuple[str, str]] = {}
    for message in button_messages(fake, thread_ts)[count - 1 : count]:
        for block in message.get("blocks") or ():
            for element in block.get("elements") or ():
                action_id = element.get("action_id", "")
                if action_id.startswith("bb:"):
                    found[action_id.split(":")[1]] = (action_id, message["ts"])
    return found


async def idle(bot, quiet: float = 0.6) -> None:
    """Wait until no turn is queued or running for `quiet` seconds (listeners start after the ack)."""
    calm_since = None
    loop = asyncio.get_running_loop()
    while True:
        busy = bot.services.queue.depth() or bot.services.in_flight
        now = loop.time()
        if busy:
            calm_since = None
        elif calm_since is None:
            calm_since = now
        elif now - calm_since >= quiet:
            return
        await asyncio.sleep(0.05)


async def credits(bot, user_key: str) -> int:
    return (await bot.services.store.usage(user_key, now=bot.services.now())).day_credits


def signatures_in(body: dict) -> int:
    return sum(1 for c in body["contents"] if c["role"] == "model" for p in c["parts"] if "thoughtSignature" in p)


async def test_mention_with_an_image_then_two_users_continue_in_the_thread(
    slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini, mode: str
) -> None:
    reference = fake_slack.add_file("ref.png", "image/png", png_bytes(320, 200))
    mention = fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> a banana boat", files=[reference])
    root = mention["event"]["ts"]

    answer = await slack_bot.deliver(mention)
    assert answer.elapsed < 3.0  # acked within Slack's window
    [first] = await uploads(fake_slack, 1)
    assert first.channel_id == CHANNEL and first.thread_ts == root
    assert Image.open(io.BytesIO(first.data)).format == "PNG"
    assert "a banana boat" in (first.initial_comment or "")
    downloads = [c for c in fake_slack.calls if "/files-pri/" in c.path]
    assert downloads and all(c.token == fake_slack.bot_token for c in downloads)

    await slack_bot.deliver(fake_slack.message(OTHER_HUMAN, CHANNEL, "make it blue", thread_ts=root))
    await slack_bot.deliver(fake_slack.message(HUMAN, CHANNEL, "add a flag", thread_ts=root))
    await uploads(fake_slack, 3)

    prompts = [r.body["contents"][-1]["parts"][-1]["text"] for r in fake_gemini.requests]
    assert prompts == ["a banana boat", "make it blue", "add a flag"]
    assert [len(r.body["contents"]) for r in fake_gemini.requests] == [1, 3, 5]
    assert signatures_in(fake_gemini.requests[2].body) >= 4
    assert all(r.status == 200 for r in fake_gemini.requests)
    assert await credits(slack_bot, ALICE_KEY) == 2 and await credits(slack_bot, BOB_KEY) == 1
    reactions = fake_slack.reactions(CHANNEL, root)
    assert HUMAN not in reactions.get("eyes", []) and "white_check_mark" in reactions


async def test_web_api_calls_and_downloads_reuse_their_connections(
    slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini
) -> None:
    # slack_sdk opens a connection per call unless given a session: ~6 per turn, a CPU cost at 200 turns at once.
    files = [fake_slack.add_file(f"ref{i}.png", "image/png", png_bytes(64, 64)) for i in range(2)]
    mention = fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> two refs", files=files)
    await slack_bot.deliver(mention)
    await uploads(fake_slack, 1)
    await idle(slack_bot)
    web_api = [c for c in fake_slack.calls if c.path.startswith("/api/") and c.method != "apps.connections.open"]
    downloads = [c for c in fake_slack.calls if "/files-pri/" in c.path]
    assert len(web_api) >= 5 and len(downloads) == 2
    assert len({c.peer for c in web_api}) <= len(web_api) // 2
    assert len({c.peer for c in downloads}) == 1


async def test_a_redelivered_event_runs_once(slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini) -> None:
    mention = fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> a lighthouse")
    await slack_bot.deliver(mention)
    await slack_bot.deliver(mention, retry_num=1, retry_reason="http_timeout")
    await slack_bot.deliver(mention, retry_num=2, retry_reason="http_timeout")
    await uploads(fake_slack, 1)
    await idle(slack_bot)

    assert len(fake_gemini.requests) == 1
    assert len(fake_slack.uploads()) == 1
    assert await credits(slack_bot, ALICE_KEY) == 1


async def test_buttons_work_also_after_a_restart(slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini) -> None:
    mention = fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> a red kite")
    root = mention["event"]["ts"]
    await slack_bot.deliver(mention)
    await uploads(fake_slack, 1)
    await slack_bot.deliver(fake_slack.message(HUMAN, CHANNEL, "two kites", thread_ts=root))
    await uploads(fake_slack, 2)
    buttons = await action_ids(fake_slack, root, 2)
    assert set(buttons) == {"retry", "undo", "upscale_2k", "upscale_4k", "variations"}

    async def click(name: str) -> None:
        action_id, message_ts = buttons[name]
        turn = action_id.split(":")[2]
        await slack_bot.deliver(fake_slack.block_actions(HUMAN, CHANNEL, message_ts, root, action_id, turn))

    await click("retry")
    retried = await uploads(fake_slack, 3)
    assert fake_gemini.requests[2].body["contents"] == fake_gemini.requests[1].body["contents"]

    await slack_bot.restart()
    await click("undo")
    await uploads(fake_slack, 4)
    assert retried[2].data != b""
    await click("upscale_4k")
    final = await uploads(fake_slack, 5)
    assert Image.open(io.BytesIO(final[4].data)).size == FLASH_31.dimensions("4K", "1:1")
    undone_session = await slack_bot.services.store.active_session(f"slack:T0TEAM:{CHANNEL}:{root}")
    assert undone_session is not None
    # credits: kite 1 + two kites 1 + retry 1 + upscale 4K 4; undo is free
    assert await credits(slack_bot, ALICE_KEY) == 7


async def test_quota_exhausted_is_refused_privately_with_the_reset_time(
    make_slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini
) -> None:
    bot = await make_slack_bot(user_daily_credits=1)
    first = fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> a cup")
    await bot.deliver(first)
    await uploads(fake_slack, 1)
    await bot.deliver(fake_slack.message(HUMAN, CHANNEL, "a saucer too", thread_ts=first["event"]["ts"]))

    refusal = await ephemeral(fake_slack, HUMAN, "credits today")
    assert "resets" in refusal["text"] and "UTC" in refusal["text"]
    assert len(fake_gemini.requests) == 1


async def test_failures_each_say_what_happened_and_refund(
    slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini
) -> None:
    cases = [
        ("[fault:image_safety] a cat", "safety filter"),
        ("[fault:text_only] a cat", "without an image"),
        ("[fault:rate_limit_daily] a cat", "quota is used up"),
    ]
    for prompt, words in cases:
        await slack_bot.deliver(fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> {prompt}"))
        message = await ephemeral(fake_slack, HUMAN, words)
        assert "charged" in message["text"]
    fake_gemini.enqueue(Fault.RATE_LIMIT, times=10, retry_delay="0.01s")
    await slack_bot.deliver(fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> a dog"))
    await ephemeral(fake_slack, HUMAN, "rate-limiting")
    assert fake_slack.uploads() == []
    assert await credits(slack_bot, ALICE_KEY) == 0


async def test_slash_command_opens_a_root_message_and_runs_in_its_thread(
    slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini
) -> None:
    answer = await slack_bot.deliver(fake_slack.slash_command("/imagine", "a fox --ar 16:9", HUMAN, CHANNEL))
    assert answer.elapsed < 3.0
    [upload] = await uploads(fake_slack, 1)

    root = next(m for m in fake_slack.history(CHANNEL) if "started an image session" in m.get("text", ""))
    assert upload.thread_ts == root["ts"]
    assert Image.open(io.BytesIO(upload.data)).size == FLASH_31.dimensions("1K", "16:9")
    assert fake_gemini.requests[0].body["generationConfig"]["imageConfig"]["aspectRatio"] == "16:9"


async def test_a_file_on_a_foreign_host_is_never_fetched_with_the_token(
    slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini
) -> None:
    foreign = fake_slack.foreign_file("evil.png", "image/png", png_bytes())
    await slack_bot.deliver(
        fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> use this", files=[foreign])
    )
    refusal = await ephemeral(fake_slack, HUMAN, "evil.png")
    assert "only fetch files Slack hosts" in refusal["text"]
    assert all(not call.has_authorization for call in fake_slack.foreign_calls)
    assert fake_gemini.requests == []


async def test_a_redirect_from_the_file_host_is_not_followed_with_the_token(
    slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini
) -> None:
    elsewhere = fake_slack.foreign_url("moved.png", png_bytes())
    moved = fake_slack.add_file("moved.png", "image/png", png_bytes(), redirect_to=elsewhere)
    await slack_bot.deliver(
        fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> use this", files=[moved])
    )
    refusal = await ephemeral(fake_slack, HUMAN, "moved.png")
    assert "files:read" in refusal["text"]
    downloads = [c for c in fake_slack.calls if "/files-pri/" in c.path]
    assert len(downloads) == 1 and downloads[0].token == fake_slack.bot_token
    assert fake_slack.foreign_calls == []  # the 302 was not followed, with the token or without
    assert fake_gemini.requests == [] and await credits(slack_bot, ALICE_KEY) == 0


async def test_downloads_go_through_the_environments_proxy_and_never_read_netrc(
    make_slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini, tmp_path, no_proxies: pytest.MonkeyPatch
) -> None:
    # A netrc entry for the file host once made aiohttp refuse every download (bearer token and netrc auth together).
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password elsewhere\n")
    netrc.chmod(0o600)
    no_proxies.setenv("NETRC", str(netrc))
    async with ForwardProxy() as proxy:
        no_proxies.setenv("HTTP_PROXY", proxy.url())
        bot = await make_slack_bot()
        reference = fake_slack.add_file("ref.png", "image/png", png_bytes(96, 64))
        await bot.deliver(
            fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> via the proxy", files=[reference])
        )
        [upload] = await uploads(fake_slack, 1)
        await bot.stop()
    assert "via the proxy" in (upload.initial_comment or "")
    [download] = [c for c in fake_slack.calls if "/files-pri/" in c.path]
    assert download.token == fake_slack.bot_token
    assert any("/files-pri/" in r.target and r.method == "GET" for r in proxy.requests)
    assert len(fake_gemini.requests) == 1 and fake_gemini.requests[0].status == 200


async def test_a_file_larger_than_slack_declared_is_refused_and_costs_nothing(
    make_slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini
) -> None:
    bot = await make_slack_bot(max_attachment_bytes=2000)
    big = fake_slack.add_file("big.png", "image/png", png_bytes(64, 64) + os.urandom(5000))
    big["size"] = 500  # the event under-declares it: the check before download lets it through
    await bot.deliver(fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> use this", files=[big]))
    refusal = await ephemeral(fake_slack, HUMAN, "big.png")
    assert "limit" in refusal["text"]
    assert len([c for c in fake_slack.calls if "/files-pri/" in c.path]) == 1
    assert fake_gemini.requests == [] and await credits(bot, ALICE_KEY) == 0


async def test_ignored_messages(slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini) -> None:
    await slack_bot.deliver(fake_slack.message(HUMAN, CHANNEL, "a top-level chat message"))
    await slack_bot.deliver(fake_slack.message(HUMAN, CHANNEL, "a reply in some thread", thread_ts="1.000001"))
    await slack_bot.deliver(fake_slack.message(HUMAN, CHANNEL, "bot talk", bot_id="B0OTHER"))
    await idle(slack_bot)
    assert fake_gemini.requests == [] and fake_slack.uploads() == []


@pytest.mark.parametrize("mode", ["http"])  # signatures exist only in HTTP mode
async def test_http_mode_refuses_a_bad_signature(
    make_slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini, mode: str
) -> None:
    bot = await make_slack_bot()
    mention = fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> a cat")
    bad = await bot.deliver(mention, bad_signature=True)
    stale = await bot.deliver(mention, timestamp=1_000_000)
    garbage = await bot.deliver(mention, timestamp="soon")
    assert (bad.status, stale.status, garbage.status) == (401, 401, 401)
    await idle(bot)
    assert fake_gemini.requests == []


async def test_an_event_is_answered_before_bolt_works_on_it(
    make_slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini, mode: str
) -> None:
    # Bolt asks auth.test on its first request, in its middleware. A slow Slack there (or a busy loop) must not
    # hold the answer: past 3 s Slack redelivers the event.
    bot = await make_slack_bot()
    fake_slack.delay_next("auth.test", 3.5)
    answer = await bot.deliver(fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> a slow start"))
    if mode == "http":
        assert (answer.status, answer.body) == (200, "")
    else:
        assert answer.payload is None
    assert answer.elapsed < 1.0
    [upload] = await uploads(fake_slack, 1)
    assert "a slow start" in (upload.initial_comment or "")
    assert await credits(bot, ALICE_KEY) == 1


async def test_an_answered_event_is_handed_to_bolt_again_when_bolt_fails(
    make_slack_bot, fake_slack: FakeSlack, fake_gemini: FakeGemini, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # The answer went out before bolt's auth.test met a network error (bolt: HTTP 500), so Slack won't redeliver.
    monkeypatch.setattr(handover, "RETRY_DELAYS", (0.2, 0.2))
    bot = await make_slack_bot()
    fake_slack.hang_up_next("auth.test", times=2)  # slack_sdk retries a dropped connection once by itself
    await bot.deliver(fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> try again"))
    [upload] = await uploads(fake_slack, 1)
    assert "try again" in (upload.initial_comment or "")
    assert len(fake_slack.calls_to("auth.test")) >= 2
    assert await credits(bot, ALICE_KEY) == 1


async def test_an_event_bolt_keeps_failing_is_logged_as_dropped(
    make_slack_bot,
    fake_slack: FakeSlack,
    fake_gemini: FakeGemini,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    monkeypatch.setattr(handover, "RETRY_DELAYS", (0.1,))
    bot = await make_slack_bot()
    fake_slack.hang_up_next("auth.test", times=10)
    await bot.deliver(fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> never"))
    for _ in range(100):
        if any("dropped" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.05)
    dropped = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == 1 and dropped[0].levelname == "ERROR"
    assert fake_gemini.requests == [] and fake_slack.uploads() == []
    assert fake_slack.bot_token not in caplog.text


@pytest.mark.parametrize("mode", ["http"])
async def test_http_mode_still_answers_what_carries_a_body(make_slack_bot, fake_slack: FakeSlack, mode: str) -> None:
    bot = await make_slack_bot()
    challenge = await bot.deliver(fake_slack.url_verification("c-42"))
    assert challenge.status == 200 and challenge.json() == {"challenge": "c-42"}
    broken = await fake_slack.deliver_http(bot.events_url, "{")  # signed, but not JSON
    assert broken.status >= 400


async def test_app_home_shows_quota_and_recent_sessions(slack_bot, fake_slack: FakeSlack) -> None:
    await slack_bot.deliver(fake_slack.app_mention(HUMAN, CHANNEL, f"<@{fake_slack.bot_user_id}> a moon"))
    await uploads(fake_slack, 1)
    await idle(slack_bot)
    await slack_bot.deliver(fake_slack.app_home_opened(HUMAN))
    view = await fake_slack.wait_until(lambda: fake_slack.home_view(HUMAN), timeout=10)

    text = str(view)
    assert "Today: 49 of 50 credits left" in text
    assert f"<#{CHANNEL}>" in text and "active" in text


async def test_admin_command_only_for_configured_admins(make_slack_bot, fake_slack: FakeSlack) -> None:
    bot = await make_slack_bot(admins=f"slack:{OTHER_HUMAN}")
    await bot.deliver(fake_slack.slash_command("/bananabot-admin", f"grant <@{HUMAN}|alice> 5", HUMAN, CHANNEL))
    await ephemeral(fake_slack, HUMAN, "Only bot admins")
    await bot.deliver(fake_slack.slash_command("/bananabot-admin", f"grant <@{HUMAN}|alice> 5", OTHER_HUMAN, CHANNEL))
    await ephemeral(fake_slack, OTHER_HUMAN, "Granted 5 extra credits to slack:")
    assert await bot.services.store.granted(ALICE_KEY, now=bot.services.now()) == (5, 5)
