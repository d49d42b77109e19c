import dataclasses
from datetime import timedelta

import pytest

from bot.store import SessionRow, Store, TurnResult
from tests.store import NOW, USER, make_turn


@pytest.fixture
async def session(store: Store) -> SessionRow:
    return await store.get_or_create_session(thread_key="thread", user_key=USER, now=NOW)


async def statuses(store: Store, *turn_ids: str) -> list[str]:
    turns = [await store.get_turn(turn_id) for turn_id in turn_ids]
    return [turn.status if turn else "missing" for turn in turns]


async def test_insert_finish_get(store: Store, session: SessionRow) -> None:
    turn = make_turn("t1", session.id, owner="proc-a")
    await store.insert_turn(turn)
    assert await store.get_turn("t1") == turn
    result = TurnResult(
        status="done",
        outcome="ok",
        finished_at=NOW + timedelta(seconds=12),
        outcome_detail="2 images",
        response_json='{"role":"model","parts":[]}',
        prompt_tokens=11,
        candidate_tokens=1290,
        thought_tokens=300,
        cost_usd=0.039,
        credits=2,
    )
    await store.finish_turn("t1", result)
    expected = dataclasses.replace(turn, **{f.name: getattr(result, f.name) for f in dataclasses.fields(result)})
    assert await store.get_turn("t1") == expected
    assert await store.get_turn("missing") is None


async def test_ancestors_nearest_first_and_limited(store: Store, session: SessionRow) -> None:
    # t1 <- t2 <- t3 <- t4, and a branch t2 <- t5
    parents = {"t1": None, "t2": "t1", "t3": "t2", "t4": "t3", "t5": "t2"}
    for i, (turn_id, parent) in enumerate(parents.items()):
        await store.insert_turn(make_turn(turn_id, session.id, parent_id=parent, created_at=NOW + timedelta(i)))
    assert [t.id for t in await store.ancestors("t4", limit=10)] == ["t4", "t3", "t2", "t1"]
    assert [t.id for t in await store.ancestors("t4", limit=2)] == ["t4", "t3"]
    assert [t.id for t in await store.ancestors("t5", limit=10)] == ["t5", "t2", "t1"]
    assert [t.id for t in await store.ancestors("t1", limit=1)] == ["t1"]
    assert await store.ancestors("t4", limit=0) == []
    assert await store.ancestors("missing", limit=5) == []
    root = await store.root_of("t4")
    assert root is not None and root.id == "t1"
    root = await store.root_of("t1")
    assert root is not None and root.id == "t1"
    assert await store.root_of("missing") is None


async def test_set_head(store: Store, session: SessionRow) -> None:
    await store.insert_turn(make_turn("t1", session.id))
    await store.set_head(session.id, "t1")
    current = await store.get_session(session.id)
    assert current is not None and current.head_turn_id == "t1"
    await store.set_head(session.id, None)
    current = await store.get_session(session.id)
    assert current is not None and current.head_turn_id is None


async def test_fail_pending_turns_only_touches_old_pending_ones(store: Store, session: SessionRow) -> None:
    await store.insert_turn(make_turn("old", session.id, created_at=NOW - timedelta(hours=1), owner="dead"))
    await store.insert_turn(make_turn("new", session.id, created_at=NOW, owner="dead"))
    await store.insert_turn(make_turn("done", session.id, created_at=NOW - timedelta(hours=2), owner="dead"))
    await store.finish_turn("done", TurnResult(status="done", outcome="ok", finished_at=NOW - timedelta(hours=2)))

    assert await store.fail_pending_turns(dead_owners=("dead",), before=NOW - timedelta(minutes=1), now=NOW) == 1

    old = await store.get_turn("old")
    assert old is not None
    assert (old.status, old.outcome, old.finished_at) == ("failed", "interrupted", NOW)
    new = await store.get_turn("new")
    assert new is not None and new.status == "pending" and new.finished_at is None
    done = await store.get_turn("done")
    assert done is not None and done.status == "done" and done.outcome == "ok"
    assert await store.fail_pending_turns(dead_owners=("dead",), before=NOW - timedelta(minutes=1), now=NOW) == 0


async def test_fail_pending_turns_spares_the_turns_of_live_owners(store: Store, session: SessionRow) -> None:
    for turn_id, owner in [("dead", "proc-dead"), ("live", "proc-live"), ("ownerless", None)]:
        await store.insert_turn(make_turn(turn_id, session.id, created_at=NOW - timedelta(hours=1), owner=owner))
    assert sorted(await store.pending_turn_owners()) == ["proc-dead", "proc-live"]

    assert await store.fail_pending_turns(dead_owners=("proc-dead", "proc-gone"), before=NOW, now=NOW) == 1
    assert await statuses(store, "dead", "live", "ownerless") == ["failed", "pending", "pending"]
    assert await store.fail_pending_turns(dead_owners=(), before=NOW, now=NOW, ownerless=True) == 1
    assert await statuses(store, "dead", "live", "ownerless") == ["failed", "pending", "failed"]
    assert await store.pending_turn_owners() == ["proc-live"]


async def test_owners_of_pending_turns_without_a_live_lease_are_unleased(store: Store, session: SessionRow) -> None:
    # Liveness seen through the database, for owners on other machines: a running turn's owner holds its lease.
    ttl = timedelta(minutes=5)
    for turn_id, owner in [("a", "host-a:1:x"), ("b", "host-b:1:y"), ("c", None)]:
        await store.insert_turn(make_turn(turn_id, session.id, created_at=NOW, owner=owner))
    assert await store.try_lease("thread-a", owner="host-a:1:x", now=NOW, ttl=ttl)
    assert await store.try_lease("thread-b", owner="host-b:1:y", now=NOW - 2 * ttl, ttl=ttl)  # long expired
    assert await store.unleased_turn_owners(now=NOW) == ["host-b:1:y"]
    assert await store.unleased_turn_owners(now=NOW + 2 * ttl) == ["host-a:1:x", "host-b:1:y"]
    await store.finish_turn("b", TurnResult(status="done", outcome="ok", finished_at=NOW))
    assert await store.unleased_turn_owners(now=NOW + 2 * ttl) == ["host-a:1:x"]
