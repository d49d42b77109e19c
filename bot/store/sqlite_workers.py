"""The threads that run SQLite for the async store: a writer with group commit, and batching readers.

Each operation is one plain synchronous function on a connection that one thread owns (a lane), so it costs no
hop per statement and no lock is ever held across an `await`. A lane sends every job queued while its previous
batch ran to its thread as the next batch: one hop between the event loop and the thread per batch.

The writer applies a batch in one BEGIN IMMEDIATE … COMMIT (group commit), each job inside its own SAVEPOINT: a job
that raises rolls back only its own changes and gets its own exception, the others commit. If the group fails as a
whole (COMMIT fails, or an error made SQLite abandon the transaction), nothing of it was committed and each job is
run again alone, so only the culprit fails. Jobs run one after another, exactly as if each had its own transaction,
so read-check-write logic (quota limits) stays exact.

Cancelling a waiter never interrupts SQLite: a job not started yet is skipped, a started one commits or rolls back
with its group, and a connection is never left inside a transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar, cast

T = TypeVar("T")

NOT_OPEN = "SqliteStore is not open: call `await store.open()` first"
MAX_BATCH = 256  # jobs per batch: bounds how long one group holds SQLite's write lock
MAX_BATCH_BYTES = 4 * 1024 * 1024  # declared bytes per batch (image blobs): a burst of uploads commits in steps,
# so the first turns go on to the model while later images are still being written, instead of all at once


@dataclass(eq=False, slots=True)
class Job:
    """One operation: the function, its waiter, and what the function returned or raised (set on the lane's thread)."""

    fn: Callable[[sqlite3.Connection], object]
    future: asyncio.Future[object]
    size: int = 0  # bytes it writes, roughly (blobs): caps a batch at MAX_BATCH_BYTES
    abandoned: bool = False  # the waiter was cancelled: skipped if the thread has not started it
    result: object = None
    error: BaseException | None = None


class Lane:
    """One thread owning one connection; `run` queues a function for the thread's next batch.

    Args:
        connect: Opens and prepares the connection; it runs on the lane's thread.
        run_batch: Runs a batch of jobs on the lane's thread, setting each job's result or error
            (`run_group` for the writer, `run_reads` for readers).
        name: The thread's name.
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        run_batch: Callable[[sqlite3.Connection, list[Job]], None],
        *,
        name: str,
    ) -> None:
        self._connect = connect
        self._run_batch = run_batch
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._queue: list[Job] = []
        self._busy = False  # a batch is scheduled or on the thread
        self._closing = False

    @property
    def is_open(self) -> bool:
        return self._conn is not None and not self._closing

    async def open(self) -> None:
        if self._conn is not None:
            return
        executor = ThreadPoolExecutor(1, thread_name_prefix=self._name)
        try:
            conn = await asyncio.get_running_loop().run_in_executor(executor, self._connect)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._executor, self._conn, self._closing = executor, conn, False

    async def close(self) -> None:
        """Let every job queued so far finish, then close the connection and end the thread."""
        executor, conn = self._executor, self._conn
        if executor is None or conn is None or self._closing:
            return
        self._closing = True  # `run` refuses new work from here on
        try:
            with contextlib.suppress(Exception):  # only its place in the queue matters, not its outcome
                await self._submit(_nothing)  # batches run in queue order: everything queued before is answered
            await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        finally:
            self._executor = self._conn = None
            executor.shutdown(wait=False)

    async def run(self, fn: Callable[[sqlite3.Connection], T], *, size: int = 0) -> T:
        """`fn(conn)` in the lane's next batch: its result, or its exception. `size`: bytes it writes (blobs)."""
        if not self.is_open:
            raise RuntimeError(NOT_OPEN)
        return cast(T, await self._submit(fn, size))

    async def _submit(self, fn: Callable[[sqlite3.Connection], object], size: int = 0) -> object:
        loop = asyncio.get_running_loop()
        job = Job(fn, loop.create_future(), size)
        self._queue.append(job)
        if not self._busy:
            self._busy = True
            loop.call_soon(self._start)  # after this loop iteration: jobs queued in it join the same batch
        try:
            return await job.future
        except asyncio.CancelledError:
            job.abandoned = True
            raise

    def _start(self) -> None:
        """On the event loop: send the queued jobs (waiters not cancelled) to the thread as one batch."""
        while self._queue:
            cut = _batch_end(self._queue)
            batch, self._queue = self._queue[:cut], self._queue[cut:]
            jobs = [job for job in batch if not job.future.done()]
            if not jobs:
                continue
            if self._executor is None or self._conn is None:  # closed under a waiter that was cancelled
                for job in jobs:
                    job.future.set_exception(RuntimeError(NOT_OPEN))
                continue
            done = asyncio.get_running_loop().run_in_executor(self._executor, self._run_batch, self._conn, jobs)
            done.add_done_callback(functools.partial(self._finish, jobs))
            return
        self._busy = False

    def _finish(self, jobs: list[Job], done: asyncio.Future[None]) -> None:
        """On the event loop: answer the batch's waiters, then start the next batch."""
        failure = None if done.cancelled() else done.exception()  # only when run_batch itself broke
        for job in jobs:
            if job.future.done():  # the waiter was cancelled
                continue
            error = failure or job.error
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(job.result)
        self._start()


def _batch_end(queue: list[Job]) -> int:
    """How many jobs from the head of the queue make the next batch: at least one, then up to MAX_BATCH jobs
    while their declared bytes stay within MAX_BATCH_BYTES."""
    total = queue[0].size
    for end in range(1, min(len(queue), MAX_BATCH)):
        total += queue[end].size
        if total > MAX_BATCH_BYTES:
            return end
    return min(len(queue), MAX_BATCH)


def _nothing(conn: sqlite3.Connection) -> None:
    return None


def run_group(conn: sqlite3.Connection, jobs: list[Job]) -> None:
    """On the writer thread: the jobs in one transaction, or each in its own when the group fails as a whole."""
    try:
        conn.execute("BEGIN IMMEDIATE")  # waits up to busy_timeout for another process's write
    except Exception as error:
        for job in jobs:
            job.error = error
        return
    try:
        _apply(conn, jobs)
    except Exception as error:
        if len(jobs) == 1:
            jobs[0].result, jobs[0].error = None, jobs[0].error or error
            return
        for job in jobs:  # nothing was committed: run each alone, so only the one that breaks fails
            job.result, job.error = None, None
            if not job.abandoned:
                run_group(conn, [job])


def _apply(conn: sqlite3.Connection, jobs: list[Job]) -> None:
    """The body of an open transaction, then COMMIT; on any failure it rolls back and raises."""
    try:
        for job in jobs:
            if job.abandoned:
                continue
            conn.execute("SAVEPOINT job")
            try:
                job.result = job.fn(conn)
            except Exception as error:
                if not conn.in_transaction:  # SQLite abandoned the whole transaction (I/O error, disk full, …)
                    job.error = error
                    raise
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                job.error = error
            else:
                conn.execute("RELEASE job")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def run_reads(conn: sqlite3.Connection, jobs: list[Job]) -> None:
    """On a reader thread: the jobs in one read transaction, so one snapshot for the batch. It is taken after every
    job in the batch was asked for, so each sees every write answered before it was asked."""
    conn.execute("BEGIN")
    try:
        for job in jobs:
            if job.abandoned:
                continue
            try:
                job.result = job.fn(conn)
            except Exception as error:
                job.error = error
    finally:
        if conn.in_transaction:  # never keep the snapshot: it would keep the WAL from being checkpointed
            conn.execute("COMMIT")
