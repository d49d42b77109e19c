"""What only the SQLite backend promises: URLs, schema, pragmas, transactions."""

import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from bot.store import SqliteStore, open_store
from bot.store.sqlite_schema import LATEST
from tests.store import NOW, USER

TABLES = {
    "sessions",
    "turns",
    "turn_blobs",
    "reservations",
    "usage_counters",
    "user_policies",
    "grants",
    "seen_events",
}


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "nested" / "dir" / "bot.db")
    await store.open()
    yield store
    await store.close()


async def test_open_creates_the_schema_and_parent_dirs(sqlite_store: SqliteStore, tmp_path: Path) -> None:
    assert (tmp_path / "nested" / "dir" / "bot.db").is_file()
    assert await sqlite_store.schema_version() == LATEST
    with sqlite3.connect(tmp_path / "nested" / "dir" / "bot.db") as raw:
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables >= TABLES
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == LATEST


def pragmas(conn: sqlite3.Connection, *names: str) -> dict[str, object]:
    return {name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in names}


async def test_pragmas(sqlite_store: SqliteStore) -> None:
    names = ("foreign_keys", "busy_timeout", "synchronous", "journal_mode", "wal_autocheckpoint", "journal_size_limit")
    writer = await sqlite_store.write(lambda c: pragmas(c, *names))
    assert writer == {
        "foreign_keys": 1,
        "busy_timeout": 5000,
        "synchronous": 1,
        "journal_mode": "wal",
        "wal_autocheckpoint": 10_000,
        "journal_size_limit": 64 * 1024 * 1024,
    }
    for blob in (False, True):
        reader = await sqlite_store.read(lambda c: pragmas(c, "busy_timeout", "query_only", "journal_mode"), blob=blob)
        assert reader == {"busy_timeout": 5000, "query_only": 1, "journal_mode": "wal"}


async def test_the_database_allows_one_active_session_per_thread(sqlite_store: SqliteStore) -> None:
    session = await sqlite_store.get_or_create_session(thread_key="t", user_key=USER, now=NOW)
    with pytest.raises(sqlite3.IntegrityError):
        await sqlite_store.write(
            lambda c: c.execute(
                "INSERT INTO sessions (id, thread_key, created_by, created_at) VALUES ('x', 't', 'u', '2026')"
            )
        )
    await sqlite_store.end_session(session.id, now=NOW)
    assert (await sqlite_store.get_or_create_session(thread_key="t", user_key=USER, now=NOW)).id != session.id


async def test_a_failed_write_rolls_back(sqlite_store: SqliteStore) -> None:
    def insert_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO seen_events (event_id, seen_at) VALUES ('e', '2026')")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await sqlite_store.write(insert_then_fail)
    assert await sqlite_store.claim_event("e", now=NOW)
    assert await sqlite_store.ping()


async def test_naive_datetimes_are_refused(sqlite_store: SqliteStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        await sqlite_store.claim_event("e", now=datetime(2026, 11, 21, 12))  # noqa: DTZ001


async def test_using_an_unopened_store_says_so(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not open"):
        await SqliteStore(tmp_path / "x.db").get_session("s")


async def test_memory_database(tmp_path: Path) -> None:
    store = open_store("sqlite:///:memory:")
    await store.open()
    assert await store.claim_event("e", now=NOW)
    assert await store.schema_version() == LATEST
    await store.close()


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///data/bot.db", Path("data/bot.db")),
        ("sqlite:////var/lib/bananabot/bot.db", Path("/var/lib/bananabot/bot.db")),
        ("data/bot.db", Path("data/bot.db")),
        ("/srv/bot.db", Path("/srv/bot.db")),
    ],
)
def test_open_store_urls(url: str, path: Path) -> None:
    store = open_store(url)
    assert isinstance(store, SqliteStore)
    assert store.path == path


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://db/bananabot", "unsupported store URL scheme 'mysql'"),
        ("sqlite://host/bot.db", "malformed SQLite URL"),
        ("sqlite://", "malformed SQLite URL"),
        ("", "empty"),
    ],
)
def test_open_store_rejects(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(url)


async def test_open_store_file_path_opens(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/deep/er/bot.db")
    await store.open()
    assert (tmp_path / "deep" / "er" / "bot.db").is_file()
    await store.close()
