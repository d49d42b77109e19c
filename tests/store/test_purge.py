from datetime import timedelta

from bot.store import Limits, Store, TurnResult
from tests.store import NOW, RESPONSE_JSON, Clock, held, make_turn

OLD = NOW - timedelta(days=60)
CUTOFF = NOW - timedelta(days=30)


async def test_purge_deletes_old_data_and_keeps_recent(store: Store, clock: Clock) -> None:
    clock.now = OLD  # every blob below was put long ago: only references keep them
    only_old = await store.put_blob(b"only-old", "image/png")
    shared = await store.put_blob(b"shared", "image/png")
    only_recent = await store.put_blob(b"only-recent", "image/png")
    orphan = await store.put_blob(b"orphan", "image/png")
    clock.now = NOW
    fresh_orphan = await store.put_blob(b"fresh-orphan", "image/png")  # its turn is about to be written

    old = await store.get_or_create_session(thread_key="old", user_key="u", now=OLD)
    await store.insert_turn(make_turn("old-1", old.id, created_at=OLD, request_json=RESPONSE_JSON % only_old))
    await store.finish_turn("old-1", TurnResult("done", "ok", finished_at=OLD, response_json=RESPONSE_JSON % shared))
    await store.end_session(old.id, now=OLD + timedelta(hours=1))

    recent = await store.get_or_create_session(thread_key="recent", user_key="u", now=NOW)
    await store.insert_turn(make_turn("recent-1", recent.id, request_json=RESPONSE_JSON % shared))
    await store.finish_turn(
        "recent-1", TurnResult("done", "ok", finished_at=NOW, response_json=RESPONSE_JSON % only_recent)
    )
    # Created long ago but still in use: its newest turn keeps it.
    long_lived = await store.get_or_create_session(thread_key="long", user_key="u", now=OLD)
    await store.insert_turn(make_turn("long-1", long_lived.id, created_at=OLD))
    await store.insert_turn(make_turn("long-2", long_lived.id, parent_id="long-1", created_at=NOW))

    await store.claim_event("old-event", now=OLD)
    await store.claim_event("new-event", now=NOW)
    limits = Limits(None, None)
    settled_old = await held(store, limits, now=OLD)
    await store.commit(settled_old.id, usd=0.0, now=OLD)
    held_old = await held(store, limits, now=OLD, owner="p")

    # 1 turn + 1 session + 1 event + 1 reservation + 2 blobs (only-old, orphan)
    assert await store.purge(before=CUTOFF) == 6

    assert await store.get_session(old.id) is None
    assert await store.get_turn("old-1") is None
    assert await store.get_blob(only_old) is None
    assert await store.get_blob(orphan) is None
    assert await store.get_blob(shared) == (b"shared", "image/png")
    assert await store.get_blob(only_recent) == (b"only-recent", "image/png")
    assert await store.get_blob(fresh_orphan) == (b"fresh-orphan", "image/png")
    assert await store.get_session(recent.id) is not None
    assert await store.get_turn("recent-1") is not None
    assert await store.get_session(long_lived.id) is not None
    assert [t.id for t in await store.ancestors("long-2", limit=5)] == ["long-2", "long-1"]
    assert await store.claim_event("old-event", now=NOW)
    assert not await store.claim_event("new-event", now=NOW)
    # The held reservation is still settleable; nothing else is left to purge.
    assert await store.refund(held_old.id, usd=0.0, now=NOW)
    assert await store.purge(before=CUTOFF) == 0


async def test_purge_spares_an_idle_session_while_a_turn_holds_its_thread(store: Store, clock: Clock) -> None:
    # Someone comes back to a session idle past retention: their turn holds the thread while it downloads, reads
    # the history and calls the model. A purge then must not delete the session under it (its turn row would fail).
    idle = await store.get_or_create_session(thread_key="idle", user_key="u", now=OLD)
    await store.insert_turn(make_turn("idle-1", idle.id, created_at=OLD))
    assert await store.try_lease("idle", owner="p", now=NOW, ttl=timedelta(minutes=3))

    await store.purge(before=CUTOFF)
    assert await store.get_session(idle.id) is not None and await store.get_turn("idle-1") is not None

    await store.release_lease("idle", owner="p")
    await store.purge(before=CUTOFF)
    assert await store.get_session(idle.id) is None
