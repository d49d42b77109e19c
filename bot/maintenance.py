"""Background upkeep while the bot runs: expired or orphaned reservations are refunded periodically."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.quotas import owner_is_dead

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


async def reclaim_once(services: Services) -> int:
    """Refund held reservations that expired or whose process died; returns how many."""
    owners = await services.store.held_owners()
    dead = tuple(owner for owner in owners if owner_is_dead(owner, me=services.ledger.owner))
    return await services.store.reclaim(now=services.now(), dead_owners=dead)


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


async def run_maintenance(services: Services, *, interval: float = 60.0) -> None:
    """Heartbeat and reclaim every `interval` seconds until cancelled; a failing round is logged, never fatal."""
    while True:
        await asyncio.sleep(interval)
        try:
            await heartbeat(services)
            await purge_old(services)
            reclaimed = await reclaim_once(services)
            if reclaimed:
                log.info("refunded %d expired or orphaned reservation(s)", reclaimed)
        except Exception:
            log.exception("maintenance round failed")
