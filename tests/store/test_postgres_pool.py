"""The store's own connection pool: lazy growth, fair waiting, and only healthy connections handed out again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import asyncpg
import pytest

from bot.store.postgres_pool import ConnectionPool, PoolClosedError
from tests.store.conftest import require_postgres, terminate_backend


@pytest.fixture
async def url() -> str:
    return await require_postgres()


@pytest.fixture
async def pool(url: str) -> AsyncIterator[ConnectionPool]:
    made = ConnectionPool(partial(asyncpg.connect, url), min_size=0, max_size=2)
    await made.open()
    yield made
    made.terminate()


async def settle() -> None:
    """Let every ready task run (waiters queue up, handed connections arrive)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def until(condition: Callable[[], bool]) -> None:
    """Wait (boundedly) for tasks that open connections to get there."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail("never happened")


async def test_sizes_are_checked() -> None:
    with pytest.raises(ValueError, match="pool sizes"):
        ConnectionPool(partial(asyncpg.connect, "postgresql://x"), min_size=3, max_size=2)


async def test_open_makes_min_size_and_use_grows_lazily_to_max(url: str) -> None:
    pool = ConnectionPool(partial(asyncpg.connect, url), min_size=1, max_size=3)
    await pool.open()
    try:
        assert pool.size == 1
        pids = await asyncio.gather(*(pool.fetchval("SELECT pg_backend_pid() FROM pg_sleep(0.05)") for _ in range(6)))
        assert pool.size == 3 and len(set(pids)) == 3
    finally:
        await pool.close()
    assert pool.size == 0


async def test_waiters_are_served_first_come_first_served(pool: ConnectionPool) -> None:
    order: list[int] = []
    release = asyncio.Event()

    async def hold(i: int) -> None:
        async with pool.acquire():
            order.append(i)
            await release.wait()

    holders = [asyncio.create_task(hold(i)) for i in range(2)]
    await until(lambda: len(order) == 2)
    waiters = []
    for i in range(2, 5):
        waiters.append(asyncio.create_task(hold(i)))
        await settle()
    assert sorted(order) == [0, 1] and pool.size == 2
    release.set()
    await asyncio.gather(*holders, *waiters)
    assert order[2:] == [2, 3, 4] and pool.size == 2


async def test_a_server_error_keeps_the_connection(pool: ConnectionPool) -> None:
    pid = await pool.fetchval("SELECT pg_backend_pid()")
    with pytest.raises(asyncpg.DivisionByZeroError):
        await pool.fetchval("SELECT 1 / 0")
    async with pool.acquire() as conn, conn.transaction():
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute("CREATE TEMP TABLE t (k int PRIMARY KEY); INSERT INTO t VALUES (1), (1)")
    assert await pool.fetchval("SELECT pg_backend_pid()") == pid
    assert pool.size == 1


async def test_a_query_cancelled_midway_costs_its_connection(pool: ConnectionPool) -> None:
    pid = await pool.fetchval("SELECT pg_backend_pid()")
    sleeper = asyncio.create_task(pool.fetchval("SELECT pg_sleep(30)"))
    await asyncio.sleep(0.1)
    sleeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeper
    assert pool.size == 0
    assert await pool.fetchval("SELECT pg_backend_pid()") != pid


async def test_a_connection_killed_by_the_server_is_replaced(pool: ConnectionPool) -> None:
    pid = await pool.fetchval("SELECT pg_backend_pid()")
    await terminate_backend(pid)
    for _ in range(40):  # the first query may still meet the dying connection
        try:
            if await pool.fetchval("SELECT pg_backend_pid()") != pid:
                break
        except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError):
            pass  # the dead connection's one failure; the pool drops it
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the pool kept handing out the dead connection")
    assert pool.size == 1


async def test_a_connection_idle_too_long_is_closed_not_handed_out(url: str) -> None:
    # A load balancer or PgBouncer may have dropped it silently: the first statement on it would fail.
    now = [0.0]
    pool = ConnectionPool(
        partial(asyncpg.connect, url), min_size=1, max_size=2, max_idle_seconds=60, clock=lambda: now[0]
    )
    await pool.open()
    try:
        async with pool.acquire() as first:
            pid = await first.fetchval("SELECT pg_backend_pid()")
        now[0] = 59.0
        assert await pool.fetchval("SELECT pg_backend_pid()") == pid  # idle 59 s: still used
        now[0] = 120.0
        async with pool.acquire() as second:
            assert await second.fetchval("SELECT pg_backend_pid()") != pid
        assert first.is_closed() and pool.size == 1
    finally:
        await pool.close()


async def test_a_transaction_left_open_is_not_handed_out_again(pool: ConnectionPool) -> None:
    async with pool.acquire() as conn:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        await conn.execute("BEGIN")
    assert pool.size == 0
    assert await pool.fetchval("SELECT pg_backend_pid()") != pid


async def test_a_cancelled_waiter_passes_its_turn_on(url: str) -> None:
    pool = ConnectionPool(partial(asyncpg.connect, url), min_size=0, max_size=1)
    try:
        release = asyncio.Event()

        async def hold() -> None:
            async with pool.acquire():
                await release.wait()

        holder = asyncio.create_task(hold())
        await until(lambda: pool.size == 1)
        await settle()
        impatient = asyncio.create_task(pool.fetchval("SELECT 1"))
        await settle()
        patient = asyncio.create_task(pool.fetchval("SELECT 2"))
        await settle()
        impatient.cancel()
        release.set()
        assert await patient == 2
        await holder
        assert impatient.cancelled() and pool.size == 1
    finally:
        await pool.close()


async def test_a_failed_connect_frees_its_slot_for_a_waiter(url: str) -> None:
    attempts: list[int] = []
    gate = asyncio.Event()

    async def flaky() -> asyncpg.Connection:
        attempts.append(len(attempts))
        if len(attempts) == 1:
            await gate.wait()
            raise OSError("connection refused")
        return await asyncpg.connect(url)

    connect: Callable[[], Awaitable[asyncpg.Connection]] = flaky
    pool = ConnectionPool(connect, min_size=0, max_size=1)
    try:
        first = asyncio.create_task(pool.fetchval("SELECT 1"))
        await settle()
        second = asyncio.create_task(pool.fetchval("SELECT 2"))
        await settle()
        assert pool.size == 1 and len(attempts) == 1  # the second waits for the slot the first is opening
        gate.set()
        with pytest.raises(OSError, match="refused"):
            await first
        assert await second == 2
        assert pool.size == 1 and len(attempts) == 2
    finally:
        await pool.close()


async def test_close_waits_for_checked_out_connections_and_refuses_new_work(pool: ConnectionPool) -> None:
    release = asyncio.Event()
    inside: list[int] = []

    async def hold() -> None:
        async with pool.acquire() as conn:
            inside.append(1)
            await release.wait()
            assert await conn.fetchval("SELECT 1") == 1  # still usable while the pool closes

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    await until(lambda: len(inside) == 2)
    queued = asyncio.create_task(pool.fetchval("SELECT 1"))
    await settle()
    closing = asyncio.create_task(pool.close())
    await settle()
    assert not closing.done()
    with pytest.raises(PoolClosedError):
        await queued
    with pytest.raises(PoolClosedError):
        await pool.fetchval("SELECT 1")
    release.set()
    await asyncio.gather(*holders, closing)
    assert pool.size == 0


async def test_terminate_drops_every_connection_at_once(pool: ConnectionPool) -> None:
    async with pool.acquire() as conn:
        pool.terminate()
        assert conn.is_closed() and pool.size == 0
    assert pool.size == 0
    with pytest.raises(PoolClosedError):
        await pool.fetchval("SELECT 1")
