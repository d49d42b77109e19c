import asyncio
from datetime import timedelta

from bot.store import Store, TurnResult
from tests.store import NOW, REQUEST_JSON, RESPONSE_JSON, USER, make_turn
from tests.store.conftest import StoreFactory

THREAD = "discord:guild-1:chan-1:thread-1"


async def test_get_or_create_returns_the_same_active_session(store: Store) -> None:
    first = await store.get_or_create_session(thread_key=THREAD, user_key=USER, now=NOW)
    second = await store.get_or_create_session(thread_key=THREAD, user_key="discord:other", now=NOW + timedelta(1))
    assert second == first
    assert first.created_by == USER and first.created_at == NOW and first.ended_at is None
    assert await store.active_session(THREAD) == first
    assert await store.get_session(first.id) == first


async def test_concurrent_get_or_create_makes_one_session(store: Store) -> None:
    sessions = await asyncio.gather(
        *(store.get_or_create_session(thread_key=THREAD, user_key=f"u{i}", now=NOW) for i in range(50))
    )
    assert len({s.id for s in sessions}) == 1


async def test_concurrent_get_or_create_across_processes_makes_one_session(
    store: Store, new_store: StoreFactory
) -> None:
    other = new_store()
    await other.open()
    sessions = await asyncio.gather(
        *(s.get_or_create_session(thread_key=THREAD, user_key=USER, now=NOW) for s in [store, other] * 20)
    )
    assert len({s.id for s in sessions}) == 1


async def test_ended_session_is_replaced_by_a_fresh_one(store: Store) -> None:
    first = await store.get_or_create_session(thread_key=THREAD, user_key=USER, now=NOW)
    await store.end_session(first.id, now=NOW + timedelta(minutes=5))
    assert await store.active_session(THREAD) is None
    ended = await store.get_session(first.id)
    assert ended is not None and ended.ended_at == NOW + timedelta(minutes=5)
    fresh = await store.get_or_create_session(thread_key=THREAD, user_key=USER, now=NOW + timedelta(minutes=6))
    assert fresh.id != first.id
    assert await store.active_session(THREAD) == fresh
    assert await store.active_session("another-thread") is None
    assert await store.get_session("nope") is None


async def test_session_and_turns_survive_a_restart_byte_exact(store: Store, new_store: StoreFactory) -> None:
    session = await store.get_or_create_session(thread_key=THREAD, user_key=USER, now=NOW)
    request = REQUEST_JSON % ("a" * 64)
    response = RESPONSE_JSON % ("b" * 64)
    turn = make_turn("t1", session.id, request_json=request)
    await store.insert_turn(turn)
    result = TurnResult(status="done", outcome="ok", finished_at=NOW + timedelta(seconds=9), response_json=response)
    await store.finish_turn("t1", result)
    await store.set_head(session.id, "t1")
    await store.close()

    again = new_store()
    await again.open()
    stored = await again.get_turn("t1")
    assert stored is not None
    assert stored.request_json == request and stored.response_json == response
    assert "Cq8+Ab/9xY+/z0==" in stored.response_json
    assert stored.finished_at == NOW + timedelta(seconds=9)
    reopened = await again.active_session(THREAD)
    assert reopened is not None and reopened.id == session.id and reopened.head_turn_id == "t1"


async def test_recent_sessions_newest_first(store: Store) -> None:
    ids = []
    for i in range(4):
        session = await store.get_or_create_session(thread_key=f"t{i}", user_key=USER, now=NOW + timedelta(hours=i))
        ids.append(session.id)
    await store.get_or_create_session(thread_key="other", user_key="discord:other", now=NOW)
    await store.end_session(ids[1], now=NOW + timedelta(hours=5))
    recent = await store.recent_sessions(USER, limit=3)
    assert [s.id for s in recent] == [ids[3], ids[2], ids[1]]
    assert await store.recent_sessions("nobody", limit=3) == []
