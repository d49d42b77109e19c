"""The store contract suite runs once per backend in BACKENDS; add "postgres" there and every test covers it.

Postgres: each test gets a fresh schema (`bb_test_<uuid>`) on the server at BANANABOT_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/test), dropped afterwards, so tests are isolated and may run in parallel.
Without a server the Postgres tests skip locally and fail under CI=true.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from bot.store import PostgresStore, SqliteStore, Store
from bot.store.postgres_schema import MIGRATIONS
from tests.store import NOW, Clock

# Each call returns a new, unopened instance on the same database: a second call stands for a second process.
StoreFactory = Callable[[], Store]

POSTGRES_URL = os.environ.get("BANANABOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
_reachable: dict[str, str | None] = {}  # url -> None when reachable, else why not


async def require_postgres() -> str:
    """The test server's URL; skips the test when it is unreachable, or fails it under CI."""
    if POSTGRES_URL not in _reachable:
        try:
            conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
            await conn.close()
            _reachable[POSTGRES_URL] = None
        except (OSError, TimeoutError, asyncpg.PostgresError) as error:
            _reachable[POSTGRES_URL] = f"Postgres at {PostgresStore(POSTGRES_URL).url} is unreachable: {error!r}"
    reason = _reachable[POSTGRES_URL]
    if reason is not None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{reason} (CI must run the Postgres tests: set BANANABOT_TEST_POSTGRES_URL)")
        pytest.skip(f"{reason}; set BANANABOT_TEST_POSTGRES_URL to run the Postgres tests")
    return POSTGRES_URL


@asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """A schema name no other test uses; the stores create it on open, and it is dropped afterwards."""
    url = await require_postgres()
    schema = f"bb_test_{uuid.uuid4().hex}"
    try:
        yield schema
    finally:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@asynccontextmanager
async def _sqlite(tmp_path: Path, clock: Clock) -> AsyncIterator[StoreFactory]:
    path = tmp_path / "data" / "bananabot.db"
    yield lambda: SqliteStore(path, clock=clock)


@asynccontextmanager
async def _postgres(tmp_path: Path, clock: Clock) -> AsyncIterator[StoreFactory]:
    async with fresh_schema() as schema:
        yield lambda: PostgresStore(POSTGRES_URL, clock=clock, schema=schema)


BACKENDS: dict[str, Callable[[Path, Clock], AbstractAsyncContextManager[StoreFactory]]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def new_store(backend: str, tmp_path: Path, clock: Clock) -> AsyncIterator[StoreFactory]:
    async with BACKENDS[backend](tmp_path, clock) as make:
        made: list[Store] = []

        def factory() -> Store:
            made.append(make())
            return made[-1]

        try:
            yield factory
        finally:
            for store in made:
                await store.close()


@pytest.fixture
async def store(new_store: StoreFactory) -> Store:
    opened = new_store()
    await opened.open()
    return opened


async def schema_at_version(conn: asyncpg.Connection, schema: str, version: int) -> None:
    """Create `schema` as a process of store version `version` left it (to test migrating from there)."""
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    await conn.execute(
        "CREATE TABLE schema_migrations (version integer PRIMARY KEY, description text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for number, description, sql in MIGRATIONS[:version]:
        await conn.execute(sql)
        await conn.execute("INSERT INTO schema_migrations (version, description) VALUES ($1, $2)", number, description)


@asynccontextmanager
async def opened(stores: Sequence[PostgresStore]) -> AsyncIterator[Sequence[PostgresStore]]:
    """The stores opened together, and closed afterwards (several processes' pools, or twins to compare)."""
    await asyncio.gather(*(store.open() for store in stores))
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()


async def terminate_backend(pid: int) -> None:
    """Kill one server connection from outside, as a restart or an admin would."""
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
