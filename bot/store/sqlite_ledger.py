"""The quota ledger in SQL: O(1) usage counters per (scope, period) and reservations that move them.

Plain synchronous functions on one `sqlite3.Connection`: the writes run on the store's writer thread inside its
BEGIN IMMEDIATE transaction (see sqlite_workers.py), the reads on a reader thread.
"""

from __future__ import annotations

import functools
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.store.base import (
    LimitRule,
    Limits,
    Refusal,
    Reservation,
    Standing,
    Usage,
    UserPolicy,
    period_day,
    period_month,
)
from bot.store.ledger_rules import Counter, counters, new_reservation, refusal
from bot.store.sqlite_schema import to_text


@functools.cache
def _bump_sql(count: int) -> str:
    """One upsert for `count` counters (:scope0, :period0, …), each moved by :credits and :usd.

    Credits never go below zero: after reset_usage, refunding a reservation made before the reset must not turn
    into bonus credits. USD is clamped the same way against float rounding. (`WHERE true` keeps SQLite from reading
    ON CONFLICT as a join constraint.)
    """
    rows = ", ".join(f"(:scope{i}, :period{i})" for i in range(count))
    return f"""
INSERT INTO usage_counters (scope, period, credits, usd)
SELECT column1, column2, MAX(:credits, 0), MAX(:usd, 0.0) FROM (VALUES {rows}) WHERE true
ON CONFLICT (scope, period) DO UPDATE SET
    credits = MAX(usage_counters.credits + :credits, 0),
    usd = MAX(usage_counters.usd + :usd, 0.0)
"""  # noqa: S608


def utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now!r}: the store only takes timezone-aware datetimes")
    return now.astimezone(UTC)


def read_counters(conn: sqlite3.Connection, keys: tuple[Counter, ...]) -> dict[Counter, tuple[int, float]]:
    where = " OR ".join("(scope = ? AND period = ?)" for _ in keys)
    params = [value for key in keys for value in key]
    sql = f"SELECT scope, period, credits, usd FROM usage_counters WHERE {where}"  # noqa: S608
    rows = conn.execute(sql, params).fetchall()
    found = {(str(r[0]), str(r[1])): (int(r[2]), float(r[3])) for r in rows}
    return {key: found.get(key, (0, 0.0)) for key in keys}


def bump(conn: sqlite3.Connection, keys: tuple[Counter, ...], *, credits: int, usd: float) -> None:
    params: dict[str, object] = {"credits": credits, "usd": usd}
    for i, (scope, period) in enumerate(keys):
        params[f"scope{i}"], params[f"period{i}"] = scope, period
    conn.execute(_bump_sql(len(keys)), params)


@dataclass(frozen=True, slots=True)
class Hold:
    """A reservation as it will be written, prepared before it reaches the writer thread (the id, the periods, the
    timestamps): the writer is the ledger's bottleneck, and this Python work was a sixth of its time."""

    reservation: Reservation
    keys: tuple[Counter, ...]
    limits: Limits | LimitRule
    owner: str
    created: str
    expires: str


def hold(
    *,
    user_key: str,
    workspace_id: str,
    credits: int,
    usd: float,
    limits: Limits | LimitRule,
    now: datetime,
    ttl: timedelta,
    owner: str,
) -> Hold:
    now = utc(now)
    reservation = new_reservation(
        user_key=user_key, workspace_id=workspace_id, credits=credits, usd=usd, now=now, ttl=ttl
    )
    keys = counters(user_key=user_key, workspace_id=workspace_id, day=reservation.day, month=reservation.month)
    return Hold(reservation, keys, limits, owner, to_text(now), to_text(now + ttl))


def reserve(conn: sqlite3.Connection, held: Hold) -> Reservation | Refusal:
    reservation = held.reservation
    limits = held.limits
    if callable(limits):  # the user's policy and grants as of this transaction, not a read made before it
        decided = limits(standing(conn, reservation.user_key, day=reservation.day, month=reservation.month))
        if isinstance(decided, Refusal):
            return decided
        limits = decided
    user_day, user_month, workspace_day, global_day = read_counters(conn, held.keys).values()
    refused = refusal(
        limits,
        credits=reservation.credits,
        usd=reservation.usd,
        user_day=user_day,
        user_month=user_month,
        workspace_day=workspace_day,
        global_day=global_day,
    )
    if refused is not None:
        return refused
    conn.execute(
        "INSERT INTO reservations (id, user_key, workspace_id, credits, usd, day, month, state, owner, created_at,"
        " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'held', ?, ?, ?)",
        (
            reservation.id,
            reservation.user_key,
            reservation.workspace_id,
            reservation.credits,
            reservation.usd,
            reservation.day,
            reservation.month,
            held.owner,
            held.created,
            held.expires,
        ),
    )
    bump(conn, held.keys, credits=reservation.credits, usd=reservation.usd)
    return reservation


