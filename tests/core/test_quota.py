"""Credits: reserved before the call, committed on delivery, refunded on every failure; limits and admin."""

from __future__ import annotations

import asyncio
import io
import os
import sqlite3
import struct
import time
import zlib
from datetime import timedelta

import pytest
from PIL import Image

from bot.dispatcher import dispatch
from bot.maintenance import reclaim_once
from bot.models import Invocation, Reply, UserRef
from bot.quotas import QuotaRefused
from bot.store.base import Limits, Reservation, UserPolicy
from commands import COMMANDS
from tests.core.conftest import ALICE, BOB, NOON, THREAD, die_after, png_bytes
from tests.fakes.chat import BytesImage, RecordingResponder
from tests.fakes.gemini import Fault


async def credits(services, user=ALICE) -> int:
    return (await services.store.usage(user.key, now=NOON)).day_credits


async def test_a_fourth_turn_past_a_daily_limit_of_three_is_refused_with_the_reset_time(
    make_services, run, fake_gemini
) -> None:
    services = await make_services(user_daily_credits=3)
    try:
        for prompt in ("one", "two", "three"):
            [ok] = await run("imagine", prompt, on=services)
            assert not ok.error, ok.text
        [refused] = await run("imagine", "four", on=services)
    finally:
        await services.close()
    assert refused.error and refused.ephemeral
    assert "3 of your 3 credits today" in refused.text
    assert "Sun 22 Nov at 00:00 UTC (in 12 h 0 min)" in refused.text
    assert len(fake_gemini.requests) == 3  # nothing was sent to the model


@pytest.mark.parametrize(
    "fault",
    [
        Fault.IMAGE_SAFETY,
        Fault.IMAGE_PROHIBITED_CONTENT,
        Fault.IMAGE_RECITATION,
        Fault.IMAGE_OTHER,
        Fault.NO_IMAGE,
        Fault.TEXT_ONLY,
        Fault.BLOCKED_PROMPT,
        Fault.RATE_LIMIT,
        Fault.RATE_LIMIT_DAILY,
        Fault.INTERNAL,
        Fault.OVERLOADED,
        Fault.DEADLINE,
        Fault.RESET,
        Fault.MALFORMED_JSON,
    ],
)
async def test_every_failure_refunds_and_says_what_happened(run, services, fake_gemini, fault) -> None:
    fake_gemini.enqueue(fault, times=5, retry_delay="0.01s")
    [reply] = await run("imagine", "a cat")

    assert reply.error and not reply.images
    assert "Something went wrong" not in reply.text
    assert "charged" in reply.text
    assert await credits(services) == 0
    session = await services.store.active_session("console:local:terminal:t1")
    assert session is not None and session.head_turn_id is None
    held = await services.store.held_owners()
    assert held == []


async def test_an_upload_the_platform_refuses_is_refunded(run, services, responder) -> None:
    responder.fail_sends = True
    [reply] = await run("imagine", "a cat")
    assert reply.error and "couldn't post" in reply.text
    assert await credits(services) == 0
    session = await services.store.active_session("console:local:terminal:t1")
    assert session is not None and session.head_turn_id is None


async def test_64_concurrent_reservations_never_commit_more_than_10(services) -> None:
    limits = Limits(daily_credits=10, monthly_credits=100)

    async def one(i: int):
        return await services.store.reserve(
            user_key=ALICE.key,
            workspace_id="",
            credits=1,
            usd=0.05,
            limits=limits,
            now=NOON,
            ttl=timedelta(minutes=5),
            owner="test",
        )

    results = await asyncio.gather(*(one(i) for i in range(64)))
    held = [r for r in results if hasattr(r, "expires_at")]
    assert len(held) == 10
    for reservation in held:
        assert await services.store.commit(reservation.id, usd=0.05, now=NOON)
    assert await credits(services) == 10


async def test_a_reservation_left_by_a_killed_process_is_reclaimed_on_the_next_start(make_services, tmp_path) -> None:
    services = await make_services()
    db = services.settings.database_url.removeprefix("sqlite:///")
    await services.close()
    die_after(
        db,
        """
        await store.reserve(user_key='console:alice', workspace_id='', credits=1, usd=0.1, limits=Limits(5, 50),
                            now=now, ttl=timedelta(hours=1), owner=owner)
        """,
    )

    restarted = await make_services()
    try:
        assert await restarted.store.held_owners() == []
        assert await credits(restarted) == 0
    finally:
        await restarted.close()


