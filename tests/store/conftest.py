"""The store contract suite runs once per backend in BACKENDS; add "postgres" there and every test covers it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.store import SqliteStore, Store
from tests.store import NOW, Clock

# Each call returns a new, unopened instance on the same database: a second call stands for a second process.
StoreFactory = Callable[[], Store]


def _sqlite(tmp_path: Path, clock: Clock) -> StoreFactory:
    path = tmp_path / "data" / "bananabot.db"
    return lambda: SqliteStore(path, clock=clock)


BACKENDS: dict[str, Callable[[Path, Clock], StoreFactory]] = {"sqlite": _sqlite}


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def new_store(backend: str, tmp_path: Path, clock: Clock) -> AsyncIterator[StoreFactory]:
    make = BACKENDS[backend](tmp_path, clock)
    made: list[Store] = []

    def factory() -> Store:
        made.append(make())
        return made[-1]

    yield factory
    for store in made:
        await store.close()


@pytest.fixture
async def store(new_store: StoreFactory) -> Store:
    opened = new_store()
    await opened.open()
    return opened
