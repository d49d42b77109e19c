"""Group commit for the ledger: concurrent calls of one kind share a round trip and a transaction.

A call joins the queue; whenever fewer than `max_in_flight` batches are running, a runner takes up to `max_batch`
queued calls and sends them together. An idle store therefore sends a lone call at once (as a batch of one, through
the single-call path); a busy one sends what piled up while the previous batches ran. Each commit then covers many
calls instead of one, which is what the ledger's throughput on Postgres is bound by.

Failure semantics stay those of separate calls:
- the server refusing a batch (`asyncpg.PostgresError`) means its transaction rolled back and nothing happened,
  so the calls are retried one by one, each getting its own result or error;
- anything else (connection lost, pool closed) fails every call of the batch, as it would have failed each alone;
- a caller cancelled before its call was sent is dropped from the queue; once sent, the call completes (as a
  statement already sent would) and only its answer is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import asyncpg

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Runs submitted items through `run_batch` (several) or `run_one` (one, or a refused batch's retries)."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        run_one: Callable[[T], Awaitable[R]],
        *,
        max_batch: int,
        max_in_flight: int,
    ) -> None:
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError("max_batch and max_in_flight must be at least 1")
        self._run_batch = run_batch
        self._run_one = run_one
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._queue: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._running = 0  # counted by hand: a runner stops counting the moment it sees an empty queue
        self._tasks: set[asyncio.Task[None]] = set()  # strong references while they run

    @property
    def in_flight(self) -> int:
        return self._running

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._running < self._max_in_flight:
            self._running += 1
            task = asyncio.create_task(self._run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _run(self) -> None:
        try:
            while self._queue:
                taken: list[tuple[T, asyncio.Future[R]]] = []
                while self._queue and len(taken) < self._max_batch:
                    item, future = self._queue.popleft()
                    if not future.done():  # its caller was cancelled while it waited
                        taken.append((item, future))
                if taken:
                    try:
                        await self._send(taken)
                    finally:
                        _fail(taken, asyncio.CancelledError())  # only if interrupted: the rest are done
        finally:
            self._running -= 1  # no await since the queue was seen empty: no call can slip in unseen

    async def _send(self, taken: list[tuple[T, asyncio.Future[R]]]) -> None:
        items = [item for item, _ in taken]
        try:
            if len(items) == 1:
                results: Sequence[R] = [await self._run_one(items[0])]
            else:
                results = await self._run_batch(items)
                if len(results) != len(items):
                    raise RuntimeError(f"a batch of {len(items)} answered {len(results)} results")
        except asyncpg.PostgresError as error:
            if len(items) == 1:
                _fail(taken, error)
                return
            # Refused by the server: rolled back, nothing happened. Each call alone gets its own answer.
            log.warning("a batch of %d calls was refused (%r); running them one by one", len(items), error)
            retried = await asyncio.gather(*(self._run_one(item) for item in items), return_exceptions=True)
            for (_, future), outcome in zip(taken, retried, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, asyncio.CancelledError):
                    future.cancel()
                elif isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
            return
        except Exception as error:  # lost connection, closed pool, a bug: each call would have failed alike
            _fail(taken, error)
            return
        for (_, future), result in zip(taken, results, strict=True):
            if not future.done():
                future.set_result(result)


def _fail(taken: list[tuple[T, asyncio.Future[R]]], error: BaseException) -> None:
    for _, future in taken:
        if not future.done():
            if isinstance(error, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(error)