async def test_grants_blocks_and_exemptions(run, services) -> None:
    admin = UserRef("console", "root", platform_admin=True)
    [denied] = await run("admin", user=BOB, action="grant", opts={"user": ALICE.key}, amount="5")
    assert denied.error and "Only bot admins" in denied.text

    [granted] = await run("admin", user=admin, action="grant", opts={"user": ALICE.key}, amount="5")
    assert "Granted 5" in granted.text
    [quota] = await run("quota")
    assert "55 of 55 credits left" in quota.text

    await run("admin", user=admin, action="block", opts={"user": ALICE.key})
    [blocked] = await run("imagine", "a cat")
    assert blocked.error and "blocked" in blocked.text
    await run("admin", user=admin, action="unblock", opts={"user": ALICE.key})
    [ok] = await run("imagine", "a cat")
    assert not ok.error


async def test_quota_shows_what_is_left_and_when_it_resets(run) -> None:
    await run("imagine", "a cat", size="2K")
    [quota] = await run("quota")
    assert quota.ephemeral
    assert "Today: 48 of 50 credits left; resets Sun 22 Nov at 00:00 UTC" in quota.text
    assert "This month: 498 of 500" in quota.text and "resets Tue 01 Dec" in quota.text


def _bomb_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


def _truncated_png() -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3)).save(out, "PNG")
    return out.getvalue()[: len(out.getvalue()) // 2]


@pytest.mark.parametrize(
    ("case", "images", "text", "options", "words"),
    [
        ("not an image", (BytesImage(b"%PDF-1.7 hello", "doc.pdf", "application/pdf"),), "x", {}, "isn't an image"),
        ("named png, is text", (BytesImage(b"hello world" * 10, "fake.png"),), "x", {}, "fake.png"),
        ("truncated", (BytesImage(_truncated_png(), "cut.png"),), "x", {}, "damaged or truncated"),
        ("bomb", (BytesImage(_bomb_png(30000, 30000), "bomb.png"),), "x", {}, "30000×30000"),
        ("over-size", (BytesImage(png_bytes(), "big.png", declared_size=80 * 1024 * 1024),), "x", {}, "the limit is"),
        ("too many", tuple(BytesImage(png_bytes()) for _ in range(15)), "x", {}, "at most 14"),
        ("empty prompt", (), "   ", {}, "Tell me what to draw"),
        ("huge prompt", (), "x" * 20_000, {}, "20,000 characters"),
        ("aspect", (), "x", {"aspect_ratio": "8:1", "model": "gemini-3-pro-image-preview"}, "aspect ratio 8:1"),
        ("size", (), "x", {"size": "512", "model": "gemini-3-pro-image-preview"}, "can't make 512"),
        ("bad aspect text", (), "x", {"aspect_ratio": "wide"}, "isn't an aspect ratio"),
        ("unknown model", (), "x", {"model": "dall-e"}, "don't know the model"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_bad_input_gets_a_specific_message_and_costs_nothing(
    run, services, fake_gemini, case, images, text, options, words
) -> None:
    [reply] = await run("imagine", text, images=images, **options)

    assert reply.error and reply.ephemeral
    assert words in reply.text, reply.text
    assert fake_gemini.requests == []
    assert await credits(services) == 0
    if case == "over-size":
        assert images[0].reads == []  # refused before download


async def test_a_reservation_made_for_a_cancelled_caller_goes_back(services) -> None:
    store = services.store
    now = services.now()
    first_batch = asyncio.create_task(store.write(lambda conn: time.sleep(0.2)))  # the writer is busy
    await asyncio.sleep(0.02)
    reserving = asyncio.create_task(services.ledger.reserve(ALICE, credits=1, usd=0.04, now=now))
    await asyncio.sleep(0.08)  # its write waits for the next batch
    second_batch = asyncio.create_task(store.write(lambda conn: time.sleep(0.3)))  # same batch, after it
    await asyncio.sleep(0.25)  # that batch is running: the reservation is written, not yet committed
    reserving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reserving
    await asyncio.gather(first_batch, second_batch)
    for _ in range(100):
        if (await store.usage(ALICE.key, now=now)).day_credits == 0:
            break
        await asyncio.sleep(0.02)
    assert (await store.usage(ALICE.key, now=now)).day_credits == 0


async def test_quota_reads_take_one_trip_to_the_reader_thread(make_services, monkeypatch: pytest.MonkeyPatch) -> None:
    # /quota during a burst waits for each trip to the reader thread: policy, grants and usage take one.
    services = await make_services(user_daily_credits=5)
    try:
        reader = services.store._readers[0]
        batches: list[int] = []
        run_batch = reader._run_batch

        def counting(conn, jobs) -> None:
            batches.append(len(jobs))
            run_batch(conn, jobs)

        monkeypatch.setattr(reader, "_run_batch", counting)
        text = await services.ledger.summary(ALICE, NOON)
        assert batches == [1]
        assert text.startswith("Today: 5 of 5 credits left")
        batches.clear()
        assert await services.ledger.precheck(ALICE, credits=9, now=NOON) is not None
        assert batches == [1]
    finally:
        await services.close()


async def test_a_turn_reads_its_users_standing_with_its_reservation_and_once_for_the_caption(
    run, services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each read is a trip to the reader thread, slow in a burst. The reservation reads the user's policy and grants
    # inside its own write (a separate read before it was a trip of its own); a lone turn's precheck was another:
    # its reservation refuses with the same words (test_a_fourth_turn_… checks them).
    asked: list[bool] = []
    standing = services.store.standing

    async def counted(user_key: str, *, now, with_usage: bool):
        asked.append(with_usage)
        return await standing(user_key, now=now, with_usage=with_usage)

    monkeypatch.setattr(services.store, "standing", counted)
    [reply] = await run("imagine", "a cat")
    assert not reply.error, reply.text
    assert "credits left today" in reply.text
    assert asked == [True]  # the caption's credits left


async def test_a_block_written_just_before_a_reservation_refuses_it(services) -> None:
    # The reservation reads the policy in its own transaction: a block that lands first counts, even when both
    # writes are asked for at once (a read made before the reservation could miss it).
    blocking = asyncio.ensure_future(services.store.set_policy(UserPolicy(ALICE.key, blocked=True)))
    reserving = asyncio.ensure_future(services.ledger.reserve(ALICE, credits=1, usd=0.04, now=NOON))
    await blocking
    refused = await reserving
    assert isinstance(refused, QuotaRefused) and "blocked" in refused.message
    assert await credits(services) == 0

    granting = asyncio.ensure_future(services.store.set_policy(UserPolicy(ALICE.key, daily_credits=1)))
    first = asyncio.ensure_future(services.ledger.reserve(ALICE, credits=1, usd=0.04, now=NOON))
    second = asyncio.ensure_future(services.ledger.reserve(ALICE, credits=1, usd=0.04, now=NOON))
    await granting
    assert isinstance(await first, Reservation)
    refused = await second
    assert isinstance(refused, QuotaRefused) and "used 1 of your 1 credits today" in refused.message


async def held_and_settled(services) -> list[tuple[int, str]]:
    return await services.store.read(
        lambda conn: [tuple(r) for r in conn.execute("SELECT credits, state FROM reservations ORDER BY created_at")]
    )


async def test_a_cancellation_just_after_the_image_was_posted_still_charges_it(services, clock) -> None:
    # A shutdown's drain cancels a turn whose upload has just gone through: the image is the user's, so its
    # credit is committed, not left held for reclaim to refund.
    class CancelledAfterPosting(RecordingResponder):
        async def send(self, reply: Reply) -> None:
            await super().send(reply)
            if reply.images:
                current = asyncio.current_task()
                assert current is not None
                current.cancel()

    responder = CancelledAfterPosting()
    turn = asyncio.ensure_future(dispatch(Invocation("imagine", ALICE, THREAD, "a cat"), responder, services, COMMANDS))
    services.running.add(turn)
    with pytest.raises(asyncio.CancelledError):
        await turn
    assert [r for r in responder.replies if r.images]  # it was posted
    await services.drain(grace=5)  # what a shutdown does next: the settling it started lands
    clock.now = NOON + timedelta(seconds=services.settings.reservation_ttl_seconds + 1)
    await reclaim_once(services)
    assert await held_and_settled(services) == [(1, "committed")]
    assert await credits(services) == 1


async def test_variations_whose_later_reply_fails_to_build_refund_every_image(
    run, services, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    [first] = await run("imagine", "a robot")
    assert not first.error
    left_today = services.ledger.left_today
    asked = 0

    async def second_read_fails(user: UserRef, now: object) -> int | None:
        nonlocal asked
        asked += 1
        if asked == 2:  # the second variation's caption: a store read that fails this once
            raise sqlite3.OperationalError("disk I/O error")
        return await left_today(user, now)  # type: ignore[arg-type]

    monkeypatch.setattr(services.ledger, "left_today", second_read_fails)
    replies = await run("variations", count="2")
    assert [r.error for r in replies] == [True] and "nothing was charged" in replies[0].text
    assert services.charges == {}  # no image of the set waits for a delivery that won't come
    assert await held_and_settled(services) == [(1, "committed"), (1, "refunded"), (1, "refunded")]
    assert await credits(services) == 1  # the first imagine only
