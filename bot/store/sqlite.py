"""The SQLite store: one aiosqlite connection, explicit transactions, safe for several processes on one file."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
from typing_extensions import override

from bot.store import sqlite_ledger as ledger
from bot.store.base import (
    Limits,
    Refusal,
    Reservation,
    SessionRow,
    Store,
    TurnResult,
    TurnRow,
    Usage,
    UserPolicy,
)
from bot.store.sqlite_rows import (
    ANCESTORS,
    DEAD_SESSIONS,
    RESULT_COLUMNS,
    ROOT,
    TURN_COLUMNS,
    db_value,
    link_blobs,
    session_row,
    turn_row,
)
from bot.store.sqlite_schema import from_text, migrate, to_text, user_version

_in_transaction: ContextVar[SqliteStore | None] = ContextVar("sqlite_store_transaction", default=None)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SqliteStore(Store):
    """`Store` on one SQLite file (WAL), shared safely by coroutines and by processes.

    Coroutines share one connection, so an asyncio.Lock serializes every statement group: otherwise one
    coroutine's statement could land inside another's open transaction. Processes are serialized by SQLite's write
    lock: read-then-write operations run in BEGIN IMMEDIATE, and busy_timeout makes the loser wait, not fail.

    Args:
        path: The database file (parent directories are created), or ":memory:".
        clock: Wall clock for the few writes whose contract has no `now` (blob touch time); tests pin it.
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.path = path
        self._clock = clock
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        # Reads go through their own connection: in WAL mode they never wait behind the writer's lock, so a
        # /quota during a burst of image turns answers at once.
        self._reader: aiosqlite.Connection | None = None
        self._read_lock = asyncio.Lock()

    # Connection and transactions

    @override
    async def open(self) -> None:
        async with self._lock:
            if self._conn is None:
                self._conn = await self._connect()
            if self._reader is None and str(self.path) != ":memory:":
                self._reader = await aiosqlite.connect(self.path, isolation_level=None)
                self._reader.row_factory = aiosqlite.Row
                await self._reader.execute("PRAGMA busy_timeout = 5000")
                await self._reader.execute("PRAGMA query_only = ON")

    async def _connect(self) -> aiosqlite.Connection:
        if str(self.path) != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        try:
            await conn.execute("PRAGMA busy_timeout = 5000")  # first: the other pragmas may wait for a lock
            await _set_wal(conn)
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await migrate(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    @override
    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                await conn.close()
            if self._reader is not None:
                async with self._read_lock:
                    reader, self._reader = self._reader, None
                    await reader.close()

    def _connection(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("SqliteStore is not open: call `await store.open()` first")
        return self._conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error), holding the store's lock throughout."""
        if _in_transaction.get() is self:
            raise RuntimeError("SqliteStore transactions do not nest")
        async with self._lock:
            conn = self._connection()
            await conn.execute("BEGIN IMMEDIATE")
            token = _in_transaction.set(self)
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")
                raise
            else:
                await conn.execute("COMMIT")
            finally:
                _in_transaction.reset(token)

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[aiosqlite.Connection]:
        """The read connection (the writer's, under its lock, for ":memory:", which can't be opened twice)."""
        writer = self._connection()  # raises the usual error when the store is closed
        if self._reader is None:
            async with self._lock:
                yield writer
            return
        async with self._read_lock:
            yield self._reader

    async def _fetch(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        async with self._reading() as conn:
            return list(await conn.execute_fetchall(sql, params))

    async def _write(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> int:
        async with self._lock:
            cursor = await self._connection().execute(sql, params)
            return int(cursor.rowcount)

    @override
    async def schema_version(self) -> int:
        async with self._lock:
            return await user_version(self._connection())

    @override
    async def ping(self) -> bool:
        try:
            return bool((await self._fetch("SELECT 1"))[0][0] == 1)
        except (RuntimeError, sqlite3.Error, ValueError):
            return False

    # Sessions and turns

    @override
    async def active_session(self, thread_key: str) -> SessionRow | None:
        rows = await self._fetch("SELECT * FROM sessions WHERE thread_key = ? AND ended_at IS NULL", (thread_key,))
        return session_row(rows[0]) if rows else None

    @override
    async def get_or_create_session(self, *, thread_key: str, user_key: str, now: datetime) -> SessionRow:
        async with self.transaction() as conn:
            sql = "SELECT * FROM sessions WHERE thread_key = ? AND ended_at IS NULL"
            rows = list(await conn.execute_fetchall(sql, (thread_key,)))
            if rows:
                return session_row(rows[0])
            session = SessionRow(uuid.uuid4().hex, thread_key, created_by=user_key, created_at=from_text(to_text(now)))
            await conn.execute(
                "INSERT INTO sessions (id, thread_key, created_by, created_at) VALUES (?, ?, ?, ?)",
                (session.id, thread_key, user_key, to_text(now)),
            )
            return session

    @override
    async def get_session(self, session_id: str) -> SessionRow | None:
        rows = await self._fetch("SELECT * FROM sessions WHERE id = ?", (session_id,))
        return session_row(rows[0]) if rows else None

    @override
    async def end_session(self, session_id: str, *, now: datetime) -> None:
        await self._write(
            "UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL", (to_text(now), session_id)
        )

    @override
    async def set_head(self, session_id: str, turn_id: str | None) -> None:
        await self._write("UPDATE sessions SET head_turn_id = ? WHERE id = ?", (turn_id, session_id))

    @override
    async def insert_turn(self, turn: TurnRow) -> None:
        columns = ", ".join(TURN_COLUMNS)
        marks = ", ".join("?" for _ in TURN_COLUMNS)
        values = [db_value(name, getattr(turn, name)) for name in TURN_COLUMNS]
        async with self.transaction() as conn:
            await conn.execute(f"INSERT INTO turns ({columns}) VALUES ({marks})", values)  # noqa: S608
            await link_blobs(conn, turn.id, turn.request_json, turn.response_json)

    @override
    async def finish_turn(self, turn_id: str, result: TurnResult) -> None:
        assignments = ", ".join(f"{name} = ?" for name in RESULT_COLUMNS)
        values = [db_value(name, getattr(result, name)) for name in RESULT_COLUMNS]
        async with self.transaction() as conn:
            await conn.execute(f"UPDATE turns SET {assignments} WHERE id = ?", (*values, turn_id))  # noqa: S608
            await link_blobs(conn, turn_id, result.response_json)

    @override
    async def get_turn(self, turn_id: str) -> TurnRow | None:
        rows = await self._fetch("SELECT * FROM turns WHERE id = ?", (turn_id,))
        return turn_row(rows[0]) if rows else None

    @override
    async def ancestors(self, turn_id: str, *, limit: int) -> list[TurnRow]:
        if limit <= 0:
            return []
        return [turn_row(row) for row in await self._fetch(ANCESTORS, {"turn_id": turn_id, "limit": limit})]

    @override
    async def root_of(self, turn_id: str) -> TurnRow | None:
        rows = await self._fetch(ROOT, {"turn_id": turn_id})
        return turn_row(rows[0]) if rows else None

    @override
    async def fail_pending_turns(self, *, before: datetime, now: datetime) -> int:
        return await self._write(
            "UPDATE turns SET status = 'failed', outcome = 'interrupted', finished_at = ?"
            " WHERE status = 'pending' AND created_at < ?",
            (to_text(now), to_text(before)),
        )

    @override
    async def recent_sessions(self, user_key: str, *, limit: int) -> list[SessionRow]:
        rows = await self._fetch(
            "SELECT * FROM sessions WHERE created_by = ? ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (user_key, max(limit, 0)),
        )
        return [session_row(row) for row in rows]

    # Blobs

    @override
    async def put_blob(self, data: bytes, mime: str) -> str:
        sha = await asyncio.to_thread(_sha256, data)  # multi-MB images: keep the event loop free
        await self._write(
            "INSERT INTO blobs (sha256, mime, size, data, touched_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (sha256) DO UPDATE SET touched_at = excluded.touched_at",
            (sha, mime, len(data), data, to_text(self._clock())),
        )
        return sha

    @override
    async def get_blob(self, sha256: str) -> tuple[bytes, str] | None:
        rows = await self._fetch("SELECT data, mime FROM blobs WHERE sha256 = ?", (sha256,))
        return (bytes(rows[0]["data"]), str(rows[0]["mime"])) if rows else None

    # Quota ledger

    @override
    async def reserve(
        self,
        *,
        user_key: str,
        workspace_id: str,
        credits: int,
        usd: float,
        limits: Limits,
        now: datetime,
        ttl: timedelta,
        owner: str,
    ) -> Reservation | Refusal:
        async with self.transaction() as conn:
            return await ledger.reserve(
                conn,
                user_key=user_key,
                workspace_id=workspace_id,
                credits=credits,
                usd=usd,
                limits=limits,
                now=now,
                ttl=ttl,
                owner=owner,
            )

    @override
    async def commit(self, reservation_id: str, *, usd: float, now: datetime) -> bool:
        async with self.transaction() as conn:
            return await ledger.settle(conn, reservation_id, refund=False, usd=usd, now=now)

    @override
    async def refund(self, reservation_id: str, *, usd: float, now: datetime) -> bool:
        async with self.transaction() as conn:
            return await ledger.settle(conn, reservation_id, refund=True, usd=usd, now=now)

    @override
    async def reclaim(self, *, now: datetime, dead_owners: tuple[str, ...] = ()) -> int:
        async with self.transaction() as conn:
            # A dead owner's thread leases go too, so its threads continue at once instead of after the TTL.
            marks = ", ".join("?" for _ in dead_owners)
            await conn.execute(
                f"DELETE FROM thread_leases WHERE expires_at <= ?{f' OR owner IN ({marks})' if dead_owners else ''}",  # noqa: S608
                (to_text(now), *dead_owners),
            )
            return await ledger.reclaim(conn, now=now, dead_owners=dead_owners)

    @override
    async def renew(self, owner: str, *, until: datetime) -> int:
        until_text = to_text(until)
        async with self.transaction() as conn:
            held = await conn.execute(
                "UPDATE reservations SET expires_at = ? WHERE owner = ? AND state = 'held' AND expires_at < ?",
                (until_text, owner, until_text),
            )
            leases = await conn.execute(
                "UPDATE thread_leases SET expires_at = ? WHERE owner = ? AND expires_at < ?",
                (until_text, owner, until_text),
            )
            return int(held.rowcount or 0) + int(leases.rowcount or 0)

    @override
    async def try_lease(self, thread_key: str, *, owner: str, now: datetime, ttl: timedelta) -> bool:
        async with self.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO thread_leases (thread_key, owner, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (thread_key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at "
                "WHERE thread_leases.owner = excluded.owner OR thread_leases.expires_at <= ?",
                (thread_key, owner, to_text(now + ttl), to_text(now)),
            )
            return bool(cursor.rowcount)

    @override
    async def release_lease(self, thread_key: str, *, owner: str) -> None:
        async with self.transaction() as conn:
            await conn.execute("DELETE FROM thread_leases WHERE thread_key = ? AND owner = ?", (thread_key, owner))

    @override
    async def held_owners(self) -> list[str]:
        rows = await self._fetch("SELECT DISTINCT owner FROM reservations WHERE state = 'held'", ())
        return [str(row["owner"]) for row in rows]

    @override
    async def usage(self, user_key: str, *, now: datetime) -> Usage:
        async with self._reading() as conn:
            return await ledger.usage(conn, user_key, now=now)

    @override
    async def spend(self, *, scope: str, period: str) -> float:
        rows = await self._fetch("SELECT usd FROM usage_counters WHERE scope = ? AND period = ?", (scope, period))
        return float(rows[0]["usd"]) if rows else 0.0

    @override
    async def get_policy(self, user_key: str) -> UserPolicy:
        rows = await self._fetch("SELECT * FROM user_policies WHERE user_key = ?", (user_key,))
        if not rows:
            return UserPolicy(user_key)
        row = rows[0]
        return UserPolicy(
            user_key, row["daily_credits"], row["monthly_credits"], bool(row["exempt"]), bool(row["blocked"])
        )

    @override
    async def set_policy(self, policy: UserPolicy) -> None:
        await self._write(
            "INSERT INTO user_policies (user_key, daily_credits, monthly_credits, exempt, blocked)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_key) DO UPDATE SET daily_credits = excluded.daily_credits,"
            " monthly_credits = excluded.monthly_credits, exempt = excluded.exempt, blocked = excluded.blocked",
            (policy.user_key, policy.daily_credits, policy.monthly_credits, int(policy.exempt), int(policy.blocked)),
        )

    @override
    async def grant(self, user_key: str, *, credits: int, now: datetime, by: str) -> None:
        async with self.transaction() as conn:
            await ledger.grant(conn, user_key, credits=credits, now=now, by=by)

    @override
    async def granted(self, user_key: str, *, now: datetime) -> tuple[int, int]:
        async with self._reading() as conn:
            return await ledger.granted(conn, user_key, now=now)

    @override
    async def reset_usage(self, user_key: str, *, now: datetime) -> None:
        """Zero the user's day and month credits; USD stays counted (money spent is spent)."""
        async with self.transaction() as conn:
            await ledger.reset_usage(conn, user_key, now=now)

    # Delivery safety

    @override
    async def claim_event(self, event_id: str, *, now: datetime) -> bool:
        sql = "INSERT OR IGNORE INTO seen_events (event_id, seen_at) VALUES (?, ?)"
        return await self._write(sql, (event_id, to_text(now))) == 1

    @override
    async def purge(self, *, before: datetime) -> int:
        """Delete sessions idle since `before` with their turns, old events, settled reservations, orphan blobs."""
        params = {"before": to_text(before)}
        deleted = 0
        async with self.transaction() as conn:
            for sql in (
                f"DELETE FROM turns WHERE session_id IN ({DEAD_SESSIONS})",  # noqa: S608
                f"DELETE FROM sessions WHERE id IN ({DEAD_SESSIONS})",  # noqa: S608
                "DELETE FROM seen_events WHERE seen_at < :before",
                "DELETE FROM reservations WHERE state != 'held' AND settled_at < :before",
                "DELETE FROM blobs WHERE touched_at < :before"
                " AND NOT EXISTS (SELECT 1 FROM turn_blobs WHERE turn_blobs.sha256 = blobs.sha256)",
            ):
                deleted += int((await conn.execute(sql, params)).rowcount)
        return deleted


async def _set_wal(conn: aiosqlite.Connection) -> None:
    """SQLite may refuse the switch to WAL at once ("database is locked", no busy wait) while another process
    creates the same new file; retry briefly."""
    for attempt in range(50):
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            await asyncio.sleep(0.02 * (attempt + 1))
