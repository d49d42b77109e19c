"""What only the Postgres backend promises: URLs, schema isolation, types, cross-process locking, ping."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import asyncpg
import pytest

from bot.store import Limits, PostgresStore, Reservation, open_store
from bot.store.postgres_schema import LATEST, MIGRATIONS
from tests.store import NOW, USER, hold
from tests.store.conftest import POSTGRES_URL, fresh_schema, schema_at_version, terminate_backend

SECRET = "s3cr3t-pa55"


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with fresh_schema() as name:
        yield name


@pytest.fixture
async def pg(schema: str) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(POSTGRES_URL, schema=schema)
    await store.open()
    yield store
    await store.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dsn_via(host: str, port: int) -> str:
    parts = urlsplit(POSTGRES_URL)
    user_info = parts.netloc.rpartition("@")[0]
    return parts._replace(netloc=f"{user_info}@{host}:{port}" if user_info else f"{host}:{port}").geturl()


# URLs


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://bot:{SECRET}@db.internal:5432/bananabot",
        f"postgres://bot:{SECRET}@db.internal/bananabot",
        f"postgresql+asyncpg://bot:{SECRET}@db.internal/bananabot?sslmode=require",
        f"postgresql://bot@db.internal/bananabot?password={SECRET}",
    ],
)
def test_open_store_takes_postgres_urls_and_hides_the_password(url: str) -> None:
    store = open_store(url)
    assert isinstance(store, PostgresStore)
    assert SECRET not in repr(store) and SECRET not in store.url
    assert store.url.startswith("postgresql://bot") and "db.internal" in store.url


def test_a_malformed_postgres_url_is_refused_without_the_password() -> None:
    with pytest.raises(ValueError, match="malformed Postgres URL") as error:
        open_store(f"postgresql://bot:{SECRET}@db:notaport/bananabot")
    assert SECRET not in str(error.value)


def test_unknown_schemes_keep_their_message() -> None:
    with pytest.raises(ValueError, match="unsupported store URL scheme 'mysql'"):
        open_store("mysql://db/bananabot")


@pytest.mark.parametrize("name", ["Public", "a-b", "x; DROP TABLE turns", "", "1abc", "a" * 64])
def test_schema_names_are_plain_identifiers(name: str) -> None:
    with pytest.raises(ValueError, match="schema name"):
        PostgresStore(POSTGRES_URL, schema=name)


# Schema


async def test_concurrent_migrations_on_a_fresh_schema_apply_each_step_once(schema: str) -> None:
    stores = [PostgresStore(POSTGRES_URL, schema=schema) for _ in range(4)]
    try:
        await asyncio.gather(*(store.open() for store in stores))
        assert {await store.schema_version() for store in stores} == {LATEST}
        async with stores[0].transaction() as conn:
            applied = await conn.fetch("SELECT version, description FROM schema_migrations ORDER BY version")
            tables = {
                row["table_name"]
                for row in await conn.fetch(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
                )
            }
    finally:
        for store in stores:
            await store.close()
    assert [(row["version"], row["description"]) for row in applied] == [(v, d) for v, d, _ in MIGRATIONS]
    assert {"schema_migrations", "sessions", "turns", "blobs", "turn_blobs", "reservations"} <= tables
    assert {"usage_counters", "user_policies", "grants", "seen_events", "thread_leases"} <= tables


async def test_column_types(pg: PostgresStore, schema: str) -> None:
    async with pg.transaction() as conn:
        rows = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = $1",
            schema,
        )
    types = {(row["table_name"], row["column_name"]): row["data_type"] for row in rows}
    assert types["turns", "created_at"] == "timestamp with time zone"
    assert types["reservations", "expires_at"] == "timestamp with time zone"
    assert types["blobs", "data"] == "bytea"
    async with pg.transaction() as conn:
        storage = await conn.fetchval(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = 'blobs'::regclass AND attname = 'data'"
        )
    assert storage == b"e"  # EXTERNAL ("char" reads back as bytes): out of line, no pglz attempt on images
    assert types["usage_counters", "usd"] == "double precision"
    assert types["turns", "request_json"] == "text"  # not jsonb: byte-exact thought signatures


async def test_a_turn_pending_from_before_migration_4_reads_back_ownerless(schema: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
    try:
        await schema_at_version(conn, schema, 3)
        await conn.execute(
            "INSERT INTO sessions (id, thread_key, created_by, created_at) VALUES ('s1', 't', $1, $2)", USER, NOW
        )
        await conn.execute(
            "INSERT INTO turns (id, session_id, kind, user_key, user_name, prompt, model, request_json, created_at,"
            " status) VALUES ('t1', 's1', 'imagine', $1, 'Ada', 'p', 'm', '{}', $2, 'pending')",
            USER,
            NOW,
        )
    finally:
        await conn.close()

    store = PostgresStore(POSTGRES_URL, schema=schema)
    await store.open()
    try:
        assert await store.schema_version() == LATEST
        turn = await store.get_turn("t1")
        assert turn is not None and turn.status == "pending" and turn.owner is None
        assert await store.pending_turn_owners() == []
        assert await store.fail_pending_turns(dead_owners=(), before=NOW + timedelta(seconds=1), now=NOW) == 0
        assert (
            await store.fail_pending_turns(dead_owners=(), before=NOW + timedelta(seconds=1), now=NOW, ownerless=True)
            == 1
        )
    finally:
        await store.close()


async def test_the_database_allows_one_active_session_per_thread(pg: PostgresStore) -> None:
    session = await pg.get_or_create_session(thread_key="t", user_key=USER, now=NOW)
    assert session.created_at.tzinfo is not None and session.created_at.utcoffset() == timedelta(0)
    with pytest.raises(asyncpg.UniqueViolationError):
        async with pg.transaction() as conn:
            await conn.execute(
                "INSERT INTO sessions (id, thread_key, created_by, created_at) VALUES ('x', 't', 'u', now())"
            )
    await pg.end_session(session.id, now=NOW)
    assert (await pg.get_or_create_session(thread_key="t", user_key=USER, now=NOW)).id != session.id


async def test_naive_datetimes_are_refused(pg: PostgresStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        await pg.claim_event("e", now=datetime(2026, 11, 21, 12))  # noqa: DTZ001


async def test_using_an_unopened_store_says_so() -> None:
    with pytest.raises(RuntimeError, match="not open"):
        await PostgresStore(POSTGRES_URL).get_session("s")


# Locking across processes


async def test_two_pools_racing_200_reservations_grant_exactly_50(schema: str) -> None:
    first, second = PostgresStore(POSTGRES_URL, schema=schema), PostgresStore(POSTGRES_URL, schema=schema)
    await asyncio.gather(first.open(), second.open())
    try:
        # Ten users in two workspaces share one global budget: the "global" counter row is the contended one.
        limits = Limits(daily_credits=None, monthly_credits=None, global_daily_usd=25.0)
        results = await asyncio.gather(
            *(
                hold(store, limits, user_key=f"u{i % 10}", workspace_id=f"w{i % 2}", usd=0.5, owner=f"p{i % 2}")
                for i, store in enumerate([first, second] * 100)
            )
        )
        granted = [r for r in results if isinstance(r, Reservation)]
        assert len(granted) == 50
        assert all(r.scope == "global_budget" for r in results if not isinstance(r, Reservation))
        assert await first.spend(scope="global", period="2026-11-21") == 25.0
        assert await second.spend(scope="workspace:w0", period="2026-11-21") == 0.5 * sum(
            r.workspace_id == "w0" for r in granted
        )
        assert sum([(await first.usage(f"u{i}", now=NOW)).day_credits for i in range(10)]) == 50
    finally:
        await first.close()
        await second.close()


async def test_mixed_ledger_traffic_from_two_pools_never_deadlocks_and_stays_consistent(schema: str) -> None:
    stores = [PostgresStore(POSTGRES_URL, schema=schema), PostgresStore(POSTGRES_URL, schema=schema)]
    await asyncio.gather(*(store.open() for store in stores))
    rng = random.Random(11)
    days = [NOW - timedelta(days=1), NOW]  # reclaim then spans periods: the lock order must hold across days
    limits = Limits(daily_credits=None, monthly_credits=None)
    held: list[Reservation] = []

    async def worker(store: PostgresStore, n: int) -> None:
        for _ in range(n):
            roll = rng.random()
            if roll < 0.5 or not held:
                result = await hold(
                    store, limits, user_key=f"u{rng.randrange(3)}", usd=0.25, now=rng.choice(days), ttl=timedelta(0)
                )
                assert isinstance(result, Reservation)
                held.append(result)
            elif roll < 0.8:
                reservation = held.pop(rng.randrange(len(held)))
                settle = store.commit if rng.random() < 0.5 else store.refund
                await settle(reservation.id, usd=0.125, now=NOW)
            elif roll < 0.9:
                await store.reclaim(now=NOW + timedelta(seconds=1))
            else:
                await store.reset_usage("u-reset", now=NOW)

    try:
        await asyncio.gather(*(worker(store, 40) for store in stores for _ in range(4)))
        await stores[0].reclaim(now=NOW + timedelta(days=1))
        assert await stores[0].held_owners() == []
        async with stores[0].transaction() as conn:
            expected = await conn.fetch(
                "SELECT day, SUM(credits) FILTER (WHERE state = 'committed') AS credits, SUM(actual_usd) AS usd"
                " FROM reservations GROUP BY day"
            )
        for row in expected:
            assert await stores[1].spend(scope="global", period=row["day"]) == pytest.approx(row["usd"])
            async with stores[1].transaction() as conn:
                credits = await conn.fetchval(
                    "SELECT credits FROM usage_counters WHERE scope = 'global' AND period = $1", row["day"]
                )
            assert credits == (row["credits"] or 0)
    finally:
        for store in stores:
            await store.close()


# Ping


async def test_ping_is_false_quickly_for_a_closed_port_and_open_hides_the_password() -> None:
    parts = urlsplit(POSTGRES_URL)
    store = PostgresStore(f"postgresql://{parts.username or 'postgres'}:{SECRET}@127.0.0.1:{_closed_port()}/test")
    with pytest.raises(OSError) as error:
        await store.open()
    assert SECRET not in str(error.value)
    started = time.monotonic()
    assert not await store.ping()
    assert time.monotonic() - started < 1.0
    await store.close()


@asynccontextmanager
async def _proxy() -> AsyncIterator[tuple[int, asyncio.Event]]:
    """A TCP relay to the test server; setting the event cuts every connection and stops listening."""
    target = urlsplit(POSTGRES_URL)
    writers: list[asyncio.StreamWriter] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    tasks: list[asyncio.Task[None]] = []

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(target.hostname, target.port or 5432)
        writers.extend([client_writer, server_writer])
        tasks.extend(
            [
                asyncio.create_task(pipe(client_reader, server_writer)),
                asyncio.create_task(pipe(server_reader, client_writer)),
            ]
        )

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    cut = asyncio.Event()

    async def cutter() -> None:
        await cut.wait()
        server.close()
        for writer in writers:
            writer.close()
        for task in tasks:
            task.cancel()

    watcher = asyncio.create_task(cutter())
    try:
        yield int(server.sockets[0].getsockname()[1]), cut
    finally:
        cut.set()
        await watcher
        await server.wait_closed()


async def test_ping_turns_false_when_the_server_connection_is_gone(schema: str) -> None:
    async with _proxy() as (port, cut):
        store = PostgresStore(_dsn_via("127.0.0.1", port), schema=schema, ping_timeout=1.0)
        await store.open()
        try:
            assert await store.ping()
            cut.set()
            await asyncio.sleep(0.05)
            started = time.monotonic()
            assert not await store.ping()
            assert time.monotonic() - started < 1.5
        finally:
            await store.close()


async def test_the_pool_reconnects_after_the_server_dropped_its_connection(pg: PostgresStore) -> None:
    async with pg.transaction() as conn:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
    await terminate_backend(pid)
    for _ in range(40):  # the first ping may still meet the dying connection
        if await pg.ping():
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the pool never reconnected")
    assert await pg.claim_event("after-restart", now=NOW)


def test_the_url_may_name_a_schema() -> None:
    from bot.store import open_store

    store = open_store("postgresql://bot:secret@db:5432/bananabot?schema=tenant_a&sslmode=disable")
    assert getattr(store, "schema", None) == "tenant_a"
    assert "secret" not in repr(store) and "schema=" not in getattr(store, "url", "")
