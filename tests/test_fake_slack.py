"""The real slack_sdk and slack_bolt against FakeSlack: if each accepts the other, the fake speaks Slack."""

# ruff: noqa: F811  (pytest injects the imported `fake_slack` fixture by parameter name)

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import CHANNEL, HUMAN, FakeSlack
from tests.fakes.slack.fixture import fake_slack  # noqa: F401  (the lead registers it in tests/conftest.py too)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 4


@pytest.fixture
def client(fake_slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake_slack.bot_token, base_url=fake_slack.api_url)


# --- Web API through AsyncWebClient -------------------------------------------------------------------------------


async def test_auth_test_and_token_checks(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    me = await client.auth_test()
    assert (me["user_id"], me["bot_id"], me["team_id"]) == ("U0BOT", "B0BOT", "T0TEAM")
    assert "files:read" in me.headers["x-oauth-scopes"]
    for token, error in [("xoxb-wrong", "invalid_auth"), (fake_slack.app_token, "not_allowed_token_type")]:
        with pytest.raises(SlackApiError) as e:
            await AsyncWebClient(token=token, base_url=fake_slack.api_url).auth_test()
        assert (e.value.response.status_code, e.value.response["error"]) == (200, error)
    with pytest.raises(SlackApiError) as e:
        await AsyncWebClient(base_url=fake_slack.api_url).auth_test()
    assert e.value.response["error"] == "not_authed"
    assert [(c.has_authorization, c.token) for c in fake_slack.calls_to("auth.test")] == [
        (True, fake_slack.bot_token),
        (True, "xoxb-wrong"),
        (True, fake_slack.app_token),
        (False, None),
    ]


async def test_unknown_method_and_missing_scope(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as e:
        await client.api_call("bananas.peel", params={"n": "1"})
    assert e.value.response["error"] == "unknown_method"
    assert fake_slack.calls[-1].method == "bananas.peel" and fake_slack.calls[-1].params == {"n": "1"}
    fake_slack.settings.scopes.discard("reactions:write")
    root = fake_slack.add_message(CHANNEL, "hi")
    with pytest.raises(SlackApiError) as e:
        await client.reactions_add(channel=CHANNEL, timestamp=root["ts"], name="eyes")
    assert (e.value.response["error"], e.value.response["needed"]) == ("missing_scope", "reactions:write")


async def test_post_message_in_thread(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    root = fake_slack.add_message(CHANNEL, "<@U0BOT> a cat")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*done*"}}]
    sent = await client.chat_postMessage(channel=CHANNEL, thread_ts=root["ts"], text="done", blocks=blocks)
    assert sent["channel"] == CHANNEL and float(sent["ts"]) > float(root["ts"])
    assert fake_slack.calls_to("chat.postMessage")[0].headers["content-type"].startswith("application/json")
    thread = fake_slack.thread(CHANNEL, root["ts"])
    assert [m["text"] for m in thread] == ["<@U0BOT> a cat", "done"]
    assert thread[1]["blocks"] == blocks and thread[1]["bot_id"] == "B0BOT"
    assert thread[0]["reply_count"] == 1 and thread[0]["latest_reply"] == sent["ts"]
    replies = await client.conversations_replies(channel=CHANNEL, ts=sent["ts"])
    assert [m["ts"] for m in replies["messages"]] == [root["ts"], sent["ts"]]
    with pytest.raises(SlackApiError) as e:
        await client.chat_postMessage(channel="C0NOPE", text="x")
    assert e.value.response["error"] == "channel_not_found"
    with pytest.raises(SlackApiError) as e:
        await client.chat_postMessage(channel=CHANNEL, text="x" * 40_001)
    assert e.value.response["error"] == "msg_too_long"


async def test_update_delete_ephemeral_and_lookups(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    sent = await client.chat_postMessage(channel="#general", text="working…")
    await client.chat_update(channel=CHANNEL, ts=sent["ts"], text="done")
    assert fake_slack.history(CHANNEL)[-1]["text"] == "done"
    await client.chat_delete(channel=CHANNEL, ts=sent["ts"])
    assert fake_slack.history(CHANNEL) == []
    human = fake_slack.add_message(CHANNEL, "mine")
    with pytest.raises(SlackApiError) as e:
        await client.chat_update(channel=CHANNEL, ts=human["ts"], text="hijack")
    assert e.value.response["error"] == "cant_update_message"
    await client.chat_postEphemeral(channel=CHANNEL, user=HUMAN, text="only you", thread_ts=human["ts"])
    assert [(m["text"], m["thread_ts"]) for m in fake_slack.ephemerals(HUMAN)] == [("only you", human["ts"])]
    assert (await client.users_info(user=HUMAN))["user"]["name"] == "alice"
    assert (await client.conversations_info(channel=CHANNEL))["channel"]["name"] == "general"
    assert (await client.bots_info(bot="B0BOT"))["bot"]["user_id"] == "U0BOT"


async def test_reactions(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    msg = fake_slack.add_message(CHANNEL, "a cat")
    await client.reactions_add(channel=CHANNEL, timestamp=msg["ts"], name="eyes")
    with pytest.raises(SlackApiError) as e:
        await client.reactions_add(channel=CHANNEL, timestamp=msg["ts"], name="eyes")
    assert e.value.response["error"] == "already_reacted"
    await client.reactions_add(channel=CHANNEL, timestamp=msg["ts"], name="white_check_mark")
    await client.reactions_remove(channel=CHANNEL, timestamp=msg["ts"], name="eyes")
    assert fake_slack.reactions(CHANNEL, msg["ts"]) == {"white_check_mark": ["U0BOT"]}


async def test_files_upload_v2_lands_in_the_thread(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    root = fake_slack.add_message(CHANNEL, "a banana")
    result = await client.files_upload_v2(
        channel=CHANNEL, thread_ts=root["ts"], file=PNG, filename="banana.png", title="banana", initial_comment="16:9"
    )
    file_id = result["file"]["id"]
    assert result["files"] == [{"id": file_id, "title": "banana"}]
    (upload,) = fake_slack.uploads()
    assert (upload.data, upload.thread_ts, upload.initial_comment) == (PNG, root["ts"], "16:9")
    posted = next(c for c in fake_slack.calls if c.path.startswith("/upload/v1/"))
    assert posted.body == PNG and posted.host == fake_slack.base_url.removeprefix("http://")
    reply = fake_slack.thread(CHANNEL, root["ts"])[-1]
    assert reply["text"] == "16:9" and [f["id"] for f in reply["files"]] == [file_id]
    info = await client.files_info(file=file_id)
    assert info["file"]["shares"]["public"][CHANNEL][0]["ts"] == reply["ts"]
    assert info["file"]["mimetype"] == "image/png" and info["file"]["size"] == len(PNG)
    fake_slack.settings.max_upload_bytes = 100
    with pytest.raises(SlackApiError) as e:
        await client.files_upload_v2(channel=CHANNEL, content=PNG, filename="big.png")
    assert e.value.response["error"] == "file_upload_size_restricted"


async def test_views_publish_and_app_home_opened(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    view = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Hi"}}]}
    published = await client.views_publish(user_id=HUMAN, view=view)
    assert fake_slack.home_view(HUMAN)["blocks"] == view["blocks"]
    event = fake_slack.app_home_opened(HUMAN)["event"]
    assert (event["type"], event["tab"], event["view"]["id"]) == ("app_home_opened", "home", published["view"]["id"])


async def test_rate_limit_surfaces_without_handler_and_is_retried_with_one(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    fake_slack.rate_limit_next("chat.postMessage", retry_after=0)
    with pytest.raises(SlackApiError) as e:
        await client.chat_postMessage(channel=CHANNEL, text="x")
    assert e.value.response.status_code == 429 and e.value.response.headers["Retry-After"] == "0"
    assert e.value.response["error"] == "ratelimited"
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    fake_slack.rate_limit_next("chat.postMessage", retry_after=0)
    await client.chat_postMessage(channel=CHANNEL, text="y")
    assert [c.status for c in fake_slack.calls_to("chat.postMessage")] == [429, 429, 200]


async def test_a_delayed_method_answers_late_and_only_the_next_call(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    fake_slack.delay_next("auth.test", 0.3)
    started = time.monotonic()
    assert (await client.auth_test())["ok"]
    late = time.monotonic() - started
    started = time.monotonic()
    await client.auth_test()
    assert late >= 0.3 and time.monotonic() - started < 0.3


async def test_a_hung_up_method_fails_in_the_client_then_answers(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    fake_slack.hang_up_next("auth.test", times=2)  # slack_sdk retries a dropped connection once by itself
    with pytest.raises(aiohttp.ClientError):
        await client.auth_test()
    assert (await client.auth_test())["ok"]
    assert len(fake_slack.calls_to("auth.test")) == 3


# --- File hosting -------------------------------------------------------------------------------------------------


async def test_private_file_download_needs_the_bot_token(fake_slack: FakeSlack) -> None:
    file = fake_slack.add_file("cat.png", "image/png", PNG)
    url = file["url_private_download"]
    assert url.startswith(fake_slack.base_url + "/files-pri/")
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Authorization": f"Bearer {fake_slack.bot_token}"}) as r:
            assert (r.status, r.content_type, await r.read()) == (200, "image/png", PNG)
        for headers in ({}, {"Authorization": "Bearer xoxb-wrong"}):
            async with http.get(url, headers=headers) as r:  # follows the redirect like most clients
                assert (r.status, r.content_type) == (200, "text/html")  # the pitfall: no error status
            async with http.get(url, headers=headers, allow_redirects=False) as r:
                assert r.status == 302
        fake_slack.settings.scopes.discard("files:read")
        async with http.get(url, headers={"Authorization": f"Bearer {fake_slack.bot_token}"}) as r:
            assert r.content_type == "text/html"
    downloads = [c for c in fake_slack.calls if c.path.startswith("/files-pri/")]
    assert [c.token for c in downloads] == [
        fake_slack.bot_token,
        None,
        None,
        "xoxb-wrong",
        "xoxb-wrong",
        fake_slack.bot_token,
    ]


async def test_foreign_host_records_whether_a_token_arrived(fake_slack: FakeSlack) -> None:
    file = fake_slack.foreign_file("evil.png", "image/png", PNG)
    assert not file["url_private"].startswith(fake_slack.base_url)
    redirecting = fake_slack.add_file("hop.png", "image/png", PNG, redirect_to=fake_slack.foreign_url("hop.png", PNG))
    async with aiohttp.ClientSession() as http:
        async with http.get(file["url_private_download"]) as r:
            assert await r.read() == PNG
        auth = {"Authorization": f"Bearer {fake_slack.bot_token}"}
        async with http.get(redirecting["url_private_download"], headers=auth) as r:
            assert await r.read() == PNG
    direct, hop = fake_slack.foreign_calls
    assert (direct.has_authorization, direct.token) == (False, None)
    # aiohttp drops Authorization on a cross-origin redirect; a client that re-adds it would show up here.
    assert hop.has_authorization is False


# --- HTTP mode: bolt's own aiohttp server -------------------------------------------------------------------------


@dataclass
class Seen:
    mentions: list[dict[str, Any]] = field(default_factory=list)
    retry_nums: list[str | None] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)


def build_app(fake: FakeSlack, seen: Seen, *, signing_secret: str) -> AsyncApp:
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
    app = AsyncApp(client=client, signing_secret=signing_secret)

    @app.event("app_mention")
    async def mention(event: dict[str, Any], say: Any, request: Any) -> None:
        seen.mentions.append(event)
        seen.retry_nums.append(request.headers.get("x-slack-retry-num", [None])[0])
        await say(text="on it", thread_ts=event.get("thread_ts") or event["ts"])  # Slack: reply to the root ts

    @app.command("/imagine")
    async def imagine(ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack(f"Queued: {command['text']}")
        seen.commands.append(command["text"])
        await respond(text="started", response_type="in_channel")

    @app.action("regen")
    async def regen(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        seen.actions.append(body["actions"][0]["value"])

    return app


@pytest_asyncio.fixture
async def http_bot(fake_slack: FakeSlack) -> AsyncIterator[tuple[str, Seen]]:
    seen = Seen()
    app = build_app(fake_slack, seen, signing_secret=fake_slack.signing_secret)
    runner = web.AppRunner(app.web_app(path="/slack/events"), shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events", seen
    await runner.cleanup()


async def test_http_signed_mention_runs_and_replies_in_thread(
    fake_slack: FakeSlack, http_bot: tuple[str, Seen]
) -> None:
    url, _ = http_bot
    payload = fake_slack.app_mention(HUMAN, CHANNEL, "<@U0BOT> a cat")
    answer = await fake_slack.deliver_http(url, payload)
    assert answer.status == 200 and answer.elapsed < 3
    ts = payload["event"]["ts"]
    await fake_slack.wait_until(lambda: len(fake_slack.thread(CHANNEL, ts)) == 2)
    assert fake_slack.thread(CHANNEL, ts)[1]["text"] == "on it"
    assert len(fake_slack.calls_to("auth.test")) == 1  # bolt authorizes lazily, once


async def test_http_rejects_bad_stale_and_missing_signatures(fake_slack: FakeSlack, http_bot: tuple[str, Seen]) -> None:
    url, seen = http_bot
    stale = int(time.time()) - 301
    for kwargs in ({"bad_signature": True}, {"timestamp": stale}, {"signed": False}):
        answer = await fake_slack.deliver_http(url, fake_slack.app_mention(HUMAN, CHANNEL, "hi"), **kwargs)
        assert answer.status == 401 and answer.json() == {"error": "invalid request"}
    await asyncio.sleep(0.1)
    assert seen.mentions == []


async def test_http_slash_command_and_block_action(fake_slack: FakeSlack, http_bot: tuple[str, Seen]) -> None:
    url, seen = http_bot
    answer = await fake_slack.deliver_http(url, fake_slack.slash_command("/imagine", "a dog --ar 16:9", HUMAN, CHANNEL))
    assert answer.status == 200 and answer.elapsed < 3 and answer.body == "Queued: a dog --ar 16:9"
    assert seen.commands == ["a dog --ar 16:9"]
    assert [m["text"] for m in fake_slack.ephemerals(HUMAN)] == ["Queued: a dog --ar 16:9"]
    await fake_slack.wait_until(fake_slack.response_posts)
    assert fake_slack.history(CHANNEL)[-1]["text"] == "started"  # respond(response_type="in_channel")
    root = fake_slack.add_message(CHANNEL, "root")
    image = await AsyncWebClient(token=fake_slack.bot_token, base_url=fake_slack.api_url).chat_postMessage(
        channel=CHANNEL, thread_ts=root["ts"], text="img"
    )
    click = fake_slack.block_actions(HUMAN, CHANNEL, image["ts"], root["ts"], "regen", "seed=42")
    assert click["message"]["thread_ts"] == root["ts"]
    answer = await fake_slack.deliver_http(url, click)
    assert answer.status == 200 and seen.actions == ["seed=42"]


async def test_http_redelivery_reaches_the_handler_again(fake_slack: FakeSlack, http_bot: tuple[str, Seen]) -> None:
    url, seen = http_bot
    payload = fake_slack.app_mention(HUMAN, CHANNEL, "<@U0BOT> once")
    assert (await fake_slack.deliver_http(url, payload)).status == 200
    assert (await fake_slack.deliver_http(url, payload, retry_num=1, retry_reason="http_timeout")).status == 200
    await fake_slack.wait_until(lambda: len(seen.mentions) == 2)
    assert seen.mentions[0] == seen.mentions[1] and seen.retry_nums == [None, "1"]  # bolt does not dedupe


async def test_http_url_verification(fake_slack: FakeSlack, http_bot: tuple[str, Seen]) -> None:
    url, _ = http_bot
    answer = await fake_slack.deliver_http(url, fake_slack.url_verification("c-123"))
    assert answer.status == 200 and answer.json() == {"challenge": "c-123"}


# --- Socket Mode: bolt's AsyncSocketModeHandler -------------------------------------------------------------------


@pytest_asyncio.fixture
async def socket_bot(fake_slack: FakeSlack) -> AsyncIterator[Seen]:
    seen = Seen()
    handler = AsyncSocketModeHandler(build_app(fake_slack, seen, signing_secret=""), fake_slack.app_token)
    await handler.connect_async()
    await fake_slack.wait_socket()
    yield seen
    await handler.close_async()
    await asyncio.sleep(0.05)  # let the cancelled SDK tasks finish


async def test_socket_mode_event_is_acked_and_handled(fake_slack: FakeSlack, socket_bot: Seen) -> None:
    assert fake_slack.calls_to("apps.connections.open")[0].token == fake_slack.app_token
    received = fake_slack.socket.received  # every JSON message from the client
    payload = fake_slack.app_mention(HUMAN, CHANNEL, "<@U0BOT> a cat")
    envelope_id = await fake_slack.deliver_socket("events_api", payload)
    ack = await fake_slack.wait_ack(envelope_id)
    assert ack.raw == {"envelope_id": envelope_id} and ack.elapsed < 3
    await fake_slack.wait_until(lambda: len(fake_slack.thread(CHANNEL, payload["event"]["ts"])) == 2)
    assert socket_bot.retry_nums == ["0"]  # bolt turns retry_attempt 0 into x-slack-retry-num "0" (§6)
    assert received == [ack.raw]  # nothing but the ack


async def test_socket_mode_command_and_action(fake_slack: FakeSlack, socket_bot: Seen) -> None:
    envelope_id = await fake_slack.deliver_socket(
        "slash_commands", fake_slack.slash_command("/imagine", "a dog", HUMAN, CHANNEL)
    )
    ack = await fake_slack.wait_ack(envelope_id)
    assert ack.payload == {"text": "Queued: a dog"} and ack.elapsed < 3
    assert [m["text"] for m in fake_slack.ephemerals(HUMAN)] == ["Queued: a dog"]
    msg = fake_slack.add_message(CHANNEL, "img", user="U0BOT", bot_id="B0BOT")
    click = fake_slack.block_actions(HUMAN, CHANNEL, msg["ts"], None, "regen", "seed=7")
    await fake_slack.wait_ack(await fake_slack.deliver_socket("interactive", click))
    assert socket_bot.actions == ["seed=7"]


async def test_socket_mode_reconnects_after_drop_and_disconnect(fake_slack: FakeSlack, socket_bot: Seen) -> None:
    await fake_slack.drop_socket()
    await fake_slack.wait_socket(more_than=1)
    await fake_slack.request_reconnect()
    await fake_slack.wait_socket(more_than=2)
    assert len(fake_slack.calls_to("apps.connections.open")) == 3
    payload = fake_slack.app_mention(HUMAN, CHANNEL, "<@U0BOT> still there?")
    retry = await fake_slack.deliver_socket("events_api", payload, retry_attempt=1, retry_reason="timeout")
    await fake_slack.wait_ack(retry)
    await fake_slack.wait_until(lambda: socket_bot.retry_nums == ["1"])


async def test_upload_url_enforces_key_size_and_completion(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    fake_slack.settings.max_upload_bytes = 100
    issued = await client.files_getUploadURLExternal(filename="a.png", length=50)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{fake_slack.base_url}/upload/v1/nope", data=b"x") as r:
            assert r.status == 404
        async with http.post(issued["upload_url"], data=PNG) as r:
            assert (r.status, await r.text()) == (413, "Request Entity Too Large")
    with pytest.raises(SlackApiError) as e:  # never received any bytes
        await client.files_completeUploadExternal(files=[{"id": issued["file_id"]}], channel_id=CHANNEL)
    assert e.value.response["error"] == "file_not_found"
