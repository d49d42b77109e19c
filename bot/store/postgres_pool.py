"""A lean asyncpg connection pool: a list of idle connections and a queue of waiters, nothing per call.

asyncpg's own `Pool` wraps every checkout in a proxy, runs a reset query on every release (one more round trip)
and shields the release in a new task. With the ledger at one statement per call, that bookkeeping took about as
much of the event loop as the statements themselves (a profile of 64 tasks doing reserve+commit; the pool alone
took the bench from ~1,300 to ~1,700 pairs/s before batching). This pool keeps only what the store relies on:

- connections open lazily up to `max_size`; waiters are served first come, first served;
- a connection goes back to the pool only when it is healthy: open, outside a transaction, and the work on it
  ended normally or with a server ERROR (the session is still sound after one). On anything else (cancellation,
  timeout, a FATAL error such as a killed backend, a lost connection) it is terminated and its slot freed;
- a connection idle longer than `max_idle_seconds` is closed instead of handed out: load balancers, PgBouncer and
  cloud NATs drop idle TCP connections silently, and the first statement on one would fail (asyncpg's own pool
  does the same after 300 s, its default);
- no reset between checkouts: the store leaves no session state behind (no SET, LISTEN, cursor or session-level
  advisory lock; the migration lock is transaction-scoped), so there is nothing to undo;
- `close()` waits for checked-out connections to come back, then closes them all; `terminate()` does not wait.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg


class PoolClosedError(asyncpg.InterfaceError):  # type: ignore[misc]  # asyncpg is untyped
    """The pool is closing or closed."""


def _session_survives(error: asyncpg.PostgresError) -> bool:
    """An ERROR ends the statement (or transaction); FATAL and PANIC end the session (e.g. the backend was killed)."""
    severity = getattr(error, "severity_en", None) or getattr(error, "severity", None) or "ERROR"
    return str(severity).upper() not in {"FATAL", "PANIC"}


MAX_IDLE_SECONDS = 300.0


class ConnectionPool:
    """Connections from `connect`, at most `max_size` of them open at once; `open()` makes `min_size` first."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        *,
        min_size: int,
        max_size: int,
        max_idle_seconds: float = MAX_IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ValueError(f"pool sizes must satisfy 0 <= min_size ({min_size}) <= max_size ({max_size}), max >= 1")
        self._connect = connect
        self._min_size = min_size
        self._max_size = max_size
        self._max_idle = max_idle_seconds
        self._clock = clock
        self._size = 0  # connections open or being opened
        self._idle: list[asyncpg.Connection] = []  # the most recently used last: it is handed out first
        self._idle_since: dict[asyncpg.Connection, float] = {}
        self._busy: set[asyncpg.Connection] = set()
        # A waiter gets a connection, or None: "a slot is free, open one yourself".
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._closing = False
        self._all_back = asyncio.Event()
        self._all_back.set()

    @property
    def size(self) -> int:
        """Connections open (idle or checked out) or being opened."""
        return self._size

    async def open(self) -> None:
        """Open `min_size` connections; if one fails, the others are closed and the error raised."""
        try:
            for _ in range(self._min_size - self._size):
                self._size += 1
                try:
                    self._keep(await self._connect())
                except BaseException:
                    self._size -= 1
                    raise
        except BaseException:
            self.terminate()
            raise

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await self._checkout()
        try:
            yield conn
        except asyncpg.PostgresError as error:
            if _session_survives(error):
                self._checkin(conn)  # the server refused a statement: the session itself is fine
            else:
                self._discard(conn)
            raise
        except BaseException:
            self._discard(conn)  # cancelled mid-query, timed out or lost: don't guess its state
            raise
        self._checkin(conn)

    async def fetch(self, query: str, *args: object) -> list[Any]:
        async with self.acquire() as conn:
            return list(await conn.fetch(query, *args))

    async def fetchrow(self, query: str, *args: object) -> Any:
        async with self.acquire() as conn:
            return await conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: object) -> Any:
        async with self.acquire() as conn:
            return await conn.fetchval(query, *args)

    async def execute(self, query: str, *args: object) -> str:
        async with self.acquire() as conn:
            return str(await conn.execute(query, *args))

    async def close(self) -> None:
        """Refuse new checkouts, wait for every checked-out connection to come back, then close them all."""
        self._close_waiters()
        await self._all_back.wait()
        idle, self._idle = self._idle, []
        self._idle_since.clear()
        self._size -= len(idle)
        await asyncio.gather(*(conn.close() for conn in idle), return_exceptions=True)

    def terminate(self) -> None:
        """Close every connection at once, checked out or not."""
        self._close_waiters()
        for conn in [*self._idle, *self._busy]:
            conn.terminate()
        self._size -= len(self._idle) + len(self._busy)
        self._idle.clear()
        self._idle_since.clear()
        self._busy.clear()
        self._all_back.set()

    # Internals

    def _close_waiters(self) -> None:
        self._closing = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PoolClosedError("the Postgres pool is closing"))

    async def _checkout(self) -> asyncpg.Connection:
        if self._closing:
            raise PoolClosedError("the Postgres pool is closed")
        while self._idle:
            conn = self._idle.pop()
            since = self._idle_since.pop(conn, None)
            if not conn.is_closed():
                if since is None or self._clock() - since <= self._max_idle:
                    return self._lend(conn)
                conn.terminate()  # idle too long: maybe dropped on the way already, never worth the risk
            self._size -= 1
        if self._size < self._max_size:
            self._size += 1
        else:
            waiter: asyncio.Future[asyncpg.Connection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    self._give_back(waiter.result())  # handed over just as we were cancelled: pass it on
                raise
            if handed is not None:
                return handed  # lent to us by whoever handed it over
            # else a slot was kept for us (counted in _size): open a connection in it
        try:
            conn = await self._connect()
        except BaseException:
            self._give_back(None)
            raise
        if self._closing:
            self._size -= 1
            conn.terminate()
            raise PoolClosedError("the Postgres pool is closed")
        return self._lend(conn)

    def _give_back(self, handed: asyncpg.Connection | None) -> None:
        """Undo a checkout that never reached the caller: a lent connection, or a kept slot (None)."""
        if handed is not None:
            self._checkin(handed)
        else:
            self._size -= 1
            self._free_slot()

    def _lend(self, conn: asyncpg.Connection) -> asyncpg.Connection:
        self._busy.add(conn)
        self._all_back.clear()
        return conn

    def _returned(self, conn: asyncpg.Connection) -> bool:
        """Stop counting the connection as checked out; False when terminate() already dropped it."""
        if conn not in self._busy:
            return False
        self._busy.discard(conn)
        if not self._busy:
            self._all_back.set()
        return True

    def _checkin(self, conn: asyncpg.Connection) -> None:
        if not self._returned(conn):
            return
        if conn.is_closed() or conn.is_in_transaction():
            self._size -= 1
            conn.terminate()
            self._free_slot()
        else:
            self._pass_on(conn)

    def _discard(self, conn: asyncpg.Connection) -> None:
        if not self._returned(conn):
            return
        self._size -= 1
        conn.terminate()
        self._free_slot()

    def _pass_on(self, conn: asyncpg.Connection | None) -> None:
        """Hand a healthy idle connection (or a free slot, None) to the first live waiter, else keep it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                if conn is not None:
                    self._lend(conn)
                else:
                    self._size += 1  # the slot is the waiter's until it opens its connection
                waiter.set_result(conn)
                return
        if conn is not None:
            self._keep(conn)  # when closing, close() closes it once all are back

    def _keep(self, conn: asyncpg.Connection) -> None:
        self._idle.append(conn)
        self._idle_since[conn] = self._clock()

    def _free_slot(self) -> None:
        """A connection went away: a waiter, if any, may open a new one."""
        if self._waiters and self._size < self._max_size:
            self._pass_on(None)
