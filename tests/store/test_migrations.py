import asyncio

from bot.store import Store
from tests.store import NOW
from tests.store.conftest import StoreFactory


async def test_fresh_open_reaches_a_schema_version(store: Store) -> None:
    assert await store.schema_version() >= 1
    assert await store.ping()


async def test_reopen_keeps_the_version_and_the_data(store: Store, new_store: StoreFactory) -> None:
    version = await store.schema_version()
    assert await store.claim_event("evt-1", now=NOW)
    await store.close()
    again = new_store()
    await again.open()
    await again.open()  # opening twice is harmless
    assert await again.schema_version() == version
    assert not await again.claim_event("evt-1", now=NOW)


async def test_two_processes_migrating_a_fresh_database_at_once(new_store: StoreFactory) -> None:
    first, second = new_store(), new_store()
    await asyncio.gather(first.open(), second.open())
    assert await first.schema_version() == await second.schema_version() >= 1


async def test_closed_store_does_not_answer_ping(store: Store) -> None:
    await store.close()
    await store.close()  # idempotent
    assert not await store.ping()
