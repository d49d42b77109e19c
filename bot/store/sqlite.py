"""The SQLite store: a writer thread with group commit and reader threads, safe for several processes on one file."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from typing_extensions import override

from bot.store import sqlite_ledger as ledger
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
    period_day,
    period_month,
)
from bot.store.sqlite_rows import (
    ANCESTORS,
    PURGE,
    PURGE_ORPHAN_BLOBS,
    RESULT_COLUMNS,
    ROOT,
    TURN_COLUMNS,
    db_value,
    link_blobs,
    session_row,
    turn_row,
)
from bot.store.sqlite_schema import IMAGES_PAGE_SIZE, create_images, from_text, migrate, set_wal, to_text, user_version
from bot.store.sqlite_workers import Lane, run_group, run_reads

T = TypeVar("T")
Params = Sequence[Any] | Mapping[str, Any]

BUSY_TIMEOUT_MS = 5000


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


WAL_CHECKPOINT_PAGES = 10_000  # 40 MB of 4 KiB pages
IMAGES_CHECKPOINT_PAGES = 40 * 1024 * 1024 // IMAGES_PAGE_SIZE  # 40 MB as well
WAL_SIZE_LIMIT = 64 * 1024 * 1024  # the WAL file is cut back to this after a checkpoint


def images_path(path: str | Path) -> Path | None:
    """The images file beside a database file: data/bananabot.db -> data/bananabot.images.db (None: in memory)."""
    if str(path) == ":memory:":
        return None
    path = Path(path)
    return path.with_name(f"{path.stem}.images{path.suffix}")


class SqliteStore(Store):
    """`Store` on two SQLite files (WAL), shared safely by coroutines and by processes: the database, and beside it
    the images (content-addressed blobs, 64 KiB pages; see `images_path`).

    Every write runs as one synchronous function on its file's writer thread and connection, grouped with the writes
    queued alongside it into one BEGIN IMMEDIATE … COMMIT, each in its own savepoint (see sqlite_workers.py). The two
    files have a writer each, so a ledger or turn-row write never queues behind megabytes of images. Processes are
    serialized by SQLite's write lock, and busy_timeout makes the loser wait, not fail. Reads run on a connection and
    thread of their own: in WAL mode they never wait behind the writer, so a /quota during a burst of image turns
    answers at once. Image reads (MBs each) have a connection of their own, so small reads never queue behind them.
    An image is committed before the turn that refers to it is written; purge deletes only images no turn refers to.

    Args:
        path: The database file (parent directories are created), or ":memory:" (one connection holds both).
        clock: Wall clock for the few writes whose contract has no `now` (blob touch time); tests pin it.
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.path = path
        self._clock = clock
        self._lock = asyncio.Lock()  # open and close
        self._images_path = images_path(path)
        self._writer = Lane(self._connect_writer, run_group, name="sqlite-writer")
        self._images = self._writer  # ":memory:" can't be opened twice: one connection does everything
        self._readers: tuple[Lane, Lane] | None = None  # (small reads, blob reads)
        images = self._images_path
        if images is not None:
            self._images = Lane(lambda: self._connect_images_writer(images), run_group, name="sqlite-image-writer")
            self._readers = (
                Lane(lambda: self._connect_reader(path), run_reads, name="sqlite-reader"),
                Lane(lambda: self._connect_reader(images), run_reads, name="sqlite-blob-reader"),
            )

    # Connections

    @override
    async def open(self) -> None:
        async with self._lock:
            try:
                for lane in self._lanes():
                    await lane.open()
            except BaseException:
                await self._close()
                raise

    def _connect_writer(self) -> sqlite3.Connection:
        """On the writer thread: the connection, its pragmas and pending migrations."""
        if str(self.path) != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None)  # autocommit: the writer says BEGIN itself
        conn.row_factory = sqlite3.Row
        try:
            _writer_pragmas(conn, WAL_CHECKPOINT_PAGES)
            conn.execute("PRAGMA foreign_keys = ON")
            images = self._images_path
            conn.execute("ATTACH DATABASE ? AS images", (":memory:" if images is None else str(images),))
            create_images(conn, "images")
            migrate(conn)  # step 4 moves the images of an older database into their file
            if images is not None:
                conn.execute("DETACH DATABASE images")  # else BEGIN IMMEDIATE would lock the images file too
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_images_writer(self, images: Path) -> sqlite3.Connection:
        """On the image writer's thread: the images file, with the database attached read-only as "meta" (purge
        asks it which images turns still refer to; read-only, so a write here never locks the database)."""
        conn = sqlite3.connect(images.resolve().as_uri(), isolation_level=None, uri=True)
        conn.row_factory = sqlite3.Row
        try:
            # FULL: each image commit is on disk before the turn that refers to it is written. With NORMAL an OS
            # crash or power loss could keep the database's newer WAL and lose the images' (two files, no common
            # order). One fsync per group commit: ~0.25 ms per 1.5 MB image here.
            _writer_pragmas(conn, IMAGES_CHECKPOINT_PAGES, synchronous="FULL")
            conn.execute("ATTACH DATABASE ? AS meta", (Path(self.path).resolve().as_uri() + "?mode=ro",))
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_reader(self, path: str | Path) -> sqlite3.Connection:
        """On a reader thread: a read-only connection."""
        conn = sqlite3.connect(path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA query_only = ON")
        return conn

    @override
    async def close(self) -> None:
        async with self._lock:
            await self._close()

    async def _close(self) -> None:
        for lane in self._lanes():
            await lane.close()

    def _lanes(self) -> tuple[Lane, ...]:
        """In the order they open: the writer creates both files and migrates them first."""
        images = () if self._images is self._writer else (self._images,)
        return (self._writer, *images, *(self._readers or ()))

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(conn)` on the database's writer connection inside a transaction: its result, or its exception with
        its changes rolled back (and only its own: it may share the transaction with other writes). Images go to
        their own writer (`put_blob`), which sizes its group commits by their bytes."""
        return await self._writer.run(fn)

    async def read(self, fn: Callable[[sqlite3.Connection], T], *, blob: bool = False) -> T:
        """`fn(conn)` on a read connection (`blob`: the one for image reads)."""
        if self._readers is None:
            return await self._writer.run(fn)
        small, blobs = self._readers
        return await (blobs if blob else small).run(fn)

    async def _fetch(self, sql: str, params: Params = (), *, blob: bool = False) -> list[sqlite3.Row]:
        return await self.read(lambda conn: conn.execute(sql, params).fetchall(), blob=blob)

    async def _write(self, sql: str, params: Params = ()) -> int:
        return await self.write(lambda conn: int(conn.execute(sql, params).rowcount))

    @override
    async def schema_version(self) -> int:
        return await self.read(user_version)

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
        def get_or_create(conn: sqlite3.Connection) -> SessionRow:
            sql = "SELECT * FROM sessions WHERE thread_key = ? AND ended_at IS NULL"
            row = conn.execute(sql, (thread_key,)).fetchone()
            if row is not None:
                return session_row(row)
            session = SessionRow(uuid.uuid4().hex, thread_key, created_by=user_key, created_at=from_text(to_text(now)))
            conn.execute(
                "INSERT INTO sessions (id, thread_key, created_by, created_at) VALUES (?, ?, ?, ?)",
                (session.id, thread_key, user_key, to_text(now)),
            )
            return session

        return await self.write(get_or_create)

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

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(f"INSERT INTO turns ({columns}) VALUES ({marks})", values)  # noqa: S608
            link_blobs(conn, turn.id, turn.request_json, turn.response_json)

        await self.write(insert)

    @override
    async def finish_turn(self, turn_id: str, result: TurnResult) -> None:
        assignments = ", ".join(f"{name} = ?" for name in RESULT_COLUMNS)
        values = [db_value(name, getattr(result, name)) for name in RESULT_COLUMNS]

        def finish(conn: sqlite3.Connection) -> None:
            conn.execute(f"UPDATE turns SET {assignments} WHERE id = ?", (*values, turn_id))  # noqa: S608
            link_blobs(conn, turn_id, result.response_json)

        await self.write(finish)

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
    async def fail_pending_turns(
        self, *, dead_owners: tuple[str, ...], before: datetime, now: datetime, ownerless: bool = False
    ) -> int:
        marks = ", ".join("?" for _ in dead_owners)  # SQLite takes an empty IN () list: it matches nothing
        return await self._write(
            "UPDATE turns SET status = 'failed', outcome = 'interrupted', finished_at = ?"  # noqa: S608
            f" WHERE status = 'pending' AND created_at < ? AND (owner IN ({marks}) OR (? AND owner IS NULL))",
            (to_text(now), to_text(before), *dead_owners, ownerless),
        )

    @override
    async def pending_turn_owners(self) -> list[str]:
        rows = await self._fetch("SELECT DISTINCT owner FROM turns WHERE status = 'pending' AND owner IS NOT NULL")
        return [str(row["owner"]) for row in rows]

    @override
    async def unleased_turn_owners(self, *, now: datetime) -> list[str]:
        rows = await self._fetch(
            "SELECT DISTINCT owner FROM turns t WHERE status = 'pending' AND owner IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM thread_leases l WHERE l.owner = t.owner AND l.expires_at > ?) ORDER BY owner",
            (to_text(now),),
        )
        return [str(row["owner"]) for row in rows]

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
        sql = (
            "INSERT INTO blobs (sha256, mime, size, touched_at, data) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (sha256) DO UPDATE SET touched_at = excluded.touched_at"
        )
        params = (sha, mime, len(data), to_text(self._clock()), data)
        await self._images.run(lambda conn: conn.execute(sql, params), size=len(data))
        return sha

    @override
    async def checkpoint(self) -> None:
        """Copy each file's WAL into it and sync it (PASSIVE: never waits for readers or the writer). Runs on the
        reader connections: a checkpoint is allowed there and keeps the writers free."""
        if self._readers is not None:
            for lane in self._readers:
                await lane.run(lambda conn: conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())

    @override
    async def get_blob(self, sha256: str) -> tuple[bytes, str] | None:
        rows = await self._fetch("SELECT data, mime FROM blobs WHERE sha256 = ?", (sha256,), blob=True)
        return (bytes(rows[0]["data"]), str(rows[0]["mime"])) if rows else None

    @override
    async def blob_sizes(self, refs: Sequence[str]) -> dict[str, int]:
        wanted = sorted(set(refs))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = await self._fetch(f"SELECT sha256, size FROM blobs WHERE sha256 IN ({marks})", wanted, blob=True)  # noqa: S608 - placeholders only
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
        held = ledger.hold(
            user_key=user_key,
            workspace_id=workspace_id,
            credits=credits,
            usd=usd,
            limits=limits,
            now=now,
            ttl=ttl,
            owner=owner,
        )
        return await self.write(lambda conn: ledger.reserve(conn, held))

    @override
    async def commit(self, reservation_id: str, *, usd: float, now: datetime) -> bool:
        at = to_text(ledger.utc(now))
        return await self.write(lambda conn: ledger.settle(conn, reservation_id, refund=False, usd=usd, at=at))

    @override
    async def refund(self, reservation_id: str, *, usd: float, now: datetime) -> bool:
        at = to_text(ledger.utc(now))
        return await self.write(lambda conn: ledger.settle(conn, reservation_id, refund=True, usd=usd, at=at))

    @override
    async def reclaim(self, *, now: datetime, dead_owners: tuple[str, ...] = ()) -> int:
        def reclaim(conn: sqlite3.Connection) -> int:
            # A dead owner's thread leases go too, so its threads continue at once instead of after the TTL.
            marks = ", ".join("?" for _ in dead_owners)
            conn.execute(
                f"DELETE FROM thread_leases WHERE expires_at <= ?{f' OR owner IN ({marks})' if dead_owners else ''}",  # noqa: S608
                (to_text(now), *dead_owners),
            )
            return ledger.reclaim(conn, now=now, dead_owners=dead_owners)

        return await self.write(reclaim)

    @override
    async def renew(self, owner: str, *, until: datetime) -> int:
        until_text = to_text(until)

        def renew(conn: sqlite3.Connection) -> int:
            held = conn.execute(
                "UPDATE reservations SET expires_at = ? WHERE owner = ? AND state = 'held' AND expires_at < ?",
                (until_text, owner, until_text),
            )
            leases = conn.execute(
                "UPDATE thread_leases SET expires_at = ? WHERE owner = ? AND expires_at < ?",
                (until_text, owner, until_text),
            )
            return int(held.rowcount or 0) + int(leases.rowcount or 0)

        return await self.write(renew)

    @override
    async def try_lease(self, thread_key: str, *, owner: str, now: datetime, ttl: timedelta) -> bool:
        taken = await self._write(
            "INSERT INTO thread_leases (thread_key, owner, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (thread_key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at "
            "WHERE thread_leases.owner = excluded.owner OR thread_leases.expires_at <= ?",
            (thread_key, owner, to_text(now + ttl), to_text(now)),
        )
        return bool(taken)

    @override
    async def release_lease(self, thread_key: str, *, owner: str) -> None:
        await self._write("DELETE FROM thread_leases WHERE thread_key = ? AND owner = ?", (thread_key, owner))

    @override
    async def held_owners(self) -> list[str]:
        rows = await self._fetch("SELECT DISTINCT owner FROM reservations WHERE state = 'held'", ())
        return [str(row["owner"]) for row in rows]

    @override
    async def usage(self, user_key: str, *, now: datetime) -> Usage:
        return await self.read(lambda conn: ledger.usage(conn, user_key, now=now))

    @override
    async def spend(self, *, scope: str, period: str) -> float:
        rows = await self._fetch("SELECT usd FROM usage_counters WHERE scope = ? AND period = ?", (scope, period))
        return float(rows[0]["usd"]) if rows else 0.0

    @override
    async def get_policy(self, user_key: str) -> UserPolicy:
        return await self.read(lambda conn: ledger.policy(conn, user_key))

    @override
    async def standing(self, user_key: str, *, now: datetime, with_usage: bool) -> Standing:
        day = period_day(ledger.utc(now))
        return await self.read(  # one trip to the reader thread for what /quota and a precheck need
            lambda conn: ledger.standing(conn, user_key, day=day, month=day[:7], with_usage=with_usage)
        )  # one trip to the reader thread for what /quota and a reservation need

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
        await self.write(lambda conn: ledger.grant(conn, user_key, credits=credits, now=now, by=by))

    @override
    async def granted(self, user_key: str, *, now: datetime) -> tuple[int, int]:
        day, month = period_day(ledger.utc(now)), period_month(ledger.utc(now))
        return await self.read(lambda conn: ledger.granted(conn, user_key, day=day, month=month))

    @override
    async def reset_usage(self, user_key: str, *, now: datetime) -> None:
        """Zero the user's day and month credits; USD stays counted (money spent is spent)."""
        await self.write(lambda conn: ledger.reset_usage(conn, user_key, now=now))

    # Delivery safety

    @override
    async def claim_event(self, event_id: str, *, now: datetime) -> bool:
        sql = "INSERT OR IGNORE INTO seen_events (event_id, seen_at) VALUES (?, ?)"
        return await self._write(sql, (event_id, to_text(now))) == 1

    @override
    async def purge(self, *, before: datetime) -> int:
        """Delete sessions idle since `before` with their turns, old events, settled reservations, orphan blobs."""
        params = {"before": to_text(before)}

        def purge(conn: sqlite3.Connection) -> int:
            return sum(int(conn.execute(sql, params).rowcount) for sql in PURGE)

        def orphans(conn: sqlite3.Connection) -> int:  # turn_blobs: the database's, read after purge committed
            return int(conn.execute(PURGE_ORPHAN_BLOBS, params).rowcount)

        return await self.write(purge) + await self._images.run(orphans)


def _writer_pragmas(conn: sqlite3.Connection, checkpoint_pages: int, *, synchronous: str = "NORMAL") -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")  # first: the other pragmas may wait for a lock
    set_wal(conn)
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    # Checkpoint at 40 MB of WAL, not SQLite's 4 MB: every third 1.5 MB image write paid for a checkpoint and its
    # fsyncs (store phase of an edit 22-27 -> 13-14 ms). Maintenance checkpoints each minute as well
    # (`checkpoint`), so a quiet bot's writes don't wait for 40 MB to reach the disk.
    conn.execute(f"PRAGMA wal_autocheckpoint = {checkpoint_pages}")
    conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
