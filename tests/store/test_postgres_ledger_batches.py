"""Ledger batches (migration 3) decide exactly as the same calls made one at a time, and fall back when refused."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
import pytest

from bot.store import Limits, PostgresStore, Reservation, Standing, UserPolicy
from bot.store import postgres_ledger as ledger
from bot.store.postgres_batch import Batcher
from tests.store import NOW
from tests.store.conftest import POSTGRES_URL, fresh_schema, opened

DAY = "2026-11-21"


@asynccontextmanager
async def twins() -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on two fresh schemas: one gets batches, the other the same calls one by one."""
    async with (
        fresh_schema() as a,
        fresh_schema() as b,
        opened([PostgresStore(POSTGRES_URL, schema=a), PostgresStore(POSTGRES_URL, schema=b)]) as stores,
    ):
        yield stores[0], stores[1]


async def counters(store: PostgresStore) -> list[tuple[str, str, int, float]]:
    async with store.transaction() as conn:
        rows = await conn.fetch("SELECT scope, period, credits, usd FROM usage_counters ORDER BY scope, period")
    return [(r["scope"], r["period"], int(r["credits"]), float(r["usd"])) for r in rows]


async def reservations(store: PostgresStore) -> list[tuple[str, str, float | None]]:
    async with store.transaction() as conn:
        rows = await conn.fetch("SELECT id, state, actual_usd FROM reservations ORDER BY id")
    return [(r["id"], r["state"], r["actual_usd"]) for r in rows]


def random_calls(rng: random.Random, n: int) -> list[ledger.ReserveCall]:
    calls = []
    for _ in range(n):
        limits = Limits(
            daily_credits=rng.choice([None, 2, 3, 5]),
            monthly_credits=rng.choice([None, 4, 8]),
            user_monthly_usd=rng.choice([None, 1.0, 2.0]),
            workspace_daily_usd=rng.choice([None, 1.5, 3.0]),
            global_daily_usd=rng.choice([None, 2.5, 5.0]),
        )
        calls.append(
            ledger.reserve_call(
                user_key=f"u{rng.randrange(4)}",
                workspace_id=f"w{rng.randrange(2)}",
                credits=rng.randrange(0, 3),
                usd=rng.choice([0.0, 0.125, 0.25, 0.375]),
                limits=limits,
                now=NOW + timedelta(days=rng.choice([0, 0, 1])),
                ttl=timedelta(minutes=10),
                owner=rng.choice(["p1", "p2"]),
            )
        )
    return calls


async def test_reserve_batches_decide_as_the_same_calls_one_by_one() -> None:
    rng = random.Random(5)
    async with twins() as (batched, single):
        calls = random_calls(rng, 120)
        got: list[object] = []
        for start in range(0, len(calls), 17):
            got += await ledger.reserve_batch(batched._connected(), calls[start : start + 17])
        expected = [await ledger.reserve(single._connected(), call) for call in calls]
        assert got == expected
        assert sum(isinstance(r, Reservation) for r in got) not in (0, len(got))  # both outcomes were exercised
        assert await counters(batched) == await counters(single)
        assert await reservations(batched) == await reservations(single)


async def test_settle_batches_move_counters_as_the_same_calls_one_by_one() -> None:
    rng = random.Random(9)
    async with twins() as (batched, single):
        calls = [dataclasses.replace(c, limits=Limits(None, None)) for c in random_calls(rng, 40)]
        for store in (batched, single):
            await ledger.reserve_batch(store._connected(), calls)
            await store.reset_usage("u1", now=NOW)  # refunds after a reset must not go below zero
        ids = [call.reservation.id for call in calls]
        settles = [
            ledger.SettleCall(rng.choice([*ids, "unknown"]), rng.random() < 0.5, rng.choice([0.0, 0.25, 0.5]), NOW)
            for _ in range(60)
        ]
        got: list[bool] = []
        for start in range(0, len(settles), 13):
            got += await ledger.settle_batch(batched._connected(), settles[start : start + 13])
        expected = [await ledger.settle(single._connected(), call) for call in settles]
        assert got == expected and True in got and False in got
        assert await counters(batched) == await counters(single)
        assert await reservations(batched) == await reservations(single)


