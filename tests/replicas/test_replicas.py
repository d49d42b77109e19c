"""Several processes, one truth: quotas, dedupe, turn order and crash recovery across two `bananabot run`s."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from tests.fakes.gemini import FakeGemini, Fault
from tests.fakes.slack import CHANNEL, HUMAN, FakeSlack

ALICE = f"slack:{HUMAN}"


async def no_holds(store, timeout: float = 20.0) -> list[str]:
    """Held reservations' owners once they drain (a commit follows its upload by a moment)."""
    for _ in range(int(timeout / 0.1)):
        owners = await store.held_owners()
        if not owners:
            return owners
        await asyncio.sleep(0.1)
    return await store.held_owners()


async def no_pending_turns(store, timeout: float = 20.0) -> list[str]:
    """Owners of pending turns once they drain (the turns of a dead process are failed by a survivor)."""
    for _ in range(int(timeout / 0.1)):
        owners = await store.pending_turn_owners()
        if not owners:
            return owners
        await asyncio.sleep(0.1)
    return await store.pending_turn_owners()


def mention(fake: FakeSlack, text: str, **extra) -> dict:
    return fake.app_mention(HUMAN, CHANNEL, f"<@{fake.bot_user_id}> {text}", **extra)


async def test_200_reservations_racing_from_two_processes_never_exceed_the_limit(
    replicas, fake_slack: FakeSlack, fake_gemini: FakeGemini, store
) -> None:
    a, b = await replicas(BANANABOT_USER_DAILY_CREDITS="20")
    payloads = [mention(fake_slack, f"banana number {i}") for i in range(200)]
    answers = await asyncio.gather(
        *(fake_slack.deliver_http((a if i % 2 else b).events_url, p) for i, p in enumerate(payloads))
    )
    assert all(answer.status == 200 for answer in answers)

    def settled() -> bool:
        refused = [m for m in fake_slack.ephemerals(HUMAN) if "credits today" in m.get("text", "")]
        return len(fake_slack.uploads()) + len(refused) >= 200

    await fake_slack.wait_until(settled, timeout=120)
    assert len(fake_slack.uploads()) == 20
    assert await no_holds(store) == []
    assert (await store.usage(ALICE, now=datetime.now(UTC))).day_credits == 20


async def test_the_same_event_delivered_to_both_processes_is_generated_once(
    replicas, fake_slack: FakeSlack, fake_gemini: FakeGemini
) -> None:
    a, b = await replicas()
    payload = mention(fake_slack, "a single lighthouse")
    await asyncio.gather(
        fake_slack.deliver_http(a.events_url, payload),
        fake_slack.deliver_http(b.events_url, payload, retry_num=1, retry_reason="http_timeout"),
    )
    await fake_slack.wait_until(lambda: fake_slack.uploads(), timeout=30)
    await asyncio.sleep(1.0)
    assert len(fake_gemini.requests) == 1 and len(fake_slack.uploads()) == 1


async def test_one_thread_alternating_between_processes_keeps_order_and_signatures(
    replicas, fake_slack: FakeSlack, fake_gemini: FakeGemini
) -> None:
    a, b = await replicas()
    first = mention(fake_slack, "a red kite")
    root = first["event"]["ts"]
    await fake_slack.deliver_http(a.events_url, first)
    await fake_slack.wait_until(lambda: len(fake_slack.uploads()) >= 1, timeout=30)
    for count, (replica, text) in enumerate([(b, "make it blue"), (a, "add a tail"), (b, "at dusk")], start=2):
        await fake_slack.deliver_http(replica.events_url, fake_slack.message(HUMAN, CHANNEL, text, thread_ts=root))
        await fake_slack.wait_until(lambda n=count: len(fake_slack.uploads()) >= n, timeout=30)

    # Two at once, one per process: the thread lease makes them take turns (whichever goes first).
    fake_gemini.latency = 0.5
    await asyncio.gather(
        fake_slack.deliver_http(a.events_url, fake_slack.message(HUMAN, CHANNEL, "add a sun", thread_ts=root)),
        fake_slack.deliver_http(b.events_url, fake_slack.message(HUMAN, CHANNEL, "add a moon", thread_ts=root)),
    )
    await fake_slack.wait_until(lambda: len(fake_slack.uploads()) >= 6, timeout=30)

    sizes = [len(r.body["contents"]) for r in fake_gemini.requests]
    assert sizes == [1, 3, 5, 7, 9, 9]  # each turn saw the one before it: no overlap; then the window is full
    texts = [c["parts"][-1].get("text") for c in fake_gemini.requests[-1].body["contents"] if c["role"] == "user"]
    assert texts[:3] == ["a red kite", "add a tail", "at dusk"]  # the first turn, then the last three
    assert sorted(texts[3:]) == ["add a moon", "add a sun"]  # the second of the pair built on the first
    assert all(r.status == 200 for r in fake_gemini.requests)  # every signature was accepted
    signed = sum("thoughtSignature" in p for c in fake_gemini.requests[-1].body["contents"] for p in c["parts"])
    assert signed >= 8  # two per model turn sent (its text and its image)


