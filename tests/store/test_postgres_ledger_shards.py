"""Postgres ledger (migration 2): shared counters spread over shards, budgets checked against every shard.

The contract suite covers the behaviour on both backends; these tests press on what only the Postgres layout
can get wrong: sums across shards and pools, budgets racing with unchecked traffic, refunds on another shard than
the reservation's, the one-call functions agreeing with ledger_rules, and the migration from version 1.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
import pytest

from bot.store import Limits, PostgresStore, Refusal, Reservation, Usage
from bot.store.ledger_rules import refusal
from bot.store.postgres_schema import LATEST
from tests.store import NOW, USER, WORKSPACE, hold
from tests.store.conftest import POSTGRES_URL, fresh_schema, opened, schema_at_version

DAY, MONTH = "2026-11-21", "2026-11"
NO_LIMITS = Limits(daily_credits=None, monthly_credits=None)


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with fresh_schema() as name:
        yield name


@asynccontextmanager
async def pools(schema: str, n: int = 2) -> AsyncIterator[list[PostgresStore]]:
    """`n` stores on one schema: `n` processes, each with its own pool (and so its own shards)."""
    async with opened([PostgresStore(POSTGRES_URL, schema=schema) for _ in range(n)]) as stores:
        yield list(stores)


async def shards(store: PostgresStore, scope: str, period: str = DAY) -> dict[int, tuple[int, float]]:
    async with store.transaction() as conn:
        rows = await conn.fetch(
            "SELECT shard, credits, usd FROM usage_shards WHERE scope = $1 AND period = $2", scope, period
        )
    return {int(r["shard"]): (int(r["credits"]), float(r["usd"])) for r in rows}


async def held_totals(store: PostgresStore) -> tuple[int, float]:
    """(credits, usd) that reservations account for: held and committed credits, estimates or actual costs."""
    async with store.transaction() as conn:
        row = await conn.fetchrow(
            "SELECT COALESCE(SUM(credits) FILTER (WHERE state <> 'refunded'), 0) AS credits,"
            " COALESCE(SUM(COALESCE(actual_usd, usd)), 0) AS usd FROM reservations WHERE day = $1",
            DAY,
        )
    return int(row["credits"]), float(row["usd"])


# Budgets under concurrency


async def test_a_workspace_budget_holds_exactly_across_two_pools(schema: str) -> None:
    async with pools(schema) as stores:
        limits = Limits(None, None, workspace_daily_usd=10.0)
        results = await asyncio.gather(
            *(
                hold(store, limits, user_key=f"u{i % 16}", usd=0.25, owner=f"p{i % 2}")
                for i, store in enumerate(stores * 80)
            )
        )
        granted = [r for r in results if isinstance(r, Reservation)]
        assert len(granted) == 40
        assert {r.scope for r in results if isinstance(r, Refusal)} == {"workspace_budget"}
        assert await stores[0].spend(scope=f"workspace:{WORKSPACE}", period=DAY) == 10.0
        # Another workspace is not held back by this one's budget.
        assert isinstance(await hold(stores[1], limits, workspace_id="other", usd=0.25), Reservation)


async def test_a_global_budget_counts_what_unchecked_traffic_spent_on_other_shards(schema: str) -> None:
    async with pools(schema) as stores:
        # A process without budgets spends on its own shards, from many connections at once...
        unchecked = await asyncio.gather(
            *(hold(stores[i % 2], NO_LIMITS, user_key=f"u{i}", usd=0.125, owner="free") for i in range(48))
        )
        assert all(isinstance(r, Reservation) for r in unchecked)
        assert len(await shards(stores[0], "global")) > 1  # spread: no single row took every increment
        assert await stores[0].spend(scope="global", period=DAY) == 6.0
        # ...and a budget checked afterwards sees all of it, whichever shard it is on.
        budget = Limits(None, None, global_daily_usd=7.0)
        results = await asyncio.gather(
            *(hold(stores[i % 2], budget, user_key=f"v{i}", usd=0.125, owner="capped") for i in range(32))
        )
        assert sum(isinstance(r, Reservation) for r in results) == 8
        assert Refusal("global_budget", 7.0, 7.0) in results
        assert await stores[1].spend(scope="global", period=DAY) == 7.0


async def test_unlimited_traffic_is_counted_exactly_and_locks_no_shared_row(schema: str) -> None:
    async with pools(schema) as stores:
        results = await asyncio.gather(
            *(hold(stores[i % 2], NO_LIMITS, user_key=f"u{i % 8}", usd=0.5, owner="p") for i in range(96))
        )
        granted = [r for r in results if isinstance(r, Reservation)]
        assert len(granted) == 96
        settled = await asyncio.gather(
            *(
                (stores[i % 2].commit if i % 3 else stores[i % 2].refund)(r.id, usd=0.25, now=NOW)
                for i, r in enumerate(granted)
            )
        )
        assert all(settled)
        assert await stores[0].spend(scope="global", period=DAY) == 96 * 0.25
        assert await stores[1].spend(scope=f"workspace:{WORKSPACE}", period=DAY) == 96 * 0.25
        assert (await stores[0].usage("u0", now=NOW)).day_credits == sum(1 for i in range(0, 96, 8) if i % 3)
        # No budget: the shared counters never touched their shard-0 row, the one a budget check locks.
        assert 0 not in await shards(stores[0], "global")
        assert 0 not in await shards(stores[0], f"workspace:{WORKSPACE}")
        async with stores[0].transaction() as conn:
            credits = await conn.fetchval(
                "SELECT credits FROM usage_counters WHERE scope = 'global' AND period = $1", DAY
            )
        assert credits == 64
        assert await held_totals(stores[0]) == (64, 24.0)


async def test_mixed_traffic_under_budgets_never_deadlocks_or_overspends(schema: str) -> None:
    rng = random.Random(8)
    budget = Limits(daily_credits=30, monthly_credits=None, workspace_daily_usd=6.0, global_daily_usd=8.0)
    live: list[Reservation] = []
    async with pools(schema) as stores:

        async def worker(store: PostgresStore) -> None:
            for _ in range(40):
                roll = rng.random()
                if roll < 0.55 or not live:
                    result = await hold(
                        store,
                        budget,
                        user_key=f"u{rng.randrange(4)}",
                        workspace_id=f"w{rng.randrange(2)}",
                        usd=0.25,
                        ttl=timedelta(seconds=rng.choice([0, 600])),
                    )
                    if isinstance(result, Reservation):
                        live.append(result)
                elif roll < 0.85:
                    reservation = live.pop(rng.randrange(len(live)))
                    settle = store.commit if rng.random() < 0.6 else store.refund
                    await settle(reservation.id, usd=rng.choice([0.0, 0.25, 0.375]), now=NOW)
                elif roll < 0.95:
                    await store.reclaim(now=NOW + timedelta(seconds=1))
                else:
                    await store.reset_usage(f"u{rng.randrange(4)}", now=NOW)

        await asyncio.gather(*(worker(store) for store in stores for _ in range(4)))
        credits, usd = await held_totals(stores[0])
        assert await stores[0].spend(scope="global", period=DAY) == pytest.approx(usd)
        workspaces = [await stores[1].spend(scope=f"workspace:w{i}", period=DAY) for i in range(2)]
        assert sum(workspaces) == pytest.approx(usd)
        async with stores[1].transaction() as conn:
            counted = await conn.fetchval(
                "SELECT credits FROM usage_counters WHERE scope = 'global' AND period = $1", DAY
            )
        assert counted == credits
        # Reservations only ever asked for 0.25 under the budgets; commits at 0.375 may push past them (the
        # actual cost is billed whatever it is), but never by more than those overruns.
        overrun = 0.125 * await _count_commits_at(stores[0], 0.375)
        assert max(workspaces) <= 6.0 + overrun
        assert usd <= 8.0 + overrun


async def _count_commits_at(store: PostgresStore, usd: float) -> int:
    async with store.transaction() as conn:
        return int(await conn.fetchval("SELECT COUNT(*) FROM reservations WHERE actual_usd = $1", usd))


# Settling on another shard than the reservation's


async def test_refund_and_commit_from_another_pool_balance_the_shards(schema: str) -> None:
    async with pools(schema) as (first, second):
        limits = Limits(daily_credits=2, monthly_credits=None, global_daily_usd=1.0)
        a = await hold(first, limits, usd=0.5)
        b = await hold(first, limits, usd=0.5)
        assert isinstance(a, Reservation) and isinstance(b, Reservation)
        assert await hold(second, limits, usd=0.5) == Refusal("daily", 2, 2)
        assert await second.refund(a.id, usd=0.0, now=NOW)  # second's shard goes below zero; the sum is right
        assert await second.spend(scope="global", period=DAY) == 0.5
        assert await first.usage(USER, now=NOW) == Usage(1, 1, 0.5)
        c = await hold(second, limits, usd=0.5)
        assert isinstance(c, Reservation)
        assert await hold(first, limits, user_key="other", usd=0.25) == Refusal("global_budget", 1.0, 1.0)
        assert await first.commit(c.id, usd=0.25, now=NOW)  # cheaper than estimated: budget comes back
        assert isinstance(await hold(first, limits, user_key="other", usd=0.25), Reservation)
        assert await second.commit(b.id, usd=0.75, now=NOW)  # dearer: counted, and the next check sees it
        assert await hold(second, limits, user_key="third", usd=0.0) == Refusal("global_budget", 1.0, 1.25)
        assert await first.spend(scope="global", period=DAY) == 1.25
        assert await second.usage(USER, now=NOW) == Usage(2, 2, 1.0)


async def test_reclaim_restores_a_user_row_that_went_missing_at_zero(schema: str) -> None:
    async with pools(schema, 1) as (store,):
        reservation = await hold(store, NO_LIMITS, credits=2, usd=0.5, ttl=timedelta(0))
        assert isinstance(reservation, Reservation)
        async with store.transaction() as conn:
            await conn.execute("DELETE FROM usage_shards WHERE scope = $1", f"user:{USER}")
        assert await store.reclaim(now=NOW) == 1
        assert await shards(store, f"user:{USER}") == {0: (0, 0.0)}
        assert await store.spend(scope="global", period=DAY) == 0.0


# The one-call function decides as ledger_rules does


async def test_reserve_decides_as_ledger_rules_for_random_limits(schema: str) -> None:
    rng = random.Random(21)
    async with pools(schema, 1) as (store,):
        for i in range(60):
            user, workspace = f"u{i % 5}", f"w{i % 3}"
            before = await store.usage(user, now=NOW)
            totals = {
                "user_day": (before.day_credits, 0.0),
                "user_month": (before.month_credits, before.month_usd),
                "workspace_day": (0, await store.spend(scope=f"workspace:{workspace}", period=DAY)),
                "global_day": (0, await store.spend(scope="global", period=DAY)),
            }

            def around(value: float) -> float | None:
                return rng.choice([None, value, value + 0.25, value + 1.0, max(value - 0.25, 0.0)])

            credits, usd = rng.randrange(0, 3), rng.choice([0.0, 0.25, 0.5])
            day_limit = around(float(totals["user_day"][0] + credits))
            month_limit = around(float(totals["user_month"][0] + credits))
            limits = Limits(
                daily_credits=None if day_limit is None else int(day_limit),
                monthly_credits=None if month_limit is None else int(month_limit),
                user_monthly_usd=around(totals["user_month"][1] + usd),
                workspace_daily_usd=around(totals["workspace_day"][1] + usd),
                global_daily_usd=around(totals["global_day"][1] + usd),
            )
            expected = refusal(limits, credits=credits, usd=usd, **totals)
            result = await hold(store, limits, user_key=user, workspace_id=workspace, credits=credits, usd=usd)
            if expected is None:
                assert isinstance(result, Reservation), (limits, totals, result)
            else:
                assert result == expected, (limits, totals)


async def test_credit_limits_beyond_bigint_still_work(schema: str) -> None:
    async with pools(schema, 1) as (store,):
        huge = Limits(daily_credits=10**30, monthly_credits=-(10**30))
        assert await hold(store, huge) == Refusal("monthly", -(10**30), 0)
        assert isinstance(await hold(store, Limits(10**30, 10**30)), Reservation)


# Migration 2


async def test_a_fresh_schema_gets_the_view_and_the_functions(schema: str) -> None:
    async with pools(schema, 1) as (store,):
        assert await store.schema_version() == LATEST >= 2
        async with store.transaction() as conn:
            kinds = {
                r["table_name"]: r["table_type"]
                for r in await conn.fetch(
                    "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = $1", schema
                )
            }
            functions = {
                r["proname"]
                for r in await conn.fetch(
                    "SELECT proname FROM pg_proc JOIN pg_namespace n ON n.oid = pronamespace WHERE nspname = $1",
                    schema,
                )
            }
        assert kinds["usage_counters"] == "VIEW" and kinds["usage_shards"] == "BASE TABLE"
        assert {"ledger_reserve", "ledger_settle", "ledger_bump"} <= functions


async def test_migrating_a_version_1_schema_keeps_counters_and_held_reservations(schema: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
    try:
        await schema_at_version(conn, schema, 1)
        # What version 1 wrote: two committed credits ($0.5) and one held ($0.25) by USER today.
        await conn.execute(
            "INSERT INTO usage_counters (scope, period, credits, usd) VALUES ($1, $2, 3, 0.75), ($1, $3, 3, 0.75),"
            " ($4, $2, 3, 0.75), ('global', $2, 3, 0.75)",
            f"user:{USER}",
            DAY,
            MONTH,
            f"workspace:{WORKSPACE}",
        )
        await conn.execute(
            "INSERT INTO reservations (id, user_key, workspace_id, credits, usd, day, month, state, owner, created_at,"
            " expires_at) VALUES ('old', $1, $2, 1, 0.25, $3, $4, 'held', 'proc-old', $5, $6)",
            USER,
            WORKSPACE,
            DAY,
            MONTH,
            NOW,
            NOW + timedelta(hours=1),
        )
    finally:
        await conn.close()

    async with pools(schema) as (first, second):
        assert await first.schema_version() == LATEST
        assert await first.usage(USER, now=NOW) == Usage(3, 3, 0.75)
        assert await second.spend(scope="global", period=DAY) == 0.75
        assert await shards(first, "global") == {0: (3, 0.75)}
        limits = Limits(daily_credits=3, monthly_credits=None, global_daily_usd=1.0)
        assert await hold(first, limits, user_key="other", usd=0.5) == Refusal("global_budget", 1.0, 0.75)
        assert await second.refund("old", usd=0.0, now=NOW)
        assert await first.usage(USER, now=NOW) == Usage(2, 2, 0.5)
        assert await first.spend(scope=f"workspace:{WORKSPACE}", period=DAY) == 0.5
        assert isinstance(await hold(first, limits, usd=0.5), Reservation)
        assert await hold(second, limits, user_key="other", usd=0.25) == Refusal("global_budget", 1.0, 1.0)
