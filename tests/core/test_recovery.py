"""Recovery with several processes on one database: only the turns of processes that died are failed."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path

from bot.dispatcher import dispatch
from bot.maintenance import reclaim_once
from bot.models import Invocation
from bot.services import Services
from bot.store.sqlite_schema import MIGRATIONS, statements, to_text
from commands import COMMANDS
from tests.core.conftest import ALICE, NOON, THREAD, Clock, die_after
from tests.fakes.chat import RecordingResponder
from tests.fakes.gemini import FakeGemini
from tests.store import make_turn


def database(services: Services) -> str:
    return services.settings.database_url.removeprefix("sqlite:///")


def statuses(db: str) -> list[tuple[str, str]]:
    """(status, outcome) of every turn, oldest first; read directly, as another process would see them."""
    with closing(sqlite3.connect(db)) as conn, conn:
        return [(row[0], row[1]) for row in conn.execute("SELECT status, outcome FROM turns ORDER BY created_at")]


async def test_a_starting_replica_leaves_the_turn_another_replica_is_running(
    make_services, clock: Clock, fake_gemini: FakeGemini, responder: RecordingResponder
) -> None:
    running = await make_services()
    fake_gemini.latency = 2
    task = asyncio.create_task(
        dispatch(Invocation("imagine", ALICE, THREAD, "a slow cat"), responder, running, COMMANDS)
    )
    while not fake_gemini.requests:
        await asyncio.sleep(0.02)

    clock.now = NOON + timedelta(minutes=1)  # the turn has been running for a while
    starting = await make_services()  # recovers at startup
    assert statuses(database(running)) == [("pending", "")]
    await reclaim_once(starting)  # its maintenance leaves it too
    assert statuses(database(running)) == [("pending", "")]

    [reply] = await task
    assert reply.images and statuses(database(running)) == [("done", "ImagesDelivered")]


async def test_the_pending_turn_of_a_replica_that_died_is_failed_by_a_survivors_maintenance(
    make_services, clock: Clock
) -> None:
    survivor = await make_services()
    die_after(
        database(survivor),
        """
        session = await store.get_or_create_session(thread_key='elsewhere', user_key='console:bob', now=now)
        await store.insert_turn(TurnRow(id='t1', session_id=session.id, parent_id=None, kind='imagine',
            user_key='console:bob', user_name='Bob', prompt='a dog', model='m', aspect_ratio=None,
            image_size=None, request_json='{}', created_at=now, owner=owner))
        """,
    )
    assert statuses(database(survivor)) == [("pending", "")]

    clock.now = NOON + timedelta(minutes=1)
    await reclaim_once(survivor)
    assert statuses(database(survivor)) == [("failed", "interrupted")]
    assert await survivor.store.pending_turn_owners() == []


def insert_ownerless_turn(db: Path, turn_id: str, created_at: datetime) -> None:
    """A pending turn as a version without turn owners writes it (no owner column, or NULL in it)."""
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(
            "INSERT OR IGNORE INTO sessions (id, thread_key, created_by, created_at) VALUES ('s1', 'k', 'u', ?)",
            (to_text(created_at),),
        )
        conn.execute(
            "INSERT INTO turns (id, session_id, kind, user_key, user_name, prompt, model, request_json, created_at,"
            " status) VALUES (?, 's1', 'imagine', 'u', 'U', 'p', 'm', '{}', ?, 'pending')",
            (turn_id, to_text(created_at)),
        )


async def test_a_turn_pending_from_before_turns_had_an_owner_is_failed_at_startup_only(
    make_services, clock: Clock, tmp_path: Path
) -> None:
    db = tmp_path / "bananabot.db"  # where make_services keeps it
    with closing(sqlite3.connect(db)) as conn, conn:  # the schema before migration 3
        for version, _, sql in MIGRATIONS[:2]:
            for statement in statements(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
    insert_ownerless_turn(db, "before", NOON - timedelta(hours=1))

    services = await make_services()
    assert statuses(str(db)) == [("failed", "interrupted")]
    turn = await services.store.get_turn("before")
    assert turn is not None and turn.owner is None

    # During a rolling upgrade a replica still on the old version runs ownerless turns: maintenance leaves them.
    insert_ownerless_turn(db, "during", NOON)
    clock.now = NOON + timedelta(minutes=1)
    await reclaim_once(services)
    assert statuses(str(db)) == [("failed", "interrupted"), ("pending", "")]


async def test_a_replica_elsewhere_keeps_its_turn_while_its_lease_lives_and_loses_it_after(
    make_services, clock: Clock
) -> None:
    # A process on another machine (or before a container restart) can't be probed; its thread lease can.
    survivor = await make_services()
    store, other = survivor.store, "other-host:4242:0a1b2c3d"
    session = await store.get_or_create_session(thread_key="elsewhere", user_key="console:bob", now=NOON)
    ttl = timedelta(seconds=survivor.settings.reservation_ttl_seconds)
    assert await store.try_lease("elsewhere", owner=other, now=NOON, ttl=ttl)
    await store.insert_turn(make_turn("t1", session.id, created_at=NOON, owner=other))

    clock.now = NOON + ttl / 2
    await reclaim_once(survivor)
    assert statuses(database(survivor)) == [("pending", "")]
    await store.renew(other, until=clock.now + ttl)  # its heartbeat

    clock.now += ttl + timedelta(seconds=1)  # no heartbeat since: it stopped
    await reclaim_once(survivor)
    assert statuses(database(survivor)) == [("failed", "interrupted")]
