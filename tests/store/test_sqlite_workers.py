"""The SQLite store's threads: group commit with a savepoint per write, cancellation, batching lanes, exact limits."""

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.store import Limits, Refusal, Reservation, SqliteStore
from bot.store.sqlite_workers import MAX_BATCH_BYTES, Job, run_group
from tests.store import NOW, USER, Gate, hold

EVENTS = "SELECT event_id FROM seen_events ORDER BY event_id"


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "bot.db")
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    """The writer's connection, as the store prepares it, used directly (no threads)."""
    return SqliteStore(tmp_path / "raw.db")._connect_writer()


def insert(event_id: str) -> Callable[[sqlite3.Connection], str]:
    def fn(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO seen_events (event_id, seen_at) VALUES (?, '2026')", (event_id,))
        return event_id

    return fn


def insert_then_fail(event_id: str) -> Callable[[sqlite3.Connection], str]:
    def fn(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO seen_events (event_id, seen_at) VALUES (?, '2026')", (event_id,))
        raise RuntimeError(f"{event_id} failed")

    return fn


def job(fn: Callable[[sqlite3.Connection], object]) -> Job:
    return Job(fn, asyncio.get_running_loop().create_future())


def events(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute(EVENTS)]


async def stored_events(store: SqliteStore) -> list[str]:
    return await store.read(events)


def assert_unlocked(store: SqliteStore) -> None:
    """No transaction is left open on the writer: another connection can take the write lock at once."""
    other = sqlite3.connect(store.path, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()


# Group commit, on the writer's connection directly


async def test_a_failing_job_rolls_back_alone_and_the_others_commit(conn: sqlite3.Connection) -> None:
    jobs = [job(insert("a")), job(insert_then_fail("b")), job(insert("c"))]
    run_group(conn, jobs)
    assert events(conn) == ["a", "c"]
    assert [j.result for j in jobs] == ["a", None, "c"]
    assert jobs[0].error is None and jobs[2].error is None
    assert isinstance(jobs[1].error, RuntimeError) and str(jobs[1].error) == "b failed"
    assert not conn.in_transaction


async def test_later_jobs_see_earlier_ones_in_the_same_group(conn: sqlite3.Connection) -> None:
    def count(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT COUNT(*) FROM seen_events").fetchone()[0])

    jobs = [job(insert("a")), job(count), job(insert("a")), job(count)]
    run_group(conn, jobs)
    assert jobs[1].result == 1
    assert isinstance(jobs[2].error, sqlite3.IntegrityError)  # the duplicate, rolled back alone
    assert jobs[3].result == 1


async def test_a_group_whose_commit_fails_is_rerun_one_job_per_transaction(conn: sqlite3.Connection) -> None:
    def orphan_turn(conn: sqlite3.Connection) -> None:
        # A deferred foreign key is only checked at COMMIT: the whole group's COMMIT fails.
        conn.execute("PRAGMA defer_foreign_keys = ON")
        conn.execute(
            "INSERT INTO turns (id, session_id, kind, user_key, user_name, prompt, model, request_json, created_at,"
            " status) VALUES ('t', 'no-such-session', 'imagine', 'u', 'U', 'p', 'm', '{}', '2026', 'pending')"
        )

    jobs = [job(insert("a")), job(orphan_turn), job(insert("c"))]
    run_group(conn, jobs)
    assert events(conn) == ["a", "c"]
    assert conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 0
    assert jobs[0].error is None and jobs[2].error is None
    assert isinstance(jobs[1].error, sqlite3.IntegrityError)
    assert not conn.in_transaction


async def test_a_job_that_ends_the_transaction_fails_alone(conn: sqlite3.Connection) -> None:
    def abandon(conn: sqlite3.Connection) -> None:  # stands for an error after which SQLite rolls everything back
        conn.execute("ROLLBACK")
        raise sqlite3.OperationalError("disk I/O error")

    jobs = [job(insert("a")), job(abandon), job(insert("c"))]
    run_group(conn, jobs)
    assert events(conn) == ["a", "c"]
    assert isinstance(jobs[1].error, sqlite3.OperationalError)
    assert jobs[0].error is None and jobs[2].error is None
    assert not conn.in_transaction


async def test_when_begin_fails_every_job_gets_the_error(conn: sqlite3.Connection, tmp_path: Path) -> None:
    other = sqlite3.connect(tmp_path / "raw.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    conn.execute("PRAGMA busy_timeout = 0")
    jobs = [job(insert("a")), job(insert("b"))]
    run_group(conn, jobs)
    assert all(isinstance(j.error, sqlite3.OperationalError) and "locked" in str(j.error) for j in jobs)
    other.execute("ROLLBACK")
    other.close()
    assert events(conn) == []
    assert not conn.in_transaction


# Through the store


@pytest.fixture
def groups(sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each group the store's writers (database and images) commit from now on."""
    sizes: list[int] = []

    def counting_run_group(conn: sqlite3.Connection, jobs: list[Job]) -> None:
        sizes.append(len(jobs))
        run_group(conn, jobs)

    for lane in (sqlite_store._writer, sqlite_store._images):
        monkeypatch.setattr(lane, "_run_batch", counting_run_group)
    return sizes


async def test_concurrent_writes_share_a_transaction_and_a_failure_stays_its_own(
    sqlite_store: SqliteStore, groups: list[int]
) -> None:
    results = await asyncio.gather(
        sqlite_store.write(insert("a")),
        sqlite_store.write(insert_then_fail("b")),
        sqlite_store.claim_event("c", now=NOW),
        sqlite_store.write(insert_then_fail("d")),
        return_exceptions=True,
    )
    assert groups == [4]  # queued in one loop iteration: one group commit
    assert results[0] == "a" and results[2] is True
    assert [str(r) for r in results[1::2]] == ["b failed", "d failed"]
    assert await stored_events(sqlite_store) == ["a", "c"]


async def test_a_burst_of_images_commits_a_few_megabytes_at_a_time(
    sqlite_store: SqliteStore, groups: list[int]
) -> None:
    # 12 images of 1.5 MB queued at once: one 18 MB transaction would hold every turn until the last image is
    # written; in steps of at most MAX_BATCH_BYTES the first turns go on early. Small writes still group freely.
    images = [bytes([i]) * 1_500_000 for i in range(12)]
    keys = await asyncio.gather(*(sqlite_store.put_blob(image, "image/png") for image in images))
    assert len(groups) >= 12 * 1_500_000 // MAX_BATCH_BYTES and max(groups) * 1_500_000 <= MAX_BATCH_BYTES
    assert [await sqlite_store.get_blob(key) for key in keys] == [(image, "image/png") for image in images]

    groups.clear()
    await asyncio.gather(*(sqlite_store.claim_event(f"e{i}", now=NOW) for i in range(40)))
    assert groups == [40]


async def test_a_cancelled_waiter_whose_write_has_not_started_is_skipped(sqlite_store: SqliteStore) -> None:
    gate = Gate()
    holding = asyncio.ensure_future(sqlite_store.write(gate))
    await gate.wait_entered()
    queued = asyncio.ensure_future(sqlite_store.write(insert("never")))
    await asyncio.sleep(0)
    queued.cancel()
    gate.opened.set()
    assert await holding == "gate"
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert await sqlite_store.claim_event("after", now=NOW)
    assert await stored_events(sqlite_store) == ["after"]
    assert_unlocked(sqlite_store)


async def test_a_cancelled_waiter_whose_write_started_completes_it_and_the_writer_goes_on(
    sqlite_store: SqliteStore,
) -> None:
    gate = Gate()

    def insert_then_wait(conn: sqlite3.Connection) -> str:
        insert("started")(conn)
        return gate(conn)

    running = asyncio.ensure_future(sqlite_store.write(insert_then_wait))
    await gate.wait_entered()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    gate.opened.set()
    assert await sqlite_store.claim_event("after", now=NOW)  # queued behind it: runs once it is done
    assert await stored_events(sqlite_store) == ["after", "started"]
    assert_unlocked(sqlite_store)


async def test_a_cancelled_waiter_whose_write_fails_leaves_no_trace(sqlite_store: SqliteStore) -> None:
    gate = Gate()

    def insert_wait_fail(conn: sqlite3.Connection) -> None:
        insert("half")(conn)
        gate(conn)
        raise RuntimeError("late failure")

    running = asyncio.ensure_future(sqlite_store.write(insert_wait_fail))
    await gate.wait_entered()
    running.cancel()
    gate.opened.set()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert await sqlite_store.claim_event("after", now=NOW)
    assert await stored_events(sqlite_store) == ["after"]
    assert_unlocked(sqlite_store)


async def test_reads_do_not_wait_for_the_writer_nor_for_blob_reads(sqlite_store: SqliteStore) -> None:
    await sqlite_store.claim_event("e", now=NOW)
    writer, blobs = Gate(), Gate()
    holding = [
        asyncio.ensure_future(sqlite_store.write(writer)),
        asyncio.ensure_future(sqlite_store.read(blobs, blob=True)),
    ]
    await writer.wait_entered()
    await blobs.wait_entered()
    # Both other threads are held until the gates open: these answer anyway.
    assert (await asyncio.wait_for(sqlite_store.usage(USER, now=NOW), timeout=30)).day_credits == 0
    assert await asyncio.wait_for(stored_events(sqlite_store), timeout=30) == ["e"]
    assert not writer.opened.is_set() and not blobs.opened.is_set()
    writer.opened.set()
    blobs.opened.set()
    assert await asyncio.gather(*holding) == ["gate", "gate"]


async def test_a_failing_read_does_not_disturb_the_others_in_its_batch(sqlite_store: SqliteStore) -> None:
    await sqlite_store.claim_event("e", now=NOW)
    results = await asyncio.gather(
        stored_events(sqlite_store),
        sqlite_store.read(lambda conn: conn.execute("SELECT nope FROM nowhere").fetchall()),
        sqlite_store.read(lambda conn: conn.execute("INSERT INTO seen_events VALUES ('x', 'y')").fetchall()),
        stored_events(sqlite_store),
        return_exceptions=True,
    )
    assert results[0] == results[3] == ["e"]
    assert isinstance(results[1], sqlite3.OperationalError)
    assert isinstance(results[2], sqlite3.OperationalError)  # reads are read-only
    assert await stored_events(sqlite_store) == ["e"]


async def test_close_lets_queued_writes_finish_then_refuses_new_ones(sqlite_store: SqliteStore) -> None:
    writes = [asyncio.ensure_future(sqlite_store.claim_event(f"e{i}", now=NOW)) for i in range(20)]
    await asyncio.sleep(0)
    await sqlite_store.close()
    assert all(await asyncio.gather(*writes))
    with pytest.raises(RuntimeError, match="not open"):
        await sqlite_store.claim_event("late", now=NOW)
    with pytest.raises(RuntimeError, match="not open"):
        await sqlite_store.usage(USER, now=NOW)
    await sqlite_store.open()
    assert len(await stored_events(sqlite_store)) == 20


async def test_64_tasks_against_one_limit_get_exactly_the_limit(sqlite_store: SqliteStore, groups: list[int]) -> None:
    limits = Limits(daily_credits=150, monthly_credits=None)
    granted: list[Reservation] = []

    async def spender() -> None:
        while True:
            held = await hold(sqlite_store, limits, usd=0.01)
            if isinstance(held, Refusal):
                assert held.scope == "daily" and held.limit == 150
                return
            granted.append(held)
            assert await sqlite_store.commit(held.id, usd=0.01, now=NOW)

    await asyncio.gather(*(spender() for _ in range(64)))
    assert len(granted) == 150
    assert len({r.id for r in granted}) == 150
    usage = await sqlite_store.usage(USER, now=NOW)
    assert (usage.day_credits, usage.month_credits) == (150, 150)
    assert usage.month_usd == pytest.approx(1.5)
    assert max(groups) > 1  # the race really ran through group commits


async def test_memory_store_reads_through_the_writer() -> None:
    store = SqliteStore(":memory:")
    await store.open()
    try:
        await asyncio.gather(*(store.claim_event(f"e{i}", now=NOW) for i in range(5)))
        assert await stored_events(store) == [f"e{i}" for i in range(5)]
        assert (await store.usage(USER, now=NOW)).day_credits == 0
    finally:
        await store.close()
