"""SQLite rows <-> store dataclasses, the turn-graph queries, and the turn -> blob links purge relies on."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import fields
from typing import Any

from bot.store.base import SessionRow, TurnResult, TurnRow
from bot.store.sqlite_schema import from_text, maybe_from_text, to_text

BLOB_REF = re.compile(r'"blob"\s*:\s*"([0-9a-f]{64})"')
TURN_COLUMNS = tuple(f.name for f in fields(TurnRow))
TURN_TIMES = {"created_at", "finished_at"}
RESULT_COLUMNS = tuple(f.name for f in fields(TurnResult))

# The thread's turns in one recursive walk: depth 0 is the turn itself.
ANCESTORS = """
WITH RECURSIVE chain(id, depth) AS (
    SELECT id, 0 FROM turns WHERE id = :turn_id
    UNION ALL
    SELECT t.parent_id, chain.depth + 1 FROM turns t JOIN chain ON t.id = chain.id
    WHERE t.parent_id IS NOT NULL AND chain.depth + 1 < :limit
)
SELECT turns.* FROM chain JOIN turns ON turns.id = chain.id ORDER BY chain.depth
"""
# UNION (not UNION ALL) stops on a cycle instead of looping forever.
ROOT = """
WITH RECURSIVE chain(id) AS (
    SELECT id FROM turns WHERE id = :turn_id
    UNION
    SELECT t.parent_id FROM turns t JOIN chain ON t.id = chain.id WHERE t.parent_id IS NOT NULL
)
SELECT turns.* FROM chain JOIN turns ON turns.id = chain.id WHERE turns.parent_id IS NULL LIMIT 1
"""
# A session is dead when neither it nor any of its turns moved since `before`.
DEAD_SESSIONS = """
SELECT s.id FROM sessions s
WHERE MAX(s.created_at, COALESCE(s.ended_at, '')) < :before
AND NOT EXISTS (
    SELECT 1 FROM turns t WHERE t.session_id = s.id AND MAX(t.created_at, COALESCE(t.finished_at, '')) >= :before
)
AND NOT EXISTS (SELECT 1 FROM thread_leases l WHERE l.thread_key = s.thread_key)  -- a turn is running there now
"""
# Retention, on the database's writer (every statement finds its rows through an index: migration 5).
PURGE = (
    f"DELETE FROM turns WHERE session_id IN ({DEAD_SESSIONS})",  # noqa: S608 - constant SQL
    f"DELETE FROM sessions WHERE id IN ({DEAD_SESSIONS})",  # noqa: S608 - constant SQL
    "DELETE FROM seen_events WHERE seen_at < :before",
    "DELETE FROM reservations WHERE state != 'held' AND settled_at < :before",
)
# Then on the images file's writer, once the turns that referred to them are gone (turn_blobs: the database's).
PURGE_ORPHAN_BLOBS = (
    "DELETE FROM blobs WHERE touched_at < :before"
    " AND NOT EXISTS (SELECT 1 FROM turn_blobs WHERE turn_blobs.sha256 = blobs.sha256)"
)


def session_row(row: sqlite3.Row) -> SessionRow:
    return SessionRow(
        id=row["id"],
        thread_key=row["thread_key"],
        created_by=row["created_by"],
        created_at=from_text(row["created_at"]),
        ended_at=maybe_from_text(row["ended_at"]),
        head_turn_id=row["head_turn_id"],
    )


def turn_row(row: sqlite3.Row) -> TurnRow:
    values = {name: row[name] for name in TURN_COLUMNS}
    values["created_at"] = from_text(values["created_at"])
    values["finished_at"] = maybe_from_text(values["finished_at"])
    return TurnRow(**values)


def db_value(name: str, value: Any) -> Any:
    return to_text(value) if name in TURN_TIMES and value is not None else value


def link_blobs(conn: sqlite3.Connection, turn_id: str, *contents: str | None) -> None:
    """Remember which blobs a turn's contents refer to, so purge keeps exactly those."""
    shas = {sha for content in contents if content for sha in BLOB_REF.findall(content)}
    conn.executemany(
        "INSERT OR IGNORE INTO turn_blobs (turn_id, sha256) VALUES (?, ?)", [(turn_id, sha) for sha in sorted(shas)]
    )
