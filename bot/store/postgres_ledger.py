"""The quota ledger on Postgres: usage counters per (scope, period), reservations that move them.

A counter is the sum of its rows in `usage_shards` (the `usage_counters` view adds them up). A user's counters
live on shard 0 alone. The shared ones (workspace, global) take increments on the shard of the connection that
makes them (1-64), so the many reservations no budget checks don't queue on one row. When a budget is set, a
reservation locks that counter's shard-0 row and adds up every shard after the lock is its: reservations checked
against one limit take turns, and each sees all the others committed before it (no overspend, across processes).

The hot operations are plpgsql functions: `ledger_reserve` and `ledger_settle` (migration 2) do one call in one
round trip and one implicit transaction; their `_batch` versions (migration 3) do many concurrent calls in one,
deciding them in order exactly as the single functions would one after another.
The two settle functions plan their statements for each call (migration 5): a plan cached while `reservations`
was small would scan the whole table for every settle once it had grown.

Every transaction takes its row locks in one global order: reservation rows, then shard-0 counter rows by
(scope, period), then the other shards by (scope, period, shard), under the "C" collation. Reserve, settle,
reclaim and reset_usage, single or batched, can then never deadlock each other, across any number of processes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeAlias

import asyncpg

from bot.store.base import Limits, Refusal, Reservation, Standing, Usage, period_day, period_month
from bot.store.ledger_rules import Counter, counters, new_reservation, refusal
from bot.store.postgres_pool import ConnectionPool
from bot.store.postgres_rows import policy
from bot.store.postgres_schema import utc

# Where one statement runs: the pool (its own transaction), or a connection inside the caller's transaction.
Queryable: TypeAlias = ConnectionPool | asyncpg.Connection

# Credit limits travel as bigint. Counters and requests are 32-bit integers, so used + wanted stays under 2**33:
# clamping a bigger (or more negative) limit into range never changes a decision.
_BIGINT_SAFE = 2**62

RESERVE = "SELECT * FROM ledger_reserve($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
SETTLE = "SELECT ledger_settle($1, $2, $3, $4)"
RESERVE_BATCH = (
    "SELECT * FROM ledger_reserve_batch($1::text[], $2::text[], $3::text[], $4::integer[], $5::float8[],"
    " $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::bigint[], $12::bigint[],"
    " $13::float8[], $14::float8[], $15::float8[])"
)
SETTLE_BATCH = "SELECT * FROM ledger_settle_batch($1::text[], $2::boolean[], $3::float8[], $4::timestamptz[])"
_BUMP = "SELECT ledger_bump($1::text[], $2::text[], $3::integer[], $4::float8[])"
_LOCK = """
SELECT scope, period FROM usage_shards
WHERE shard = 0 AND (scope, period) IN (SELECT * FROM unnest($1::text[], $2::text[]))
ORDER BY scope COLLATE "C", period COLLATE "C"
FOR UPDATE
"""
GRANTED = (
    "SELECT COALESCE(SUM(credits) FILTER (WHERE day = $1), 0) AS day, COALESCE(SUM(credits), 0) AS month"
    " FROM grants WHERE user_key = $2 AND month = $3"
)
STANDINGS = """
SELECT p.daily_credits, p.monthly_credits, p.exempt, p.blocked,
    COALESCE(SUM(g.credits) FILTER (WHERE g.day = i.day), 0) AS day, COALESCE(SUM(g.credits), 0) AS month
FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS i(user_key, day, month, n)
LEFT JOIN user_policies AS p ON p.user_key = i.user_key
LEFT JOIN grants AS g ON g.user_key = i.user_key AND g.month = i.month
GROUP BY i.n, p.user_key
ORDER BY i.n
"""
_HELD = "SELECT id, user_key, workspace_id, credits, usd, day, month FROM reservations WHERE state = 'held'"


def _credit_limit(limit: int | None) -> int | None:
    return None if limit is None else max(-_BIGINT_SAFE, min(limit, _BIGINT_SAFE))


def _columns(keys: Iterable[Counter]) -> tuple[list[str], list[str]]:
    ordered = sorted(set(keys))  # Python's str order is the "C" collation's code-point order
    return [scope for scope, _ in ordered], [period for _, period in ordered]


@dataclass(frozen=True, slots=True)
class ReserveCall:
    """One reservation to check and hold: its id and periods are fixed before it is sent."""

    reservation: Reservation
    limits: Limits
    owner: str
    now: datetime

    def args(self) -> tuple[object, ...]:
        r, limits = self.reservation, self.limits
        return (
            r.id,
            r.user_key,
            r.workspace_id,
            r.credits,
            r.usd,
            r.day,
            r.month,
            self.owner,
            self.now,
            r.expires_at,
            _credit_limit(limits.daily_credits),
            _credit_limit(limits.monthly_credits),
            limits.user_monthly_usd,
            limits.workspace_daily_usd,
            limits.global_daily_usd,
        )


@dataclass(frozen=True, slots=True)
class SettleCall:
    """Commit (refund False) or refund of one held reservation, usd being the actual cost."""

    reservation_id: str
    refund: bool
    usd: float
    now: datetime

    def args(self) -> tuple[object, ...]:
        return self.reservation_id, self.refund, self.usd, self.now


def reserve_call(
    *,
    user_key: str,
    workspace_id: str,
    credits: int,
    usd: float,
    limits: Limits,
    now: datetime,
    ttl: timedelta,
    owner: str,
) -> ReserveCall:
    now = utc(now)
    reservation = new_reservation(
        user_key=user_key, workspace_id=workspace_id, credits=credits, usd=usd, now=now, ttl=ttl
    )
    return ReserveCall(reservation, limits, owner, now)


def _outcome(call: ReserveCall, row: Any) -> Reservation | Refusal:
    if row["granted"]:
        return call.reservation
    r = call.reservation
    refused = refusal(
        call.limits,
        credits=r.credits,
        usd=r.usd,
        user_day=(int(row["day_credits"]), 0.0),
        user_month=(int(row["month_credits"]), float(row["month_usd"])),
        workspace_day=(0, float(row["workspace_usd"])),
        global_day=(0, float(row["global_usd"])),
    )
    if refused is None:  # the SQL test and ledger_rules disagree: a bug, never a silent grant
        raise RuntimeError(f"ledger_reserve refused {r.credits} credits / ${r.usd} that ledger_rules allows: {row!r}")
    return refused


async def reserve(db: Queryable, call: ReserveCall) -> Reservation | Refusal:
    """Check and hold in one statement (its own transaction, or the caller's when `db` is inside one)."""
    return _outcome(call, await db.fetchrow(RESERVE, *call.args()))


async def reserve_batch(db: Queryable, calls: Sequence[ReserveCall]) -> list[Reservation | Refusal]:
    """Several reservations in one statement, decided in order (each one sees those before it)."""
    columns = list(zip(*(call.args() for call in calls), strict=True))
    rows = await db.fetch(RESERVE_BATCH, *(list(column) for column in columns))
    return [_outcome(call, row) for call, row in zip(calls, rows, strict=True)]


async def settle(db: Queryable, call: SettleCall) -> bool:
    """Commit or refund a held reservation against the periods it was made in; False when it is not held."""
    return bool(await db.fetchval(SETTLE, *call.args()))


async def settle_batch(db: Queryable, calls: Sequence[SettleCall]) -> list[bool]:
    columns = list(zip(*(call.args() for call in calls), strict=True))
    rows = await db.fetch(SETTLE_BATCH, *(list(column) for column in columns))
    return [bool(row[0]) for row in rows]


async def lock_counters(conn: asyncpg.Connection, keys: Iterable[Counter]) -> None:
    """Lock existing shard-0 counter rows in the global order (inside the caller's transaction)."""
    await conn.execute(_LOCK, *_columns(keys))


async def reclaim(conn: asyncpg.Connection, *, now: datetime, dead_owners: tuple[str, ...]) -> int:
    """Refund expired and orphaned holds in the caller's transaction: their counters move in one ordered bump."""
    now = utc(now)
    rows = await conn.fetch(
        f"{_HELD} AND (expires_at <= $1 OR owner = ANY($2::text[])) ORDER BY id FOR UPDATE", now, list(dead_owners)
    )
    if not rows:
        return 0
    await conn.execute(
        "UPDATE reservations SET state = 'refunded', actual_usd = 0, settled_at = $1 WHERE id = ANY($2::text[])",
        now,
        [row["id"] for row in rows],
    )
    moved: dict[Counter, tuple[int, float]] = {}
    for row in rows:
        keys = counters(user_key=row["user_key"], workspace_id=row["workspace_id"], day=row["day"], month=row["month"])
        for key in keys:
            credits, usd = moved.get(key, (0, 0.0))
            moved[key] = credits - int(row["credits"]), usd - float(row["usd"])
    moved = {key: value for key, value in moved.items() if value != (0, 0.0)}
    if moved:
        await conn.execute(
            _BUMP,
            [scope for scope, _ in moved],
            [period for _, period in moved],
            [credits for credits, _ in moved.values()],
            [usd for _, usd in moved.values()],
        )
    return len(rows)


async def usage(db: Queryable, user_key: str, *, now: datetime) -> Usage:
    now = utc(now)
    day_key, month_key = (f"user:{user_key}", period_day(now)), (f"user:{user_key}", period_month(now))
    rows = await db.fetch(
        "SELECT period, credits, usd FROM usage_counters WHERE scope = $1 AND period IN ($2, $3)",
        day_key[0],
        day_key[1],
        month_key[1],
    )
    found = {str(r["period"]): (int(r["credits"]), float(r["usd"])) for r in rows}
    day, month = found.get(day_key[1], (0, 0.0)), found.get(month_key[1], (0, 0.0))
    return Usage(day_credits=day[0], month_credits=month[0], month_usd=month[1])


async def grant(db: Queryable, user_key: str, *, credits: int, now: datetime, by: str) -> None:
    now = utc(now)
    await db.execute(
        "INSERT INTO grants (user_key, day, month, credits, granted_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        user_key,
        period_day(now),
        period_month(now),
        credits,
        by,
        now,
    )


@dataclass(frozen=True, slots=True)
class GrantedCall:
    """Credits granted to a user for one day and its month."""

    user_key: str
    day: str
    month: str


def granted_call(user_key: str, *, now: datetime) -> GrantedCall:
    now = utc(now)
    return GrantedCall(user_key, period_day(now), period_month(now))


async def granted(db: Queryable, call: GrantedCall) -> tuple[int, int]:
    row = await db.fetchrow(GRANTED, call.day, call.user_key, call.month)
    return int(row["day"]), int(row["month"])


async def standings(db: Queryable, calls: Sequence[GrantedCall]) -> list[Standing]:
    """Each user's policy and grants for a day and its month, in one statement for many users."""
    rows = await db.fetch(
        STANDINGS,
        [call.user_key for call in calls],
        [call.day for call in calls],
        [call.month for call in calls],
    )
    return [
        Standing(policy(call.user_key, row), int(row["day"]), int(row["month"]))
        for call, row in zip(calls, rows, strict=True)
    ]


async def reset_usage(conn: asyncpg.Connection, user_key: str, *, now: datetime) -> None:
    """Zero the user's day and month credits; USD stays (money spent is spent, budgets still hold). Like SQLite's,
    it forgives the user's reservations still held this month: their credits leave the other counters too."""
    now = utc(now)
    keys = ((f"user:{user_key}", period_day(now)), (f"user:{user_key}", period_month(now)))
    # Reservations before counters, in id order: the order settle and reclaim take their locks in.
    held = await conn.fetch(
        f"{_HELD} AND user_key = $1 AND month = $2 AND credits <> 0 ORDER BY id FOR UPDATE", user_key, keys[1][1]
    )
    moved: dict[Counter, int] = {}
    for row in held:
        for key in counters(user_key=user_key, workspace_id=row["workspace_id"], day=row["day"], month=row["month"]):
            moved[key] = moved.get(key, 0) - int(row["credits"])
    await lock_counters(conn, {*keys, *moved})
    if moved:
        scopes, periods = [scope for scope, _ in moved], [period for _, period in moved]
        await conn.execute(_BUMP, scopes, periods, list(moved.values()), [0.0] * len(moved))
        await conn.execute("UPDATE reservations SET credits = 0 WHERE id = ANY($1::text[])", [r["id"] for r in held])
    await conn.execute(
        "UPDATE usage_shards SET credits = 0 WHERE scope = $1 AND period IN ($2, $3)",
        keys[0][0],
        *(p for _, p in keys),
    )