def settle(conn: sqlite3.Connection, reservation_id: str, *, refund: bool, usd: float, at: str) -> bool:
    """Commit or refund a held reservation against the periods it was made in; False when it is not held.
    `at`: the settle time as stored (to_text)."""
    rows = conn.execute(
        "UPDATE reservations SET state = ?, actual_usd = ?, settled_at = ? WHERE id = ? AND state = 'held'"
        " RETURNING user_key, workspace_id, credits, usd, day, month",
        ("refunded" if refund else "committed", usd, at, reservation_id),
    ).fetchall()
    if not rows:
        return False
    user_key, workspace_id, credits, reserved_usd, day, month = rows[0]
    keys = counters(user_key=user_key, workspace_id=workspace_id, day=day, month=month)
    bump(conn, keys, credits=-int(credits) if refund else 0, usd=usd - float(reserved_usd))
    return True


def reclaim(conn: sqlite3.Connection, *, now: datetime, dead_owners: tuple[str, ...]) -> int:
    marks = ", ".join("?" for _ in dead_owners)
    dead = f" OR owner IN ({marks})" if dead_owners else ""
    rows = conn.execute(
        f"SELECT id FROM reservations WHERE state = 'held' AND (expires_at <= ?{dead})",  # noqa: S608
        (to_text(utc(now)), *dead_owners),
    ).fetchall()
    count = 0
    at = to_text(utc(now))
    for (reservation_id,) in rows:
        count += settle(conn, str(reservation_id), refund=True, usd=0.0, at=at)
    return count


def user_usage(conn: sqlite3.Connection, user_key: str, *, day: str, month: str) -> Usage:
    day_key, month_key = (f"user:{user_key}", day), (f"user:{user_key}", month)
    found = read_counters(conn, (day_key, month_key))
    return Usage(day_credits=found[day_key][0], month_credits=found[month_key][0], month_usd=found[month_key][1])


def usage(conn: sqlite3.Connection, user_key: str, *, now: datetime) -> Usage:
    now = utc(now)
    return user_usage(conn, user_key, day=period_day(now), month=period_month(now))


def grant(conn: sqlite3.Connection, user_key: str, *, credits: int, now: datetime, by: str) -> None:
    now = utc(now)
    conn.execute(
        "INSERT INTO grants (user_key, day, month, credits, granted_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (user_key, period_day(now), period_month(now), credits, by, to_text(now)),
    )


def granted(conn: sqlite3.Connection, user_key: str, *, day: str, month: str) -> tuple[int, int]:
    """Credits granted to the user on `day` and in `month` (period strings)."""
    day_credits, month_credits = conn.execute(
        "SELECT COALESCE(SUM(CASE WHEN day = ? THEN credits END), 0), COALESCE(SUM(credits), 0)"
        " FROM grants WHERE user_key = ? AND month = ?",
        (day, user_key, month),
    ).fetchone()
    return int(day_credits), int(month_credits)


def policy(conn: sqlite3.Connection, user_key: str) -> UserPolicy:
    row = conn.execute(
        "SELECT daily_credits, monthly_credits, exempt, blocked FROM user_policies WHERE user_key = ?", (user_key,)
    ).fetchone()
    if row is None:
        return UserPolicy(user_key)
    return UserPolicy(user_key, row[0], row[1], bool(row[2]), bool(row[3]))


def standing(conn: sqlite3.Connection, user_key: str, *, day: str, month: str, with_usage: bool = False) -> Standing:
    """Policy, the day's and month's grants, and (`with_usage`) the user's counters, for the given periods."""
    day_grant, month_grant = granted(conn, user_key, day=day, month=month)
    used = user_usage(conn, user_key, day=day, month=month) if with_usage else None
    return Standing(policy(conn, user_key), day_grant, month_grant, used)


def reset_usage(conn: sqlite3.Connection, user_key: str, *, now: datetime) -> None:
    """Zero the user's day and month credits; USD stays (money spent is spent, budgets still hold).

    The user's reservations still held this month are forgiven with them: their credits leave every counter now
    and become 0, so settling one later moves nothing, and refunding it can't take away a credit reserved after
    the reset.
    """
    now = utc(now)
    held = conn.execute(
        "UPDATE reservations SET credits = 0 WHERE user_key = ? AND state = 'held' AND month = ? AND credits != 0"
        " RETURNING workspace_id, credits, day, month",
        (user_key, period_month(now)),
    ).fetchall()
    for workspace_id, credits, day, month in held:  # out of the workspace's and the bot's counters as well
        keys = counters(user_key=user_key, workspace_id=workspace_id, day=day, month=month)
        bump(conn, keys, credits=-int(credits), usd=0.0)
    conn.execute(
        "UPDATE usage_counters SET credits = 0 WHERE scope = ? AND period IN (?, ?)",
        (f"user:{user_key}", period_day(now), period_month(now)),
    )
