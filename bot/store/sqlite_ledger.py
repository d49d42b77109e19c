"""The quota ledger in SQL: O(1) usage counters per (scope, period) and reservations that move them.

Every function here expects to run inside the caller's BEGIN IMMEDIATE transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiosqlite

from bot.store.base import Limits, Refusal, Reservation, Usage, period_day, period_month
from bot.store.ledger_rules import Counter, counters, new_reservation, refusal
from bot.store.sqlite_schema import to_text

# Credits never go below zero: after reset_usage, refunding a reservation made before the reset must not turn
# into bonus credits. USD is clamped the same way against float rounding.
_BUMP = """
INSERT INTO usage_counters (scope, period, credits, usd) VALUES (:scope, :period, MAX(:credits, 0), MAX(:usd, 0.0))
ON CONFLICT (scope, period) DO UPDATE SET
    credits = MAX(usage_counters.credits + :credits, 0),
    usd = MAX(usage_counters.usd + :usd, 0.0)
"""


def utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now!r}: the store only takes timezone-aware datetimes")
    return now.astimezone(UTC)


async def read_counters(conn: aiosqlite.Connection, keys: tuple[Counter, ...]) -> dict[Counter, tuple[int, float]]:
    where = " OR ".join("(scope = ? AND period = ?)" for _ in keys)
    params = [value for key in keys for value in key]
    rows = await conn.execute_fetchall(f"SELECT scope, period, credits, usd FROM usage_counters WHERE {where}", params)  # noqa: S608
    found = {(str(r[0]), str(r[1])): (int(r[2]), float(r[3])) for r in rows}
    return {key: found.get(key, (0, 0.0)) for key in keys}


async def bump(conn: aiosqlite.Connection, keys: tuple[Counter, ...], *, credits: int, usd: float) -> None:
    # One call for the four counters: each aiosqlite call is a hop to its thread while the writer lock is held.
    await conn.executemany(
        _BUMP, [{"scope": scope, "period": period, "credits": credits, "usd": usd} for scope, period in keys]
    )


async def reserve(
    conn: aiosqlite.Connection,
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
    user_day, user_month, workspace_day, global_day = (await read_counters(conn, keys)).values()
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
        " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'held', ?, ?, ?)",
        (reservation.id, user_key, workspace_id, credits, usd, day, month, owner, to_text(now), to_text(now + ttl)),
    )
    await bump(conn, keys, credits=credits, usd=usd)
    return reservation


async def settle(conn: aiosqlite.Connection, reservation_id: str, *, refund: bool, usd: float, now: datetime) -> bool:
    """Commit or refund a held reservation against the periods it was made in; False when it is not held."""
    rows = list(
        await conn.execute_fetchall(
            "SELECT user_key, workspace_id, credits, usd, day, month FROM reservations WHERE id = ? AND state = 'held'",
            (reservation_id,),
        )
    )
    if not rows:
        return False
    user_key, workspace_id, credits, reserved_usd, day, month = rows[0]
    await conn.execute(
        "UPDATE reservations SET state = ?, actual_usd = ?, settled_at = ? WHERE id = ?",
        ("refunded" if refund else "committed", usd, to_text(utc(now)), reservation_id),
    )
    keys = counters(user_key=user_key, workspace_id=workspace_id, day=day, month=month)
    await bump(conn, keys, credits=-int(credits) if refund else 0, usd=usd - float(reserved_usd))
    return True


async def reclaim(conn: aiosqlite.Connection, *, now: datetime, dead_owners: tuple[str, ...]) -> int:
    marks = ", ".join("?" for _ in dead_owners)
    dead = f" OR owner IN ({marks})" if dead_owners else ""
    rows = await conn.execute_fetchall(
        f"SELECT id FROM reservations WHERE state = 'held' AND (expires_at <= ?{dead})",  # noqa: S608
        (to_text(utc(now)), *dead_owners),
    )
    count = 0
    for (reservation_id,) in rows:
        count += await settle(conn, str(reservation_id), refund=True, usd=0.0, now=now)
    return count


async def usage(conn: aiosqlite.Connection, user_key: str, *, now: datetime) -> Usage:
    now = utc(now)
    day_key, month_key = (f"user:{user_key}", period_day(now)), (f"user:{user_key}", period_month(now))
    found = await read_counters(conn, (day_key, month_key))
    return Usage(day_credits=found[day_key][0], month_credits=found[month_key][0], month_usd=found[month_key][1])


async def grant(conn: aiosqlite.Connection, user_key: str, *, credits: int, now: datetime, by: str) -> None:
    now = utc(now)
    await conn.execute(
        "INSERT INTO grants (user_key, day, month, credits, granted_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (user_key, period_day(now), period_month(now), credits, by, to_text(now)),
    )


async def granted(conn: aiosqlite.Connection, user_key: str, *, now: datetime) -> tuple[int, int]:
    now = utc(now)
    rows = list(
        await conn.execute_fetchall(
            "SELECT COALESCE(SUM(CASE WHEN day = ? THEN credits END), 0), COALESCE(SUM(credits), 0)"
            " FROM grants WHERE user_key = ? AND month = ?",
            (period_day(now), user_key, period_month(now)),
        )
    )
    return int(rows[0][0]), int(rows[0][1])


async def reset_usage(conn: aiosqlite.Connection, user_key: str, *, now: datetime) -> None:
    """Zero the user's day and month credits; USD stays (money spent is spent, budgets still hold)."""
    now = utc(now)
    await conn.execute(
        "UPDATE usage_counters SET credits = 0 WHERE scope = ? AND period IN (?, ?)",
        (f"user:{user_key}", period_day(now), period_month(now)),
    )
