"""Background upkeep while the bot runs: what expired or was orphaned by a dead process is reclaimed periodically."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.memory import release_free_memory
from bot.quotas import owner_is_dead

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


async def dead_owners(services: Services) -> tuple[str, ...]:
    """Owners of held reservations or pending turns whose process no longer runs (see `owner_is_dead`), and
    owners of pending turns whose thread leases all expired: stopped elsewhere (another machine, a restarted
    container), which `owner_is_dead` can't see."""
    me = services.ledger.owner
    owners = {*await services.store.held_owners(), *await services.store.pending_turn_owners()}
    dead = {owner for owner in owners if owner_is_dead(owner, me=me)}
    dead.update(owner for owner in await services.store.unleased_turn_owners(now=services.now()) if owner != me)
    return tuple(sorted(dead))


async def reclaim_once(services: Services, *, ownerless_turns: bool = False) -> int:
    """Refund held reservations that expired or whose process died, and fail the pending turns of dead processes.

    Turns of live processes (other replicas on the same database) are left running. `ownerless_turns` also fails
    the pending turns stored before turns recorded their owner; only at startup, since during a rolling upgrade a
    replica still on the old version writes such turns and is running them. Returns how many reservations were
    refunded.
    """
    dead = await dead_owners(services)
    now = services.now()
    refunded = await services.store.reclaim(now=now, dead_owners=dead)
    if dead or ownerless_turns:
        failed = await services.store.fail_pending_turns(
            dead_owners=dead, before=now, now=now, ownerless=ownerless_turns
        )
        if failed:
            log.info("failed %d turn(s) left pending by stopped processes", failed)
    return refunded


async def heartbeat(services: Services) -> int:
    """Keep this process's holds (reservations, thread leases) from expiring while it is alive."""
    for key in list(services.unreleased_leases):  # a lease whose release failed must not be renewed forever
        if services.queue.depth(key) == 0:
            await services.store.release_lease(key, owner=services.ledger.owner)
            services.unreleased_leases.discard(key)
    ttl = timedelta(seconds=services.settings.reservation_ttl_seconds)
    return await services.store.renew(services.ledger.owner, until=services.now() + ttl)


async def purge_old(services: Services) -> int:
    """Retention: delete sessions, turns and images older than BANANABOT_RETENTION_DAYS (0 keeps everything)."""
    days = services.settings.retention_days
    if days <= 0:
        return 0
    purged = await services.store.purge(before=services.now() - timedelta(days=days))
    if purged:
        log.info("retention: purged %d row(s) older than %d day(s)", purged, days)
    return purged


async def release_memory_if_idle(services: Services, release: Callable[[], bool] = release_free_memory) -> bool:
    """With no turn running or waiting, hand the allocator's free pages back (see bot.memory), on a thread: it
    holds each arena's lock while it works. True if it ran and released some."""
    if services.queue.depth() > 0:
        return False
    return await asyncio.to_thread(release)


async def run_maintenance(services: Services, *, interval: float = 60.0) -> None:
    """Heartbeat and reclaim every `interval` seconds until cancelled; a failing round is logged, never fatal."""
    while True:
        await asyncio.sleep(interval)
        try:
            await heartbeat(services)
            await services.store.checkpoint()
            await purge_old(services)
            reclaimed = await reclaim_once(services)
            if reclaimed:
                log.info("refunded %d expired or orphaned reservation(s)", reclaimed)
            await release_memory_if_idle(services)
        except Exception:
            log.exception("maintenance round failed")