async def test_a_killed_process_leaves_no_credit_behind_and_the_other_continues(
    replicas, fake_slack: FakeSlack, fake_gemini: FakeGemini, store
) -> None:
    a, b = await replicas()
    first = mention(fake_slack, "a paper crane")
    root = first["event"]["ts"]
    await fake_slack.deliver_http(a.events_url, first)
    await fake_slack.wait_until(lambda: len(fake_slack.uploads()) >= 1, timeout=30)

    fake_gemini.latency = 30
    await fake_slack.deliver_http(a.events_url, fake_slack.message(HUMAN, CHANNEL, "fold it twice", thread_ts=root))
    await fake_slack.wait_until(lambda: len(fake_gemini.requests) >= 2, timeout=30)
    await a.kill()  # mid-turn: its reservation and its thread lease are orphaned
    assert (await store.usage(ALICE, now=datetime.now(UTC))).day_credits == 2

    fake_gemini.latency = 0
    assert await no_holds(store) == []  # b's maintenance refunds the dead process's hold
    assert await no_pending_turns(store) == []  # and fails its turn
    assert (await store.usage(ALICE, now=datetime.now(UTC))).day_credits == 1

    await fake_slack.deliver_http(b.events_url, fake_slack.message(HUMAN, CHANNEL, "make it gold", thread_ts=root))
    await fake_slack.wait_until(lambda: len(fake_slack.uploads()) >= 2, timeout=30)
    last = fake_gemini.requests[-1]
    assert last.status == 200 and len(last.body["contents"]) == 3  # built on the first crane, signatures intact
    assert (await store.usage(ALICE, now=datetime.now(UTC))).day_credits == 2


async def test_replicas_starting_leave_the_turn_a_running_one_is_in(
    replicas, fake_slack: FakeSlack, fake_gemini: FakeGemini, store
) -> None:
    a, _ = await replicas()
    fake_gemini.latency = 8  # starting two replicas takes ~1.5 s: plenty of margin
    await fake_slack.deliver_http(a.events_url, mention(fake_slack, "a slow snail"))
    await fake_slack.wait_until(lambda: fake_gemini.requests, timeout=30)
    await replicas()  # two more processes start (and recover) while a's turn runs
    async with store.transaction() as conn:
        assert [row["status"] for row in await conn.fetch("SELECT status FROM turns")] == ["pending"]

    await fake_slack.wait_until(lambda: fake_slack.uploads(), timeout=30)
    async with store.transaction() as conn:
        assert [row["status"] for row in await conn.fetch("SELECT status FROM turns")] == ["done"]


async def test_no_process_logged_a_secret(replicas, fake_slack: FakeSlack, fake_gemini: FakeGemini) -> None:
    a, b = await replicas()
    await fake_slack.deliver_http(a.events_url, mention(fake_slack, "a quiet fox"))
    fake_gemini.enqueue(Fault.OVERLOADED, times=2)
    await fake_slack.deliver_http(b.events_url, mention(fake_slack, "a loud fox"))
    await fake_slack.wait_until(lambda: len(fake_slack.uploads()) >= 2, timeout=60)
    await a.stop()
    await b.stop()
    logs = a.log.read_text() + b.log.read_text()
    assert "retrying" in logs  # the logs did capture the interesting part
    assert "objects kept out of full garbage collections" in a.log.read_text()  # `run` froze its startup heap
    for secret in (fake_slack.bot_token, fake_slack.signing_secret, fake_gemini.api_key):
        assert secret not in logs
