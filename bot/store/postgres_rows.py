"""Postgres rows <-> store dataclasses, the turn-graph queries, and the turn -> blob links purge relies on."""

from __future__ import annotations

import asyncpg

from bot.store.base import SessionRow, TurnRow, UserPolicy
from bot.store.postgres_schema import utc
from bot.store.sqlite_rows import BLOB_REF, RESULT_COLUMNS, TURN_COLUMNS

TURN_TIMES = {"created_at", "finished_at"}

INSERT_TURN = "INSERT INTO turns ({}) VALUES ({})".format(  # noqa: S608 - column names come from the dataclass
    ", ".join(TURN_COLUMNS), ", ".join(f"${i}" for i in range(1, len(TURN_COLUMNS) + 1))
)
FINISH_TURN = "UPDATE turns SET {} WHERE id = ${}".format(  # noqa: S608 - column names come from the dataclass
    ", ".join(f"{name} = ${i}" for i, name in enumerate(RESULT_COLUMNS, start=1)), len(RESULT_COLUMNS) + 1
)

# The thread's turns in one recursive walk, depth 0 first (the turn itself); then its first turn. Both are functions
# (migration 7) that plan each call, so a plan cached while turns was small never outlives its growth.
ANCESTORS = "SELECT * FROM turn_ancestors($1, $2)"
ROOT = "SELECT * FROM turn_root($1)"
# A session is dead when neither it nor any of its turns moved since `before` ($1). GREATEST skips NULLs.
DEAD_SESSIONS = """
SELECT s.id FROM sessions s
WHERE GREATEST(s.created_at, s.ended_at) < $1
AND NOT EXISTS (SELECT 1 FROM turns t WHERE t.session_id = s.id AND GREATEST(t.created_at, t.finished_at) >= $1)
AND NOT EXISTS (SELECT 1 FROM thread_leases l WHERE l.thread_key = s.thread_key)  -- a turn is running there now
"""

PURGE = (
    f"DELETE FROM turns WHERE session_id IN ({DEAD_SESSIONS})",  # noqa: S608 - constant SQL
    f"DELETE FROM sessions WHERE id IN ({DEAD_SESSIONS})",  # noqa: S608 - constant SQL
    "DELETE FROM seen_events WHERE seen_at < $1",
    "DELETE FROM reservations WHERE state <> 'held' AND settled_at < $1",
    "DELETE FROM blobs WHERE touched_at < $1"
    " AND NOT EXISTS (SELECT 1 FROM turn_blobs WHERE turn_blobs.sha256 = blobs.sha256)",
)
ACTIVE_SESSION = "SELECT * FROM sessions WHERE thread_key = $1 AND ended_at IS NULL"
# The partial unique index makes a racing insert wait for the winner, then do nothing.
NEW_SESSION = """
INSERT INTO sessions (id, thread_key, created_by, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (thread_key) WHERE ended_at IS NULL DO NOTHING RETURNING *
"""
FAIL_PENDING = """
UPDATE turns SET status = 'failed', outcome = 'interrupted', finished_at = $1
WHERE status = 'pending' AND created_at < $2 AND (owner = ANY($3::text[]) OR ($4 AND owner IS NULL))
"""
PUT_BLOB = """
INSERT INTO blobs (sha256, mime, size, data, touched_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (sha256) DO UPDATE SET touched_at = excluded.touched_at
"""
# Free, expired or already ours: the conflicting row is locked, so the check and the take are one step.
TRY_LEASE = """
INSERT INTO thread_leases (thread_key, owner, expires_at) VALUES ($1, $2, $3)
ON CONFLICT (thread_key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE thread_leases.owner = excluded.owner OR thread_leases.expires_at <= $4
"""
GET_POLICY = "SELECT daily_credits, monthly_credits, exempt, blocked FROM user_policies WHERE user_key = $1"
SET_POLICY = """
INSERT INTO user_policies (user_key, daily_credits, monthly_credits, exempt, blocked) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (user_key) DO UPDATE SET daily_credits = excluded.daily_credits,
    monthly_credits = excluded.monthly_credits, exempt = excluded.exempt, blocked = excluded.blocked
"""


def policy(user_key: str, row: asyncpg.Record | None) -> UserPolicy:
    """The user's overrides; no row (or an all-NULL one from an outer join) means the defaults."""
    if row is None or row["exempt"] is None:
        return UserPolicy(user_key)
    return UserPolicy(user_key, row["daily_credits"], row["monthly_credits"], row["exempt"], row["blocked"])


def session_row(row: asyncpg.Record) -> SessionRow:
    return SessionRow(
        id=row["id"],
        thread_key=row["thread_key"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        ended_at=row["ended_at"],
        head_turn_id=row["head_turn_id"],
    )


def turn_row(row: asyncpg.Record) -> TurnRow:
    return TurnRow(**{name: row[name] for name in TURN_COLUMNS})


def db_values(row: object, columns: tuple[str, ...]) -> list[object]:
    values: list[object] = []
    for name in columns:
        value = getattr(row, name)
        values.append(utc(value) if name in TURN_TIMES and value is not None else value)
    return values


async def link_blobs(conn: asyncpg.Connection, turn_id: str, *contents: str | None) -> None:
    """Remember which blobs a turn's contents refer to, so purge keeps exactly those."""
    shas = sorted({sha for content in contents if content for sha in BLOB_REF.findall(content)})
    if shas:
        await conn.execute(
            "INSERT INTO turn_blobs (turn_id, sha256) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
            turn_id,
            shas,
        )
