"""The quota ledger on Postgres: usage counters per (scope, period) locked row by row, reservations that move them.

Every function here runs inside the caller's transaction. Counter rows are always locked in one global order
(scope, period under the "C" collation), whoever locks them: reserve, settle, reclaim and reset_usage can then
never deadlock each other, across any number of processes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import asyncpg

from bot.store.base import Limits, Refusal, Reservation, Usage, period_day, period_month
from bot.store.ledger_rules import Counter, counters, new_reservation, refusal
from bot.store.postgres_schema import utc

_CREATE = """
INSERT INTO usage_counters (scope, period)
SELECT scope, period FROM unnest($1::text[], $2::text[]) AS k(scope, period)
ORDER BY scope COLLATE "C", period COLLATE "C"
ON CONFLICT DO NOTHING
"""
_LOCK = """
SELECT scope, period, credits, usd FROM usage_counters
WHERE (scope, period) IN (SELECT * FROM unnest($1::text[], $2::text[]))
ORDER BY scope COLLATE "C", period COLLATE "C"
FOR UPDATE
"""
# Credits never go below zero: after reset_usage, refunding a reservation made before the reset must not turn
# into bonus credits. USD is clamped the same way against float rounding (as in the SQLite store).
_BUMP = """
UPDATE usage_counters SET credits = GREATEST(credits + $3::integer, 0), usd = GREATEST(usd + $4::float8, 0.0)
WHERE (scope, period) IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""


def _columns(keys: Iterable[Counter]) -> tuple[list[str], list[str]]:
    ordered = sorted(set(keys))  # Python's str order is the "C" collation's code-point order
    return [scope for scope, _ in ordered], [period for _, period in ordered]


async def lock_counters(
    conn: asyncpg.Connection, keys: Iterable[Counter], *, create: bool = True
) -> dict[Counter, tuple[int, float]]:
    """Create the missing counter rows, then lock them all in the global order; returns their current values."""
    scopes, periods = _columns(keys)
    if create:
        await conn.execute(_CREATE, scopes, periods)
    rows = await conn.fetch(_LOCK, scopes, periods)
    found = {(str(r["scope"]), str(r["period"])): (int(r["credits"]), float(r["usd"])) for r in rows}
    return {key: found.get(key, (0, 0.0)) for key in zip(scopes, periods, strict=True)}


async def bump(conn: asyncpg.Connection, keys: tuple[Counter, ...], *, credits: int, usd: float) -> None:
    """Move counters already locked by `lock_counters`."""
    scopes, periods = _columns(keys)
    await conn.execute(_BUMP, scopes, periods, credits, usd)


