"""SQLite keeps images in a file of their own beside the database, with their own writer (see SqliteStore)."""

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from bot.store import SqliteStore, sqlite_schema
from bot.store.sqlite import images_path
from bot.store.sqlite_schema import IMAGES_PAGE_SIZE, LATEST, MIGRATIONS, create_images, move_blobs, statements
from tests.store import NOW, Gate


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "bananabot.db"


@pytest.fixture
async def store(db: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(db)
    await store.open()
    yield store
    await store.close()


def raw(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path))


def tables(path: Path) -> set[str]:
    with raw(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


@pytest.mark.parametrize(
    ("database", "images"),
    [
        ("data/bananabot.db", "data/bananabot.images.db"),
        ("/srv/bot.sqlite3", "/srv/bot.images.sqlite3"),
        ("data/bot", "data/bot.images"),
    ],
)
def test_the_images_file_sits_beside_the_database(database: str, images: str) -> None:
    assert images_path(database) == Path(images)
    assert images_path(":memory:") is None


async def test_images_live_in_their_own_file_with_big_pages(store: SqliteStore, db: Path) -> None:
    key = await store.put_blob(b"\x89PNG" + bytes(200_000), "image/png")
    images = db.with_name("bananabot.images.db")
    assert "blobs" not in tables(db) and "turn_blobs" in tables(db)
    assert tables(images) == {"blobs"}
    with raw(images) as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == IMAGES_PAGE_SIZE
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT sha256, size FROM blobs").fetchall() == [(key, 200_004)]
    assert await store.get_blob(key) == (b"\x89PNG" + bytes(200_000), "image/png")


async def test_image_commits_reach_the_disk_before_a_turn_can_refer_to_them(store: SqliteStore) -> None:
    # Two WAL files have no common order on an OS crash: the images' must be synced at commit (FULL = 2).
    assert await store._images.run(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0]) == 2
    assert await store.write(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0]) == 1  # NORMAL


async def test_a_database_write_does_not_wait_behind_an_image_write(store: SqliteStore) -> None:
    gate = Gate()
    holding = asyncio.ensure_future(store._images.run(gate))  # the image writer, busy with a long write
    await gate.wait_entered()
    assert await asyncio.wait_for(store.claim_event("e", now=NOW), timeout=30)
    session = await asyncio.wait_for(store.get_or_create_session(thread_key="t", user_key="u", now=NOW), timeout=30)
    assert session.thread_key == "t"
    assert not holding.done()
    gate.opened.set()
    assert await holding == "gate"


async def test_the_image_writer_cannot_write_the_database(store: SqliteStore) -> None:
    # It attaches the database read-only: purge reads which images turns refer to, and nothing more.
    def write_through(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO meta.seen_events (event_id, seen_at) VALUES ('x', 'y')")

    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await store._images.run(write_through)
    assert await store.claim_event("x", now=NOW)  # and the database's writer is not locked by it


async def test_a_checkpoint_moves_written_images_into_the_images_file(store: SqliteStore, db: Path) -> None:
    # Images stay in the WAL until 40 MB of it (not at every third image); maintenance's checkpoint each minute
    # writes them into their file, from the blob reader's connection, while the writer goes on.
    images = db.with_name("bananabot.images.db")
    pictures = [bytes([i]) * 1_000_000 for i in range(5)]
    keys = [await store.put_blob(picture, "image/png") for picture in pictures]
    assert images.stat().st_size < 1_000_000 and Path(f"{images}-wal").stat().st_size > 5_000_000
    await store.checkpoint()
    assert images.stat().st_size > 5_000_000
    assert [await store.get_blob(key) for key in keys] == [(picture, "image/png") for picture in pictures]


async def test_memory_store_keeps_images_too() -> None:
    store = SqliteStore(":memory:", clock=lambda: NOW - timedelta(days=1))
    await store.open()
    try:
        key = await store.put_blob(b"img", "image/png")
        assert await store.get_blob(key) == (b"img", "image/png")
        assert await store.purge(before=NOW) == 1  # referred to by no turn: purged with the rest
        assert await store.get_blob(key) is None
    finally:
        await store.close()


# Upgrading a database from before step 4, whose images are in its own `blobs` table


def old_database(db: Path, images: dict[str, bytes]) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    with raw(db) as conn, conn:
        for version, _, sql in MIGRATIONS[:3]:
            for statement in statements(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
        for sha, data in images.items():
            conn.execute(
                "INSERT INTO blobs (sha256, mime, size, data, touched_at) VALUES (?, 'image/png', ?, ?, ?)",
                (sha, len(data), data, NOW.isoformat()),
            )


OLD = {"a" * 64: b"first image", "b" * 64: bytes(3_000_000)}
EXPECTED = {key: (data, "image/png") for key, data in OLD.items()}


async def test_an_older_database_s_images_move_to_their_file_once(db: Path) -> None:
    old_database(db, OLD)
    store = SqliteStore(db)
    await store.open()
    try:
        assert await store.schema_version() == LATEST
        assert {key: await store.get_blob(key) for key in OLD} == {
            key: (data, "image/png") for key, data in OLD.items()
        }
        assert "blobs" not in tables(db)
    finally:
        await store.close()


async def test_a_move_cut_off_before_the_drop_is_finished_on_the_next_open(db: Path) -> None:
    # The copy commits on its own; a crash before step 4 commits leaves the images in both files, never in neither.
    old_database(db, OLD)
    with raw(db) as conn:
        conn.isolation_level = None
        conn.execute("ATTACH DATABASE ? AS images", (str(images_path(db)),))
        create_images(conn, "images")
        move_blobs(conn)
    assert "blobs" in tables(db) and "blobs" in tables(images_path(db) or db)

    store = SqliteStore(db)
    await store.open()
    try:
        assert {key: await store.get_blob(key) for key in OLD} == {
            key: (data, "image/png") for key, data in OLD.items()
        }
        assert "blobs" not in tables(db)
    finally:
        await store.close()


def test_step_4_refuses_to_drop_images_it_could_not_copy(db: Path) -> None:
    old_database(db, OLD)
    with raw(db) as conn, pytest.raises(RuntimeError, match="attached"):
        move_blobs(conn)
    assert "blobs" in tables(db)


async def test_an_image_an_older_process_stores_during_the_move_is_not_dropped(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README says to stop older processes first; if one still writes between the copy and the drop, the drop
    # waits for another copy rather than take the image with it.
    old_database(db, OLD)
    late = "c" * 64
    real_move, moves = sqlite_schema.move_blobs, []

    def move_then_an_older_process_writes(conn: sqlite3.Connection) -> None:
        real_move(conn)
        if not moves:
            with raw(db) as older, older:
                older.execute(
                    "INSERT INTO blobs (sha256, mime, size, data, touched_at) VALUES (?, 'image/png', 4, ?, ?)",
                    (late, b"late", NOW.isoformat()),
                )
        moves.append(conn)

    monkeypatch.setattr(sqlite_schema, "move_blobs", move_then_an_older_process_writes)
    store = SqliteStore(db)
    await store.open()
    try:
        assert len(moves) == 2
        assert await store.get_blob(late) == (b"late", "image/png")
        assert {key: await store.get_blob(key) for key in OLD} == EXPECTED
    finally:
        await store.close()


async def test_an_images_file_from_a_newer_release_is_refused(store: SqliteStore, db: Path) -> None:
    await store.close()
    with raw(images_path(db) or db) as conn, conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(RuntimeError, match="newer"):
        await SqliteStore(db).open()
    with raw(images_path(db) or db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 99  # and left as it was
