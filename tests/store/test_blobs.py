import hashlib
import random
from datetime import timedelta

from bot.store import Store
from tests.store import NOW


async def test_put_is_content_addressed_and_stored_once(store: Store) -> None:
    data = b"\x89PNG fake image"
    sha = await store.put_blob(data, "image/png")
    assert sha == hashlib.sha256(data).hexdigest()
    assert await store.put_blob(data, "image/png") == sha
    assert await store.get_blob(sha) == (data, "image/png")
    # Nothing references it: purge finds exactly one copy to delete.
    assert await store.purge(before=NOW + timedelta(days=1)) == 1
    assert await store.get_blob(sha) is None


async def test_large_blob_round_trip(store: Store) -> None:
    data = random.Random(7).randbytes(3 * 1024 * 1024)
    sha = await store.put_blob(data, "image/jpeg")
    assert await store.get_blob(sha) == (data, "image/jpeg")


async def test_unknown_blob_is_none(store: Store) -> None:
    assert await store.get_blob("0" * 64) is None


async def test_blob_sizes_without_reading_the_bytes(store: Store) -> None:
    small = await store.put_blob(b"\x89PNG small", "image/png")
    large = await store.put_blob(bytes(2 * 1024 * 1024), "image/jpeg")
    unknown = "0" * 64
    assert await store.blob_sizes([large, small, unknown, small]) == {small: 10, large: 2 * 1024 * 1024}
    assert await store.blob_sizes([]) == {}
