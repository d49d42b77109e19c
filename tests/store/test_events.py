from bot.store import Store
from tests.store import NOW
from tests.store.conftest import StoreFactory


async def test_claim_event_once(store: Store) -> None:
    assert await store.claim_event("slack:Ev123", now=NOW)
    assert not await store.claim_event("slack:Ev123", now=NOW)
    assert await store.claim_event("slack:Ev124", now=NOW)


async def test_claim_event_once_across_processes(store: Store, new_store: StoreFactory) -> None:
    other = new_store()
    await other.open()
    assert await other.claim_event("discord:interaction-9", now=NOW)
    assert not await store.claim_event("discord:interaction-9", now=NOW)
    assert not await other.claim_event("discord:interaction-9", now=NOW)
