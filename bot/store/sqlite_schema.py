"""SQLite schema: numbered migrations tracked in PRAGMA user_version, and the timestamp codec."""

from __future__ import annotations

import logging
import sqlite3
import time
from datetime import UTC, datetime

log = logging.getLogger(__name__)

# (version, description, sql). Append only; never edit a step that has shipped.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "sessions, turns, blobs, quota ledger, policies, grants, seen events",
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            thread_key TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            ended_at TEXT,
            head_turn_id TEXT
        );
        CREATE UNIQUE INDEX sessions_one_active ON sessions(thread_key) WHERE ended_at IS NULL;
        CREATE INDEX sessions_by_creator ON sessions(created_by, created_at);

        CREATE TABLE turns (
            id TEXT PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            parent_id TEXT REFERENCES turns(id) ON DELETE SET NULL,
            kind TEXT NOT NULL,
            user_key TEXT NOT NULL,
            user_name TEXT NOT NULL,
            prompt TEXT NOT NULL,
            model TEXT NOT NULL,
            aspect_ratio TEXT,
            image_size TEXT,
            request_json TEXT NOT NULL,
            created_at TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
            response_json TEXT,
            outcome TEXT NOT NULL DEFAULT '',
            outcome_detail TEXT NOT NULL DEFAULT '',
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            candidate_tokens INTEGER NOT NULL DEFAULT 0,
            thought_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            credits INTEGER NOT NULL DEFAULT 0,
            finished_at TEXT
        );
        CREATE INDEX turns_by_session ON turns(session_id, created_at);
        CREATE INDEX turns_by_parent ON turns(parent_id);
        CREATE INDEX turns_pending ON turns(created_at) WHERE status = 'pending';

        CREATE TABLE blobs (
            sha256 TEXT PRIMARY KEY,
            mime TEXT NOT NULL,
            size INTEGER NOT NULL,
            data BLOB NOT NULL,
            touched_at TEXT NOT NULL  -- last put_blob: purge spares a blob put just before its turn is written
        );

        CREATE TABLE turn_blobs (
            turn_id TEXT NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
            sha256 TEXT NOT NULL,
            PRIMARY KEY (turn_id, sha256)
        );
        CREATE INDEX turn_blobs_by_sha ON turn_blobs(sha256);

        CREATE TABLE reservations (
            id TEXT PRIMARY KEY,
            user_key TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            credits INTEGER NOT NULL,
            usd REAL NOT NULL,
            actual_usd REAL,
            day TEXT NOT NULL,
            month TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('held', 'committed', 'refunded')),
            owner TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            settled_at TEXT
        );
        CREATE INDEX reservations_by_state ON reservations(state, expires_at);
        CREATE INDEX reservations_by_owner ON reservations(owner) WHERE state = 'held';

        CREATE TABLE usage_counters (
            scope TEXT NOT NULL,
            period TEXT NOT NULL,
            credits INTEGER NOT NULL DEFAULT 0,
            usd REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (scope, period)
        );

        CREATE TABLE user_policies (
            user_key TEXT PRIMARY KEY,
            daily_credits INTEGER,
            monthly_credits INTEGER,
            exempt INTEGER NOT NULL DEFAULT 0,
            blocked INTEGER NOT NULL DEFAULT 0
        );

        CREATE TABLE grants (
            id INTEGER PRIMARY KEY,
            user_key TEXT NOT NULL,
            day TEXT NOT NULL,
            month TEXT NOT NULL,
            credits INTEGER NOT NULL,
            granted_by TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX grants_by_user ON grants(user_key, month, day);

        CREATE TABLE seen_events (
            event_id TEXT PRIMARY KEY,
            seen_at TEXT NOT NULL
        );
        CREATE INDEX seen_events_by_time ON seen_events(seen_at);
        """,
    ),
    (
        2,
        "thread leases: one turn at a time per thread across processes",
        """
        CREATE TABLE thread_leases (
            thread_key TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            expires_at TEXT NOT NULL
        );
        """,
    ),
    (
        3,
        "turns record the process running them: recovery fails only the turns of processes that died",
        """
        -- NULL for turns written before this step.
        ALTER TABLE turns ADD COLUMN owner TEXT;
        CREATE INDEX turns_pending_by_owner ON turns(owner) WHERE status = 'pending';
        """,
    ),
    (
        4,
        "images move to their own file (64 KiB pages, their own writer); copied there first by move_blobs",
        """
        DROP TABLE main.blobs;
        """,
    ),
    (
        5,
        "retention finds what it deletes through indexes instead of reading every reservation and session",
        """
        -- Purge runs on the writer every minute (with retention on), holding every other write meanwhile. The
        -- session expression is the one purge's dead-session test uses.
        CREATE INDEX reservations_settled ON reservations(settled_at) WHERE state != 'held';
        CREATE INDEX sessions_by_last_move ON sessions(MAX(created_at, COALESCE(ended_at, '')));
        """,
    ),
)

LATEST = MIGRATIONS[-1][0]

# The images file: content-addressed blobs only. 64 KiB pages: a 1.5 MB image is 23 pages, not 370, and writing one
# costs ~1 ms instead of ~2 (plus a third of the checkpoint work). touched_at sits before the data so purge reads
# it without walking each image's overflow chain. Its own user_version numbers its own steps.
IMAGES_PAGE_SIZE = 65_536
IMAGES_VERSION = 1
IMAGES_SCHEMA = """
CREATE TABLE IF NOT EXISTS {schema}.blobs (
    sha256 TEXT PRIMARY KEY,
    mime TEXT NOT NULL,
    size INTEGER NOT NULL,
    touched_at TEXT NOT NULL,  -- last put_blob: purge spares a blob put just before its turn is written
    data BLOB NOT NULL
)
"""


def to_text(moment: datetime) -> str:
    """Fixed-width ISO-8601 UTC ("2026-11-21T12:00:00.000000+00:00"), so text order is time order."""
    if moment.tzinfo is not UTC:
        if moment.tzinfo is None:
            raise ValueError(f"naive datetime {moment!r}: the store only takes timezone-aware datetimes")
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")


def from_text(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def maybe_from_text(text: str | None) -> datetime | None:
    return None if text is None else from_text(text)


def statements(script: str) -> list[str]:
    """Split a script into statements, so a step runs inside our transaction (executescript would commit)."""
    out: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in migration: {pending.strip()[:80]!r}")
    return out


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def create_images(conn: sqlite3.Connection, schema: str) -> None:
    """The images file's schema, on the database `schema` of `conn` ("main", or the name it is attached as).
    The page size only takes on a new, empty file: it is set before anything else is written to it."""
    conn.execute(f"PRAGMA {schema}.page_size = {IMAGES_PAGE_SIZE}")
    set_wal(conn, schema)
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = int(conn.execute(f"PRAGMA {schema}.user_version").fetchone()[0])
        if found > IMAGES_VERSION:
            raise RuntimeError(
                f"the images file is at version {found}, newer than this bananabot knows ({IMAGES_VERSION}): "
                "a newer release wrote it; run that one"
            )
        conn.execute(IMAGES_SCHEMA.format(schema=schema))
        # Purge's orphan search reads touched_at here instead of a leaf page per image (with 1.5 MB images, ~35 ms
        # per 3,000 on the image writer, every minute). An index only: files of version 1 gain it, and a release
        # that knows only version 1 keeps it up to date.
        conn.execute(f"CREATE INDEX IF NOT EXISTS {schema}.blobs_by_touch ON blobs(touched_at)")
        if found < IMAGES_VERSION:
            conn.execute(f"PRAGMA {schema}.user_version = {IMAGES_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def set_wal(conn: sqlite3.Connection, schema: str = "main") -> None:
    """SQLite may refuse the switch to WAL at once ("database is locked", no busy wait) while another process
    creates the same new file; retry briefly."""
    for attempt in range(50):
        try:
            conn.execute(f"PRAGMA {schema}.journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.02 * (attempt + 1))


def move_blobs(conn: sqlite3.Connection) -> None:
    """Step 4's first half: copy the images of a database older than step 4 into the images file, attached to `conn`
    as "images". A transaction over two WAL files is atomic per file only, so the copy commits on its own and step 4
    drops the old table after it: a crash in between leaves the images in both files, never in neither."""
    if "images" not in {row[1] for row in conn.execute("PRAGMA database_list")}:
        raise RuntimeError("step 4 needs the images file attached as 'images': it would drop the images otherwise")
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = 'blobs'").fetchone():
            count, size = conn.execute("SELECT count(*), coalesce(sum(size), 0) FROM main.blobs").fetchone()
            conn.execute(
                "INSERT OR IGNORE INTO images.blobs (sha256, mime, size, touched_at, data)"
                " SELECT sha256, mime, size, touched_at, data FROM main.blobs"
            )
            if count:
                log.info("store: %d images (%.1f MB) copied to their own file, once", count, size / 1e6)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending steps, each in its own BEGIN IMMEDIATE (so two processes opening at once apply it once).
    Step 4 needs the images file attached as "images" (see move_blobs)."""
    for version, description, sql in MIGRATIONS:
        if user_version(conn) >= version:
            continue
        for _ in range(MOVE_ATTEMPTS):
            if version == 4:
                move_blobs(conn)
            conn.execute("BEGIN IMMEDIATE")
            try:
                if version == 4 and user_version(conn) < version and _uncopied(conn):
                    conn.execute("ROLLBACK")  # an older process stored an image after the copy: copy again
                    continue
                if user_version(conn) < version:  # another process may have won the race
                    for statement in statements(sql):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {int(version)}")
                    log.info("store schema migrated to version %d: %s", version, description)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            break
        else:
            raise RuntimeError("step 4: an older bananabot keeps storing images in the old table; stop it first")
    return user_version(conn)


MOVE_ATTEMPTS = 10


def _uncopied(conn: sqlite3.Connection) -> bool:
    """Inside step 4's transaction (the database is locked): an old-table image the images file lacks?"""
    if not conn.execute("SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = 'blobs'").fetchone():
        return False
    sql = (
        "SELECT 1 FROM main.blobs AS old"
        " WHERE NOT EXISTS (SELECT 1 FROM images.blobs AS new WHERE new.sha256 = old.sha256) LIMIT 1"
    )
    return conn.execute(sql).fetchone() is not None
