"""Contract: thread leases (one turn per thread across processes) and owner heartbeats."""

from __future__ import annotations

from datetime import timedelta

from bot.store.base import Limits
from tests.store import NOW

KEY = "slack:T1:C1:1700000000.000100"
TTL = timedelta(seconds=60)


async def test_a_lease_is_exclusive_until_released_or_expired(new_store) -> None:
    first, second = new_store(), new_store()
    await first.open()
    await second.open()
    assert await first.try_lease(KEY, owner="a", now=NOW, ttl=TTL)
    assert await first.try_lease(KEY, owner="a", now=NOW, ttl=TTL)  # re-entrant for its owner
    assert not await second.try_lease(KEY, owner="b", now=NOW, ttl=TTL)
    assert await second.try_lease("other-thread", owner="b", now=NOW, ttl=TTL)
    await second.release_lease(KEY, owner="b")  # not b's to release
    assert not await second.try_lease(KEY, owner="b", now=NOW + timedelta(seconds=30), ttl=TTL)
    await first.release_lease(KEY, owner="a")
    assert await second.try_lease(KEY, owner="b", now=NOW, ttl=TTL)
    assert await first.try_lease(KEY, owner="a", now=NOW + TTL + timedelta(seconds=1), ttl=TTL)  # b's expired


async def test_renew_keeps_a_live_owners_holds_from_expiring(new_store) -> None:
    store = new_store()
    await store.open()
    held = await store.reserve(
        user_key="u", workspace_id="w", credits=1, usd=0.1, limits=Limits(5, 50), now=NOW, ttl=TTL, owner="live"
    )
    await store.reserve(
        user_key="v", workspace_id="w", credits=1, usd=0.1, limits=Limits(5, 50), now=NOW, ttl=TTL, owner="dead"
    )
    assert await store.try_lease(KEY, owner="live", now=NOW, ttl=TTL)
    assert await store.renew("live", until=NOW + timedelta(minutes=10)) == 2

    later = NOW + timedelta(minutes=5)
    assert await store.reclaim(now=later) == 1  # only the dead owner's hold expired
    assert await store.held_owners() == ["live"]
    assert not await store.try_lease(KEY, owner="other", now=later, ttl=TTL)
    assert await store.commit(held.id, usd=0.1, now=later)  # type: ignore[union-attr]


async def test_reclaim_frees_a_dead_owners_leases(new_store) -> None:
    store = new_store()
    await store.open()
    assert await store.try_lease(KEY, owner="dead", now=NOW, ttl=timedelta(hours=1))
    assert await store.try_lease("other", owner="live", now=NOW, ttl=timedelta(hours=1))
    await store.reclaim(now=NOW, dead_owners=("dead",))
    assert await store.try_lease(KEY, owner="next", now=NOW, ttl=TTL)
    assert not await store.try_lease("other", owner="next", now=NOW, ttl=TTL)
