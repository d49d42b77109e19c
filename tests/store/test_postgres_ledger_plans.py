"""Postgres ledger (migration 5): settling finds its reservations by the primary key, however the table grew.

plpgsql keeps a generic plan per statement and connection until the table's statistics change. Planned while
`reservations` was small, the settle batch kept a sequential scan, and its lookups a scan of the state indexes
(whose held entries include every settled row's old version until a vacuum): each settle read the whole table.
These tests warm one connection's plans on a small table, grow the table with autovacuum off (so no statistics
arrive to replan it), then count what one settle scans, in the transaction's own statistics.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from bot.store import Limits, PostgresStore, Reservation
from bot.store import postgres_ledger as ledger
from bot.store.postgres_schema import LATEST
from tests.store import NOW
from tests.store.conftest import POSTGRES_URL, fresh_schema, opened, schema_at_version

NO_LIMITS = Limits(daily_credits=None, monthly_credits=None)
GROWN = 5000  # settled reservations added after the plans were made


@pytest.fixture
async def conn() -> AsyncIterator[asyncpg.Connection]:
    """One connection (one plan cache) on a fresh schema at the latest version, reservations never autovacuumed."""
    async with fresh_schema() as schema, opened([PostgresStore(POSTGRES_URL, schema=schema)]):
        connection = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
        try:
            await connection.execute("ALTER TABLE reservations SET (autovacuum_enabled = false)")
            yield connection
        finally:
            await connection.close()


def calls(prefix: str, n: int) -> list[ledger.ReserveCall]:
    return [
        ledger.reserve_call(
            user_key=f"{prefix}-{i}",
            workspace_id="w",
            credits=1,
            usd=0.25,
            limits=NO_LIMITS,
            now=NOW,
            ttl=timedelta(minutes=10),
            owner="proc-a",
        )
        for i in range(n)
    ]


async def reserve(conn: asyncpg.Connection, prefix: str, n: int) -> list[str]:
    outcomes = await ledger.reserve_batch(conn, calls(prefix, n))
    assert all(isinstance(outcome, Reservation) for outcome in outcomes), outcomes
    return [outcome.id for outcome in outcomes if isinstance(outcome, Reservation)]


def commits(ids: list[str]) -> list[ledger.SettleCall]:
    return [ledger.SettleCall(reservation_id, False, 0.5, NOW) for reservation_id in ids]


async def grow(conn: asyncpg.Connection, rows: int) -> None:
    """Settled reservations, as a busy day leaves them (no ANALYZE: the cached plans stay as they were)."""
    await conn.execute(
        "INSERT INTO reservations (id, user_key, workspace_id, credits, usd, actual_usd, day, month, state, owner,"
        " created_at, expires_at, settled_at)"
        " SELECT 'old-' || g, 'user-' || g % 50, 'w', 1, 0.25, 0.25, '2026-11-21', '2026-11', 'committed', 'proc-a',"
        " $1, $1, $1 FROM generate_series(1, $2) AS g",
        NOW,
        rows,
    )


async def scans(conn: asyncpg.Connection) -> dict[str, int]:
    """Scans of reservations and of each of its indexes this backend has not reported yet (take differences)."""
    row = await conn.fetchrow(
        "SELECT seq_scan,"
        " pg_stat_get_xact_numscans('reservations_pkey'::regclass) AS pkey,"
        " pg_stat_get_xact_numscans('reservations_by_state'::regclass) AS by_state,"
        " pg_stat_get_xact_numscans('reservations_by_owner'::regclass) AS by_owner"
        " FROM pg_stat_xact_user_tables WHERE relid = 'reservations'::regclass"
    )
    return dict(row)


def since(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before[name] for name in after}


async def warm_then_grow(conn: asyncpg.Connection) -> None:
    """Enough settles on a small table that plpgsql would settle on generic plans, then a much larger table."""
    for round_ in range(8):
        ids = await reserve(conn, f"warm{round_}", 4)
        assert await ledger.settle_batch(conn, commits(ids)) == [True] * 4
        assert await ledger.settle(conn, ledger.SettleCall(ids[0], True, 0.0, NOW)) is False
        (single,) = await reserve(conn, f"warm-single{round_}", 1)
        assert await ledger.settle(conn, commits([single])[0]) is True
    await grow(conn, GROWN)


async def test_a_settle_batch_on_a_grown_table_goes_by_the_primary_key(conn: asyncpg.Connection) -> None:
    await warm_then_grow(conn)
    ids = await reserve(conn, "late", 4)
    async with conn.transaction():
        before = await scans(conn)
        assert await ledger.settle_batch(conn, commits([*ids, "old-7", "missing"])) == [True] * 4 + [False, False]
        seen = since(before, await scans(conn))
    assert seen["seq_scan"] == 0, seen
    assert seen["by_state"] == seen["by_owner"] == 0, seen
    assert seen["pkey"] > 0, seen
    states = await conn.fetch("SELECT state FROM reservations WHERE id = ANY($1::text[])", ids)
    assert {row["state"] for row in states} == {"committed"}


async def test_a_single_settle_on_a_grown_table_goes_by_the_primary_key(conn: asyncpg.Connection) -> None:
    await warm_then_grow(conn)
    (late,) = await reserve(conn, "late", 1)
    async with conn.transaction():
        before = await scans(conn)
        assert await ledger.settle(conn, commits([late])[0]) is True
        seen = since(before, await scans(conn))
    assert seen["seq_scan"] == 0, seen
    assert seen["by_state"] == seen["by_owner"] == 0, seen
    assert seen["pkey"] > 0, seen


async def test_a_reservation_settled_while_a_batch_waits_for_it_is_left_out() -> None:
    """The batch's lookup re-checks a row settled while it waited for the lock: counters move once."""
    async with fresh_schema() as schema, opened([PostgresStore(POSTGRES_URL, schema=schema)]) as (store,):
        first = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
        second = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
        try:
            ids = await reserve(first, "race", 2)
            async with first.transaction():
                assert await ledger.settle(first, ledger.SettleCall(ids[0], True, 0.0, NOW)) is True
                waiting = asyncio.create_task(ledger.settle_batch(second, commits(ids)))
                await asyncio.sleep(0.3)
                assert not waiting.done()  # it waits for ids[0]'s row lock
            assert await asyncio.wait_for(waiting, 10) == [False, True]
            states = await first.fetch("SELECT id, state FROM reservations ORDER BY id")
            assert {row["id"]: row["state"] for row in states} == {ids[0]: "refunded", ids[1]: "committed"}
            assert (await store.usage("race-0", now=NOW)).day_credits == 0
            usage = await store.usage("race-1", now=NOW)
            assert (usage.day_credits, usage.month_usd) == (1, 0.5)
        finally:
            await first.close()
            await second.close()


async def test_a_hold_made_before_migration_5_settles_after_it() -> None:
    async with fresh_schema() as schema:
        conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
        try:
            await schema_at_version(conn, schema, 4)
            (before,) = await reserve(conn, "upgrade", 1)
        finally:
            await conn.close()
        async with opened([PostgresStore(POSTGRES_URL, schema=schema)]) as (store,):
            assert await store.schema_version() == LATEST
            assert await store.commit(before, usd=0.5, now=NOW) is True
            assert await store.commit(before, usd=0.5, now=NOW) is False
            usage = await store.usage("upgrade-0", now=NOW)
            assert (usage.day_credits, usage.month_usd) == (1, 0.5)
