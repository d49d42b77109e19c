"""Postgres on grown tables: a session's turn walks (migration 7) and retention's purge (migration 8) use indexes.

The same method as test_postgres_ledger_plans: make the tables large, then count what one call scans, in the
transaction's own statistics. For the walks, plans are first cached while `turns` is small and the table grows with
autovacuum off (no statistics arrive to replan it): before migration 7 those plans read every turn, several times
per walk. Before migration 8, every purge read the whole of reservations, blobs and sessions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from bot.store import PostgresStore
from bot.store.postgres_rows import ANCESTORS, PURGE, ROOT
from tests.store import NOW
from tests.store.conftest import POSTGRES_URL, fresh_schema, opened

GROWN = 20_000  # turns added after the plans were made, in chains of 10


@pytest.fixture
async def conn() -> AsyncIterator[asyncpg.Connection]:
    """One connection (one plan cache) on a fresh schema at the latest version, turns never autovacuumed."""
    async with fresh_schema() as schema, opened([PostgresStore(POSTGRES_URL, schema=schema)]):
        connection = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
        try:
            await connection.execute("ALTER TABLE turns SET (autovacuum_enabled = false)")
            await connection.execute(
                "INSERT INTO sessions (id, thread_key, created_by, created_at) VALUES ('s', 't', 'u', $1)", NOW
            )
            yield connection
        finally:
            await connection.close()


async def add_turns(conn: asyncpg.Connection, prefix: str, count: int, *, chain: int) -> None:
    """`count` turns named prefix1, prefix2, …, each the child of the one before except every `chain`-th."""
    await conn.execute(
        "INSERT INTO turns (id, session_id, parent_id, kind, user_key, user_name, prompt, model, request_json,"
        " created_at, status)"
        " SELECT $1 || g, 's', CASE WHEN (g - 1) % $3 = 0 THEN NULL ELSE $1 || (g - 1) END, 'edit', 'u', 'u',"
        " 'a prompt', 'm', '{}', $4, 'done' FROM generate_series(1, $2) AS g",
        prefix,
        count,
        chain,
        NOW,
    )


async def scans(conn: asyncpg.Connection, table: str = "turns") -> dict[str, int]:
    """Scans of a table and of its primary key this backend has not reported yet (take differences)."""
    row = await conn.fetchrow(
        "SELECT seq_scan, pg_stat_get_xact_numscans($1::regclass) AS pkey"
        " FROM pg_stat_xact_user_tables WHERE relid = $2::regclass",
        f"{table}_pkey",
        table,
    )
    return dict(row)


async def test_walks_on_a_grown_table_go_by_the_primary_key(conn: asyncpg.Connection) -> None:
    await add_turns(conn, "warm-", 5, chain=5)
    for _ in range(8):  # past the five custom plans after which a prepared statement may keep a generic one
        assert len(await conn.fetch(ANCESTORS, "warm-5", 4)) == 4
        assert [row["id"] for row in await conn.fetch(ROOT, "warm-5")] == ["warm-1"]
    await add_turns(conn, "grown-", GROWN, chain=10)
    await add_turns(conn, "late-", 6, chain=6)
    async with conn.transaction():
        before = await scans(conn)
        walk = await conn.fetch(ANCESTORS, "late-6", 4)
        root = await conn.fetch(ROOT, "late-6")
        seen = {name: value - before[name] for name, value in (await scans(conn)).items()}
    assert [row["id"] for row in walk] == ["late-6", "late-5", "late-4", "late-3"]
    assert [row["id"] for row in root] == ["late-1"]
    assert seen["seq_scan"] == 0, seen
    assert seen["pkey"] > 0, seen


async def test_a_purge_with_nothing_due_reads_no_table_whole(conn: asyncpg.Connection) -> None:
    day = NOW.date().isoformat()
    await conn.execute(
        "INSERT INTO reservations (id, user_key, workspace_id, credits, usd, actual_usd, day, month, state, owner,"
        " created_at, expires_at, settled_at)"
        " SELECT 'r' || g, 'user-' || g % 50, 'w', 1, 0.25, 0.25, $2, $3, 'committed', 'p', $1, $1, $1"
        " FROM generate_series(1, 20000) AS g",
        NOW,
        day,
        day[:7],
    )
    await conn.execute(
        "INSERT INTO blobs (sha256, mime, size, data, touched_at)"
        " SELECT md5(g::text) || md5(g::text), 'image/png', 3, '\\x010203', $1 FROM generate_series(1, 5000) AS g",
        NOW,
    )
    await conn.execute(
        "INSERT INTO sessions (id, thread_key, created_by, created_at, ended_at)"
        " SELECT 's' || g, 't' || g, 'u', $1, $1 FROM generate_series(1, 5000) AS g",
        NOW,
    )
    await add_turns(conn, "grown-", 5000, chain=10)
    await conn.execute("ANALYZE")
    tables = ("reservations", "blobs", "sessions")
    async with conn.transaction():
        before = [await scans(conn, table) for table in tables]
        for statement in PURGE:
            await conn.execute(statement, NOW - timedelta(days=30))
        after = [await scans(conn, table) for table in tables]
    whole = {table: a["seq_scan"] - b["seq_scan"] for table, b, a in zip(tables, before, after, strict=True)}
    assert whole == dict.fromkeys(tables, 0)
    assert await conn.fetchval("SELECT count(*) FROM reservations") == 20000  # nothing was due
