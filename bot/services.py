"""Everything a command needs, built once per process."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.config import Settings
from bot.gemini import GeminiClient, RetryPolicy
from bot.maintenance import reclaim_once
from bot.metrics import Metrics
from bot.models import UserRef
from bot.queue import ThreadQueue
from bot.quotas import Ledger, utcnow
from bot.store import open_store
from bot.store.base import Store
from bot.web import WebServer

log = logging.getLogger(__name__)


@dataclass
class Services:
    """The core's dependencies; adapters get one and pass it to `dispatch`.

    Attributes:
        settings: Configuration.
        store: Persistence.
        gemini: The image model client.
        ledger: Quotas.
        queue: Per-thread FIFO.
        model_slots: Global cap on concurrent model calls.
        download_slots: Global cap on attachments being downloaded and checked (bot.intake).
        clock: Current time (UTC), replaceable in tests.
        in_flight: Turns queued or running per user key.
    """

    settings: Settings
    store: Store
    gemini: GeminiClient
    ledger: Ledger
    queue: ThreadQueue = field(default_factory=ThreadQueue)
    model_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(8))
    download_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(8))
    clock: Callable[[], datetime] = utcnow
    in_flight: Counter[str] = field(default_factory=Counter)
    charges: dict[str, Any] = field(default_factory=dict)  # turn id -> engine.Charge awaiting delivery
    running: set[asyncio.Task[Any]] = field(default_factory=set)  # dispatches in progress, for a graceful stop
    adapter_status: dict[str, str] = field(default_factory=dict)  # adapter name -> connected / disconnected
    unreleased_leases: set[str] = field(default_factory=set)  # thread keys whose release failed; retried
    metrics: Metrics = field(init=False)
    web: WebServer = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = Metrics(self.queue.depth)
        self.web = WebServer(self)

    def now(self) -> datetime:
        return self.clock()

    def is_admin(self, user: UserRef) -> bool:
        """Admins are configured (BANANABOT_ADMINS: user keys or platform roles), never inferred from a server
        permission: whoever manages *a* Discord server must not control credits across every server.
        The console's operator owns the bot's files anyway, so the console adapter marks them admin."""
        admins = self.settings.admins
        if user.key in admins or (user.platform == "console" and user.platform_admin):
            return True
        return any(f"{user.platform}-role:{role}" in admins for role in user.roles)

    async def drain(self, grace: float | None = None) -> None:
        """Let dispatches in progress finish (post, settle); cancel what's left after `grace` seconds (they refund
        and tell their users). The default is BANANABOT_SHUTDOWN_GRACE_SECONDS: the adapters drain with it on stop."""
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        current = asyncio.current_task()
        pending = {task for task in self.running if task is not current and not task.done()}
        if not pending:
            return
        log.info("waiting for %d turn(s) in progress", len(pending))
        _, late = await asyncio.wait(pending, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=5.0)
            # What the cancelled ones were settling goes on in the background (charges.settle): let it land.
            settling = {task for task in self.running if task is not current and not task.done()}
            if settling:
                await asyncio.wait(settling, timeout=5.0)

    async def close(self, *, drain_timeout: float | None = None) -> None:
        await self.drain(drain_timeout)
        await self.web.stop()
        await self.gemini.aclose()
        await self.store.close()


async def build_services(settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> Services:
    """Open the store (migrating it), reclaim what a dead process left, and build the client."""
    store = open_store(settings.database_url)
    await store.open()
    key = settings.gemini_api_key.get_secret_value() if settings.gemini_api_key else ""
    gemini = GeminiClient(
        api_key=key,
        base_url=settings.gemini_base_url,
        policy=RetryPolicy(
            max_attempts=settings.gemini_max_attempts,
            deadline=settings.gemini_deadline_seconds,
            attempt_timeout=settings.gemini_timeout_seconds,
            base_delay=settings.gemini_backoff_seconds,
        ),
        max_connections=max(settings.max_concurrent_calls * 2, 8),
    )
    services = Services(
        settings=settings,
        store=store,
        gemini=gemini,
        ledger=Ledger(store, settings),
        model_slots=asyncio.Semaphore(settings.max_concurrent_calls),
        download_slots=asyncio.Semaphore(settings.max_concurrent_downloads),
        clock=clock,
    )
    await recover(services)
    return services


async def recover(services: Services) -> None:
    """Refund reservations that expired and fail turns left pending by processes that died mid-turn.

    Only dead processes' turns: other replicas sharing the database keep theirs running. None of the turns can be
    ours, since our owner id is new (it has a random part).
    """
    reclaimed = await reclaim_once(services, ownerless_turns=True)
    if reclaimed:
        log.info("refunded %d reservation(s) left by stopped processes or expired", reclaimed)
