"""The Postgres store: asyncpg connections, one transaction per operation, row locks for every read-then-write.

The ledger's calls (and the policy and grant reads that precede a reservation) are group-committed: concurrent
calls of one kind share a round trip and a transaction (postgres_batch.py, migration 3).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import asyncpg
from typing_extensions import override

from bot.store import postgres_ledger as ledger
from bot.store.base import (
    LimitRule,
    Limits,
    Refusal,
    Reservation,
    SessionRow,
    Standing,
    Store,
    TurnResult,
    TurnRow,
    Usage,
    UserPolicy,
    decide_limits,
)
from bot.store.postgres_batch import Batcher
from bot.store.postgres_dsn import redact
from bot.store.postgres_pool import ConnectionPool
from bot.store.postgres_rows import (
    ACTIVE_SESSION,
    ANCESTORS,
    FAIL_PENDING,
    FINISH_TURN,
    GET_POLICY,
    INSERT_TURN,
    NEW_SESSION,
    PURGE,
    PUT_BLOB,
    ROOT,
    SET_POLICY,
    TRY_LEASE,
    db_values,
    link_blobs,
    policy,
    session_row,
    turn_row,
)
from bot.store.postgres_schema import check_schema, current_version, migrate, utc
from bot.store.sqlite_rows import RESULT_COLUMNS, TURN_COLUMNS

log = logging.getLogger(__name__)

POOL_MIN, POOL_MAX = 1, 16
# Group commit of the ledger calls (reserve, settle, and the policy and grant reads before a reservation): calls
# that arrive while this many batches of their kind run go out together in the next one, at most BATCH_MAX of them.
# Two batches of up to 32 per kind served 64 concurrent reserve+commit loops best (bench, 2 CPUs), with half the
# pool left for everything else.
BATCHES_IN_FLIGHT, BATCH_MAX = 2, 32
CLOSE_TIMEOUT = 10.0  # seconds a graceful pool close may wait for checked-out connections


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _count(status: str) -> int:
    """Rows touched, from a command tag such as "UPDATE 3" or "INSERT 0 1"."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresStore(Store):
    """`Store` on PostgreSQL through a pool of asyncpg connections, for any number of bot processes on one database.

    Every read-then-write runs in one transaction that locks what it reads (`FOR UPDATE`, `ON CONFLICT`), so
    limits, sessions, leases and event claims hold across processes. Blobs are stored as bytea: every replica
    sees every image.

    Args:
        dsn: `postgresql://user:password@host:port/database` (or `postgres://`); asyncpg takes any other DSN
            options, e.g. `?sslmode=require`.
        clock: Wall clock for the few writes whose contract has no `now` (blob touch time); tests pin it.
        schema: Keep every table in this schema (created on open when missing) instead of the role's default
            search_path; lets several deployments or test runs share one database.
        ping_timeout: Seconds `ping()` waits before it answers False.
    """

    def __init__(
        self,
        dsn: str,
        *,
        clock: Callable[[], datetime] = _utcnow,
        schema: str | None = None,
        ping_timeout: float = 2.0,
    ) -> None:
        self._dsn = dsn
        self.url = redact(dsn)
        self.schema = check_schema(schema) if schema is not None else None
        self._clock = clock
        self._ping_timeout = ping_timeout
        self._pool: ConnectionPool | None = None
        self._reserves: Batcher[ledger.ReserveCall, Reservation | Refusal] = Batcher(
            self._reserve_batch, self._reserve_one, max_batch=BATCH_MAX, max_in_flight=BATCHES_IN_FLIGHT
        )
        self._settles: Batcher[ledger.SettleCall, bool] = Batcher(
            self._settle_batch, self._settle_one, max_batch=BATCH_MAX, max_in_flight=BATCHES_IN_FLIGHT
        )
        # The read before every reservation (a user's policy and grants, for its limit rule) shares them the same way.
        self._standings: Batcher[ledger.GrantedCall, Standing] = Batcher(
            self._standings_batch, self._standing_one, max_batch=BATCH_MAX, max_in_flight=BATCHES_IN_FLIGHT
        )
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r}, schema={self.schema!r})"

    # Connection and transactions

    @override
    async def open(self) -> None:
        async with self._lock:
            if self._pool is not None:
                return
            settings = {"search_path": self.schema} if self.schema else {}
            pool = ConnectionPool(
                partial(asyncpg.connect, self._dsn, server_settings=settings), min_size=POOL_MIN, max_size=POOL_MAX
            )
            try:
                await pool.open()
                async with pool.acquire() as conn:
                    await migrate(conn, schema=self.schema)
            except BaseException:
                pool.terminate()
                raise
            self._pool = pool

    @override
    async def close(self) -> None:
        async with self._lock:
            if self._pool is None:
                return
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
            except TimeoutError:
                log.warning("closing the Postgres pool timed out; terminating its connections")
                pool.terminate()

    def _connected(self) -> ConnectionPool:
        if self._pool is None:
            raise RuntimeError("PostgresStore is not open: call `await store.open()` first")
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection inside BEGIN … COMMIT (ROLLBACK on error), READ COMMITTED."""
        async with self._connected().acquire() as conn, conn.transaction():
            yield conn

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return list(await self._connected().fetch(sql, *args))

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        return await self._connected().fetchrow(sql, *args)

    async def _execute(self, sql: str, *args: Any) -> int:
        return _count(await self._connected().execute(sql, *args))

    @override
    async def schema_version(self) -> int:
        async with self._connected().acquire() as conn:
            return await current_version(conn)

    @override
    async def ping(self) -> bool:
        pool = self._pool
        if pool is None:
            return False
        try:
            async with asyncio.timeout(self._ping_timeout):
                return bool(await pool.fetchval("SELECT 1") == 1)
        except Exception as error:  # the contract: never raises, whatever broke
            log.debug("Postgres ping failed: %r", error)
            return False

    # Sessions and turns

    @override
    async def active_session(self, thread_key: str) -> SessionRow | None:
        row = await self._fetchrow(ACTIVE_SESSION, thread_key)
        return session_row(row) if row else None

    @override
    async def get_or_create_session(self, *, thread_key: str, user_key: str, now: datetime) -> SessionRow:
        now = utc(now)
        while True:  # loops only if the session we lost the race to ended before we could read it
            async with self.transaction() as conn:
                row = await conn.fetchrow(NEW_SESSION, uuid.uuid4().hex, thread_key, user_key, now)
                if row is None:  # someone else's is active: the insert waited for it to commit, so it is visible
                    row = await conn.fetchrow(ACTIVE_SESSION, thread_key)
            if row is not None:
                return session_row(row)

    @override
    async def get_session(self, session_id: str) -> SessionRow | None:
        row = await self._fetchrow("SELECT * FROM sessions WHERE id = $1", session_id)
        return session_row(row) if row else None

    @override
    async def end_session(self, session_id: str, *, now: datetime) -> None:
        await self._execute(
            "UPDATE sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL", utc(now), session_id
        )

    @override
    async def set_head(self, session_id: str, turn_id: str | None) -> None:
        await self._execute("UPDATE sessions SET head_turn_id = $1 WHERE id = $2", turn_id, session_id)

    @override
    async def insert_turn(self, turn: TurnRow) -> None:
        values = db_values(turn, TURN_COLUMNS)
        async with self.transaction() as conn:
            await conn.execute(INSERT_TURN, *values)
            await link_blobs(conn, turn.id, turn.request_json, turn.response_json)

    @override
    async def finish_turn(self, turn_id: str, result: TurnResult) -> None:
        values = db_values(result, RESULT_COLUMNS)
        async with self.transaction() as conn:
            await conn.execute(FINISH_TURN, *values, turn_id)
            await link_blobs(conn, turn_id, result.response_json)

    @override
    async def get_turn(self, turn_id: str) -> TurnRow | None:
        row = await self._fetchrow("SELECT * FROM turns WHERE id = $1", turn_id)
        return turn_row(row) if row else None

    @override
    async def ancestors(self, turn_id: str, *, limit: int) -> list[TurnRow]:
        if limit <= 0:
            return []
        return [turn_row(row) for row in await self._fetch(ANCESTORS, turn_id, limit)]

    @override
    async def root_of(self, turn_id: str) -> TurnRow | None:
        row = await self._fetchrow(ROOT, turn_id)
        return turn_row(row) if row else None

    @override
    async def fail_pending_turns(
        self, *, dead_owners: tuple[str, ...], before: datetime, now: datetime, ownerless: bool = False
    ) -> int:
        return await self._execute(FAIL_PENDING, utc(now), utc(before), list(dead_owners), ownerless)

    @override
    async def pending_turn_owners(self) -> list[str]:
        rows = await self._fetch(
            "SELECT DISTINCT owner FROM turns WHERE status = 'pending' AND owner IS NOT NULL ORDER BY owner"
        )
        return [str(row["owner"]) for row in rows]

    @override
    async def unleased_turn_owners(self, *, now: datetime) -> list[str]:
        rows = await self._fetch(
            "SELECT DISTINCT owner FROM turns t WHERE status = 'pending' AND owner IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM thread_leases l WHERE l.owner = t.owner AND l.expires_at > $1) ORDER BY owner",
            now,
        )
        return [str(row["owner"]) for row in rows]

    @override
    async def recent_sessions(self, user_key: str, *, limit: int) -> list[SessionRow]:
        rows = await self._fetch(
            "SELECT * FROM sessions WHERE created_by = $1 ORDER BY created_at DESC, seq DESC LIMIT $2",
            user_key,
            max(limit, 0),
        )
        return [session_row(row) for row in rows]

    # Blobs

    @override
    async def put_blob(self, data: bytes, mime: str) -> str:
        sha = await asyncio.to_thread(_sha256, data)  # multi-MB images: keep the event loop free
        await self._execute(PUT_BLOB, sha, mime, len(data), data, utc(self._clock()))
        return sha

    @override
    async def get_blob(self, sha256: str) -> tuple[bytes, str] | None:
        row = await self._fetchrow("SELECT data, mime FROM blobs WHERE sha256 = $1", sha256)
        return (bytes(row["data"]), str(row["mime"])) if row else None

    @override
    async def blob_sizes(self, refs: Sequence[str]) -> dict[str, int]:
        if not refs:
            return {}
        rows = await self._fetch("SELECT sha256, size FROM blobs WHERE sha256 = ANY($1::text[])", list(set(refs)))
        return {str(row["sha256"]): int(row["size"]) for row in rows}

    # Quota ledger

    @override
    async def reserve(
        self,
        *,
        user_key: str,
        workspace_id: str,
        credits: int,
        usd: float,
        limits: Limits | LimitRule,
        now: datetime,
        ttl: timedelta,
        owner: str,
    ) -> Reservation | Refusal:
        if callable(limits):
            decided = await decide_limits(self, limits, user_key, now=now)  # batched with other callers' reads
            if isinstance(decided, Refusal):
                return decided
            limits = decided
        call = ledger.reserve_call(
            user_key=user_key,
            workspace_id=workspace_id,
            credits=credits,
            usd=usd,
            limits=limits,
            now=now,
            ttl=ttl,
            owner=owner,
        )
        return await self._reserves.submit(call)

    @override
    async def commit(self, reservation_id: str, *, usd: float, now: datetime) -> bool:
        return await self._settles.submit(ledger.SettleCall(reservation_id, False, usd, utc(now)))

    @override
    async def refund(self, reservation_id: str, *, usd: float, now: datetime) -> bool:
        return await self._settles.submit(ledger.SettleCall(reservation_id, True, usd, utc(now)))

    async def _reserve_one(self, call: ledger.ReserveCall) -> Reservation | Refusal:
        return await ledger.reserve(self._connected(), call)

    async def _reserve_batch(self, calls: Sequence[ledger.ReserveCall]) -> list[Reservation | Refusal]:
        return await ledger.reserve_batch(self._connected(), calls)

    async def _settle_one(self, call: ledger.SettleCall) -> bool:
        return await ledger.settle(self._connected(), call)

    async def _settle_batch(self, calls: Sequence[ledger.SettleCall]) -> list[bool]:
        return await ledger.settle_batch(self._connected(), calls)

    @override
    async def reclaim(self, *, now: datetime, dead_owners: tuple[str, ...] = ()) -> int:
        async with self.transaction() as conn:
            # A dead owner's thread leases go too, so its threads continue at once instead of after the TTL.
            await conn.execute(
                "DELETE FROM thread_leases WHERE expires_at <= $1 OR owner = ANY($2::text[])",
                utc(now),
                list(dead_owners),
            )
            return await ledger.reclaim(conn, now=now, dead_owners=dead_owners)

    @override
    async def renew(self, owner: str, *, until: datetime) -> int:
        until = utc(until)
        async with self.transaction() as conn:
            held = await conn.execute(
                "UPDATE reservations SET expires_at = $1 WHERE owner = $2 AND state = 'held' AND expires_at < $1",
                until,
                owner,
            )
            leases = await conn.execute(
                "UPDATE thread_leases SET expires_at = $1 WHERE owner = $2 AND expires_at < $1", until, owner
            )
            return _count(held) + _count(leases)

    @override
    async def try_lease(self, thread_key: str, *, owner: str, now: datetime, ttl: timedelta) -> bool:
        now = utc(now)
        return await self._execute(TRY_LEASE, thread_key, owner, now + ttl, now) == 1

    @override
    async def release_lease(self, thread_key: str, *, owner: str) -> None:
        await self._execute("DELETE FROM thread_leases WHERE thread_key = $1 AND owner = $2", thread_key, owner)

    @override
    async def held_owners(self) -> list[str]:
        rows = await self._fetch("SELECT DISTINCT owner FROM reservations WHERE state = 'held' ORDER BY owner")
        return [str(row["owner"]) for row in rows]

    @override
    async def usage(self, user_key: str, *, now: datetime) -> Usage:
        return await ledger.usage(self._connected(), user_key, now=now)

    @override
    async def spend(self, *, scope: str, period: str) -> float:
        row = await self._fetchrow("SELECT usd FROM usage_counters WHERE scope = $1 AND period = $2", scope, period)
        return float(row["usd"]) if row else 0.0

    @override
    async def get_policy(self, user_key: str) -> UserPolicy:
        return policy(user_key, await self._fetchrow(GET_POLICY, user_key))

    @override
    async def standing(self, user_key: str, *, now: datetime, with_usage: bool) -> Standing:
        """Policy and grants in one round trip shared with concurrent callers; usage, if asked, in one more."""
        standing = await self._standings.submit(ledger.granted_call(user_key, now=now))
        if not with_usage:
            return standing
        return dataclasses.replace(standing, usage=await self.usage(user_key, now=now))

    async def _standing_one(self, call: ledger.GrantedCall) -> Standing:
        [standing] = await ledger.standings(self._connected(), [call])
        return standing

    async def _standings_batch(self, calls: Sequence[ledger.GrantedCall]) -> list[Standing]:
        return await ledger.standings(self._connected(), calls)

    @override
    async def set_policy(self, policy: UserPolicy) -> None:
        values = (policy.user_key, policy.daily_credits, policy.monthly_credits, policy.exempt, policy.blocked)
        await self._execute(SET_POLICY, *values)

    @override
    async def grant(self, user_key: str, *, credits: int, now: datetime, by: str) -> None:
        await ledger.grant(self._connected(), user_key, credits=credits, now=now, by=by)

    @override
    async def granted(self, user_key: str, *, now: datetime) -> tuple[int, int]:
        return await ledger.granted(self._connected(), ledger.granted_call(user_key, now=now))

    @override
    async def reset_usage(self, user_key: str, *, now: datetime) -> None:
        """Zero the user's day and month credits; USD stays counted (money spent is spent)."""
        async with self.transaction() as conn:
            await ledger.reset_usage(conn, user_key, now=now)

    # Delivery safety

    @override
    async def claim_event(self, event_id: str, *, now: datetime) -> bool:
        sql = "INSERT INTO seen_events (event_id, seen_at) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        return await self._execute(sql, event_id, utc(now)) == 1

    @override
    async def purge(self, *, before: datetime) -> int:
        """Delete sessions idle since `before` with their turns, old events, settled reservations, orphan blobs."""
        before = utc(before)
        deleted = 0
        async with self.transaction() as conn:
            for sql in PURGE:
                deleted += _count(await conn.execute(sql, before))
        return deleted
