"""Group commit (bot/store/postgres_batch.py): who goes in which batch, and what each caller gets back."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
import pytest

from bot.store.postgres_batch import Batcher


class Recorder:
    """A fake database: `run_batch` / `run_one` record what they were sent and wait for the test's go."""

    def __init__(self) -> None:
        self.sent: list[list[int]] = []
        self.go = asyncio.Event()
        self.go.set()
        self.batch_error: BaseException | None = None
        self.failing: set[int] = set()  # items run_one refuses

    async def run_batch(self, items: Sequence[int]) -> list[str]:
        self.sent.append(list(items))
        await self.go.wait()
        if self.batch_error is not None:
            raise self.batch_error
        return [f"batch:{i}" for i in items]

    async def run_one(self, item: int) -> str:
        self.sent.append([item])
        await self.go.wait()
        if item in self.failing:
            raise asyncpg.UniqueViolationError(f"item {item} refused")
        return f"one:{item}"


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def batcher(db: Recorder, *, max_batch: int = 3, max_in_flight: int = 1) -> Batcher[int, str]:
    return Batcher(db.run_batch, db.run_one, max_batch=max_batch, max_in_flight=max_in_flight)


async def test_a_lone_call_goes_at_once_through_the_single_path() -> None:
    db = Recorder()
    calls = batcher(db)
    assert await calls.submit(7) == "one:7"
    assert db.sent == [[7]] and calls.in_flight == 0


async def test_calls_that_arrive_while_a_batch_runs_go_together_in_order() -> None:
    db = Recorder()
    db.go.clear()
    calls = batcher(db, max_batch=3, max_in_flight=1)
    first = asyncio.create_task(calls.submit(0))
    await settle()
    rest = [asyncio.create_task(calls.submit(i)) for i in range(1, 6)]
    await settle()
    assert db.sent == [[0]]  # the others wait for the one running batch
    db.go.set()
    assert await first == "one:0"
    assert await asyncio.gather(*rest) == [f"batch:{i}" for i in range(1, 6)]
    assert db.sent == [[0], [1, 2, 3], [4, 5]] and calls.in_flight == 0


async def test_up_to_max_in_flight_batches_run_at_once() -> None:
    db = Recorder()
    db.go.clear()
    calls = batcher(db, max_batch=2, max_in_flight=3)
    tasks = [asyncio.create_task(calls.submit(i)) for i in range(8)]
    await settle()
    assert calls.in_flight == 3 and sorted(map(len, db.sent)) == [2, 2, 2]
    db.go.set()
    assert await asyncio.gather(*tasks) == [f"batch:{i}" for i in range(8)]
    assert sorted(i for batch in db.sent for i in batch) == list(range(8))
    assert calls.in_flight == 0


async def test_a_batch_the_server_refuses_is_retried_call_by_call(caplog: pytest.LogCaptureFixture) -> None:
    db = Recorder()
    db.go.clear()
    calls = batcher(db, max_batch=4)
    first = asyncio.create_task(calls.submit(0))
    await settle()
    db.batch_error = asyncpg.DeadlockDetectedError("deadlock detected")
    db.failing = {2}
    rest = [asyncio.create_task(calls.submit(i)) for i in range(1, 4)]
    await settle()
    db.go.set()
    assert await first == "one:0"
    outcomes = await asyncio.gather(*rest, return_exceptions=True)
    assert outcomes[0] == "one:1" and outcomes[2] == "one:3"
    assert isinstance(outcomes[1], asyncpg.UniqueViolationError)
    assert db.sent == [[0], [1, 2, 3], [1], [2], [3]]
    assert "refused" in caplog.text


async def test_any_other_failure_fails_every_call_of_the_batch() -> None:
    db = Recorder()
    db.go.clear()
    calls = batcher(db, max_batch=4)
    first = asyncio.create_task(calls.submit(0))
    await settle()
    db.batch_error = ConnectionResetError("gone")
    rest = [asyncio.create_task(calls.submit(i)) for i in range(1, 4)]
    await settle()
    db.go.set()
    assert await first == "one:0"
    outcomes = await asyncio.gather(*rest, return_exceptions=True)
    assert all(isinstance(outcome, ConnectionResetError) for outcome in outcomes)
    assert db.sent == [[0], [1, 2, 3]]


async def test_a_batch_answering_the_wrong_count_fails_loudly() -> None:
    async def short(items: Sequence[int]) -> list[str]:
        return ["only one"]

    async def one(item: int) -> str:
        await asyncio.sleep(0.01)
        return "one"

    calls: Batcher[int, str] = Batcher(short, one, max_batch=4, max_in_flight=1)
    first = asyncio.create_task(calls.submit(0))
    await settle()
    rest = [asyncio.create_task(calls.submit(i)) for i in range(1, 3)]
    assert await first == "one"
    outcomes = await asyncio.gather(*rest, return_exceptions=True)
    assert all(isinstance(outcome, RuntimeError) and "answered 1" in str(outcome) for outcome in outcomes)


async def test_a_caller_cancelled_while_queued_is_never_sent() -> None:
    db = Recorder()
    db.go.clear()
    calls = batcher(db, max_batch=4)
    first = asyncio.create_task(calls.submit(0))
    await settle()
    keep, drop = asyncio.create_task(calls.submit(1)), asyncio.create_task(calls.submit(2))
    await settle()
    drop.cancel()
    await settle()
    db.go.set()
    assert await first == "one:0" and await keep == "one:1"
    assert drop.cancelled()
    assert db.sent == [[0], [1]]


async def test_a_cancelled_runner_cancels_its_callers_instead_of_stranding_them() -> None:
    db = Recorder()
    db.go.clear()
    calls = batcher(db)
    caller = asyncio.create_task(calls.submit(0))
    await settle()
    (runner,) = calls._tasks  # the loop shutting down would cancel it like this
    runner.cancel()
    await settle()
    assert caller.cancelled() and calls.in_flight == 0
    db.go.set()
    assert await calls.submit(1) == "one:1"  # and the next call still finds a runner


def test_sizes_are_checked() -> None:
    db = Recorder()
    with pytest.raises(ValueError, match="at least 1"):
        Batcher(db.run_batch, db.run_one, max_batch=0, max_in_flight=1)
