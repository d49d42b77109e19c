"""Section 4: reserve+commit throughput of the quota ledger with 64 concurrent tasks, and the overspend check."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bot.config import Settings
from bot.models import UserRef
from bot.quotas import Ledger, QuotaRefused
from bot.store import open_store
from bot.store.base import Store

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
TASKS = 64
ROUNDS = 3  # throughput is measured this many times; the median is reported (a 2-vCPU VM is noisy)
USD = 0.039


@dataclass(slots=True)
class LedgerResult:
    backend: str
    pairs_per_second: float = 0.0  # the median round
    rounds: list[float] = field(default_factory=list)  # pairs/s of each round
    limit: int = 0
    granted: int = 0  # reservations that succeeded against the limit
    counted: int = 0  # credits the store counts as used afterwards
    error: str = ""

    @property
    def overspend(self) -> int:
        return max(0, self.granted - self.limit, self.counted - self.limit)


def _user(i: int) -> UserRef:
    return UserRef("discord", f"bench{i}", workspace_id="g1")


async def throughput(ledger: Ledger, seconds: float) -> float:
    """reserve + commit pairs per second, each task for its own user (no shared limit)."""
    deadline = time.perf_counter() + seconds
    done = [0] * TASKS

    async def worker(i: int) -> None:
        user = _user(i)
        while time.perf_counter() < deadline:
            now = datetime.now(UTC)
            held = await ledger.reserve(user, credits=1, usd=USD, now=now)
            assert not isinstance(held, QuotaRefused), held
            await ledger.commit(held, usd=USD, now=now)
            done[i] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(TASKS)))
    return sum(done) / (time.perf_counter() - started)


async def race(ledger: Ledger, store: Store, limit: int) -> tuple[int, int]:
    """TASKS tasks spend one user's `limit` credits until refused: (reservations granted, credits counted)."""
    user = UserRef("discord", "racer", workspace_id="g1")
    granted = [0] * TASKS

    async def worker(i: int) -> None:
        while True:
            now = datetime.now(UTC)
            held = await ledger.reserve(user, credits=1, usd=USD, now=now)
            if isinstance(held, QuotaRefused):
                return
            granted[i] += 1
            await ledger.commit(held, usd=USD, now=now)

    await asyncio.gather(*(worker(i) for i in range(TASKS)))
    return sum(granted), (await store.usage(user.key, now=datetime.now(UTC))).day_credits


async def measure(backend: str, url: str, *, seconds: float, limit: int) -> LedgerResult:
    settings = Settings(_env_file=None, user_daily_credits=limit, user_monthly_credits=10**9)  # type: ignore[call-arg]
    store = open_store(url)
    await store.open()
    try:
        result = LedgerResult(backend, limit=limit)
        unlimited = Settings(_env_file=None, user_daily_credits=10**9, user_monthly_credits=10**9)  # type: ignore[call-arg]
        result.rounds = [await throughput(Ledger(store, unlimited), seconds) for _ in range(ROUNDS)]
        result.pairs_per_second = statistics.median(result.rounds)
        result.granted, result.counted = await race(Ledger(store, settings), store, limit)
        return result
    finally:
        await store.close()


async def sqlite(workdir: Path, *, seconds: float, limit: int) -> LedgerResult:
    return await measure("SQLite", f"sqlite:///{workdir / 'ledger.db'}", seconds=seconds, limit=limit)


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """A fresh schema on the local server, dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{POSTGRES_URL}?schema={name}"
    finally:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            await conn.close()


async def postgres(*, seconds: float, limit: int) -> LedgerResult:
    try:
        async with postgres_schema() as url:
            return await measure("Postgres", url, seconds=seconds, limit=limit)
    except (OSError, asyncpg.PostgresError) as exc:
        return LedgerResult("Postgres", error=f"unavailable: {exc!r}"[:120])