async def test_a_refused_batch_falls_back_to_one_call_each(caplog: pytest.LogCaptureFixture) -> None:
    async with twins() as (store, _):
        pool = store._connected()
        calls: Batcher[ledger.ReserveCall, object] = Batcher(
            lambda items: ledger.reserve_batch(pool, items),
            lambda item: ledger.reserve(pool, item),
            max_batch=8,
            max_in_flight=1,
        )
        limits = Limits(daily_credits=10, monthly_credits=None)
        first = ledger.reserve_call(
            user_key="u", workspace_id="w", credits=1, usd=0.25, limits=limits, now=NOW, ttl=timedelta(1), owner="p"
        )
        assert isinstance(await calls.submit(first), Reservation)
        again = [
            dataclasses.replace(first, reservation=dataclasses.replace(first.reservation, id=f"r{i}")) for i in range(4)
        ]
        clash = dataclasses.replace(again[2], reservation=first.reservation)  # the same id twice: the batch fails
        outcomes = await asyncio.gather(
            calls.submit(again[0]),
            *(calls.submit(call) for call in [again[1], clash, again[3]]),
            return_exceptions=True,
        )
        assert isinstance(outcomes[2], asyncpg.UniqueViolationError)
        assert [type(o) for i, o in enumerate(outcomes) if i != 2] == [Reservation] * 3
        assert (await store.usage("u", now=NOW)).day_credits == 4
        assert "refused" in caplog.text


async def test_store_traffic_goes_in_batches_that_the_server_accepts(caplog: pytest.LogCaptureFixture) -> None:
    async with twins() as (store, _):
        limits = Limits(daily_credits=5, monthly_credits=None, workspace_daily_usd=4.0, global_daily_usd=6.0)
        results = await asyncio.gather(
            *(
                store.reserve(
                    user_key=f"u{i % 12}",
                    workspace_id=f"w{i % 2}",
                    credits=1,
                    usd=0.25,
                    limits=limits,
                    now=NOW,
                    ttl=timedelta(minutes=5),
                    owner="p",
                )
                for i in range(96)
            )
        )
        granted = [r for r in results if isinstance(r, Reservation)]
        assert len(granted) == 24  # the global budget: 6.0 / 0.25
        assert all(await asyncio.gather(*(store.refund(r.id, usd=0.0, now=NOW) for r in granted[:10])))
        assert await store.spend(scope="global", period=DAY) == 14 * 0.25
        assert "refused" not in caplog.text


async def test_standings_read_in_one_statement_match_each_users_own_reads(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with twins() as (store, _):
        await store.set_policy(UserPolicy("u1", daily_credits=9, monthly_credits=None, blocked=True))
        await store.set_policy(UserPolicy("u2", exempt=True))
        for user, credits, day in [("u1", 2, 0), ("u1", 3, 0), ("u1", 4, -1), ("u3", 5, 0), ("u3", 7, -40)]:
            await store.grant(user, credits=credits, now=NOW + timedelta(days=day), by="admin")
        users = ["u0", "u1", "u2", "u3", "u1", "u0"]
        sent: list[int] = []
        fetch = ledger.standings

        async def counted(db: object, calls: list[ledger.GrantedCall]) -> list[Standing]:
            sent.append(len(calls))
            return await fetch(db, calls)  # type: ignore[arg-type]

        monkeypatch.setattr(ledger, "standings", counted)
        got = await asyncio.gather(*(store.standing(u, now=NOW, with_usage=False) for u in users))
        monkeypatch.undo()
        assert sum(sent) == len(users) and len(sent) < len(users)  # concurrent readers shared statements
        expected = [Standing(await store.get_policy(u), *await store.granted(u, now=NOW)) for u in users]
        assert got == expected
        assert got[1] == Standing(UserPolicy("u1", 9, None, blocked=True), 5, 9)
        assert got[3] == Standing(UserPolicy("u3"), 5, 5)  # a grant of another month does not count
        assert "refused" not in caplog.text