async def reserve(
    conn: asyncpg.Connection,
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
    now = utc(now)
    day, month = period_day(now), period_month(now)
    keys = counters(user_key=user_key, workspace_id=workspace_id, day=day, month=month)
    found = await lock_counters(conn, keys)
    user_day, user_month, workspace_day, global_day = (found[key] for key in keys)
    refused = refusal(
        limits,
        credits=credits,
        usd=usd,
        user_day=user_day,
        user_month=user_month,
        workspace_day=workspace_day,
        global_day=global_day,
    )
    if refused is not None:
        return refused
    reservation = new_reservation(
        user_key=user_key, workspace_id=workspace_id, credits=credits, usd=usd, day=day, month=month, now=now, ttl=ttl
    )
    await conn.execute(
        "INSERT INTO reservations (id, user_key, workspace_id, credits, usd, day, month, state, owner, created_at,"
        " expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'held', $8, $9, $10)",
        reservation.id,
        user_key,
        workspace_id,
        credits,
        usd,
        day,
        month,
        owner,
        now,
        reservation.expires_at,
    )
    await bump(conn, keys, credits=credits, usd=usd)
    return reservation


def _keys(row: asyncpg.Record) -> tuple[Counter, ...]:
    return counters(user_key=row["user_key"], workspace_id=row["workspace_id"], day=row["day"], month=row["month"])


async def _settle_locked(
    conn: asyncpg.Connection, row: asyncpg.Record, *, refund: bool, usd: float, now: datetime
) -> None:
    await conn.execute(
        "UPDATE reservations SET state = $1, actual_usd = $2, settled_at = $3 WHERE id = $4",
        "refunded" if refund else "committed",
        usd,
        utc(now),
        row["id"],
    )
    await bump(conn, _keys(row), credits=-int(row["credits"]) if refund else 0, usd=usd - float(row["usd"]))


_HELD = "SELECT id, user_key, workspace_id, credits, usd, day, month FROM reservations WHERE state = 'held'"


async def settle(conn: asyncpg.Connection, reservation_id: str, *, refund: bool, usd: float, now: datetime) -> bool:
    """Commit or refund a held reservation against the periods it was made in; False when it is not held."""
    row = await conn.fetchrow(f"{_HELD} AND id = $1 FOR UPDATE", reservation_id)
    if row is None:
        return False
    await lock_counters(conn, _keys(row))
    await _settle_locked(conn, row, refund=refund, usd=usd, now=now)
    return True


async def reclaim(conn: asyncpg.Connection, *, now: datetime, dead_owners: tuple[str, ...]) -> int:
    """Refund expired and orphaned holds; every counter they touch is locked up front, in the global order."""
    rows = await conn.fetch(
        f"{_HELD} AND (expires_at <= $1 OR owner = ANY($2::text[])) ORDER BY id FOR UPDATE",
        utc(now),
        list(dead_owners),
    )
    if not rows:
        return 0
    await lock_counters(conn, (key for row in rows for key in _keys(row)))
    for row in rows:
        await _settle_locked(conn, row, refund=True, usd=0.0, now=now)
    return len(rows)


async def usage(conn: asyncpg.Connection, user_key: str, *, now: datetime) -> Usage:
    now = utc(now)
    day_key, month_key = (f"user:{user_key}", period_day(now)), (f"user:{user_key}", period_month(now))
    rows = await conn.fetch(
        "SELECT period, credits, usd FROM usage_counters WHERE scope = $1 AND period IN ($2, $3)",
        day_key[0],
        day_key[1],
        month_key[1],
    )
    found = {str(r["period"]): (int(r["credits"]), float(r["usd"])) for r in rows}
    day, month = found.get(day_key[1], (0, 0.0)), found.get(month_key[1], (0, 0.0))
    return Usage(day_credits=day[0], month_credits=month[0], month_usd=month[1])


async def grant(conn: asyncpg.Connection, user_key: str, *, credits: int, now: datetime, by: str) -> None:
    now = utc(now)
    await conn.execute(
        "INSERT INTO grants (user_key, day, month, credits, granted_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        user_key,
        period_day(now),
        period_month(now),
        credits,
        by,
        now,
    )


async def granted(conn: asyncpg.Connection, user_key: str, *, now: datetime) -> tuple[int, int]:
    now = utc(now)
    row = await conn.fetchrow(
        "SELECT COALESCE(SUM(credits) FILTER (WHERE day = $1), 0) AS day, COALESCE(SUM(credits), 0) AS month"
        " FROM grants WHERE user_key = $2 AND month = $3",
        period_day(now),
        user_key,
        period_month(now),
    )
    return int(row["day"]), int(row["month"])


async def reset_usage(conn: asyncpg.Connection, user_key: str, *, now: datetime) -> None:
    """Zero the user's day and month credits; USD stays (money spent is spent, budgets still hold)."""
    now = utc(now)
    keys = ((f"user:{user_key}", period_day(now)), (f"user:{user_key}", period_month(now)))
    await lock_counters(conn, keys, create=False)
    await conn.execute(
        "UPDATE usage_counters SET credits = 0 WHERE scope = $1 AND period IN ($2, $3)",
        keys[0][0],
        *(p for _, p in keys),
    )
