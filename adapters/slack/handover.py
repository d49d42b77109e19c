"""Handing an event Slack already got its answer for to bolt: retried here, since Slack will not redeliver it.

Bolt answers 500 when its middleware fails, e.g. when the `auth.test` it makes on its first request meets a
network error; Slack would then have redelivered the event. Once the answer went out first, that retry is ours:
a few attempts, seconds apart. A turn is claimed by its event id, so an attempt that got partway never runs twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from slack_bolt.response import BoltResponse

log = logging.getLogger(__name__)
RETRY_DELAYS = (1.0, 2.0, 4.0)
DRAIN_SECONDS = 10.0


async def hand_to_bolt(dispatch: Callable[[], Awaitable[BoltResponse]]) -> bool:
    """Dispatch until bolt takes it (any answer under 500); False if every attempt failed (logged as an error).
    `dispatch` builds a fresh request each time (bolt keeps state on it) with bolt's own adapter function."""
    for attempt, delay in enumerate((*RETRY_DELAYS, None), start=1):
        try:
            response = await dispatch()
            status, detail = response.status, response.body[:200]
        except Exception as exc:
            status, detail = 500, f"{type(exc).__name__}: {exc}"[:200]
        if status < 500:
            if status >= 400 and status != 404:  # 404: no listener wanted it, as bolt says
                log.warning("slack: bolt refused an answered event (HTTP %d): %s", status, detail)
            return True
        if delay is None:
            log.error(
                "slack: bolt failed an answered event %d times (HTTP %d: %s); it is dropped", attempt, status, detail
            )
            return False
        log.warning("slack: bolt failed an answered event (HTTP %d: %s); again in %g s", status, detail, delay)
        await asyncio.sleep(delay)
    return False


async def settle(tasks: set[asyncio.Task[None]]) -> None:
    """Wait, at most DRAIN_SECONDS, for the hand-overs in flight (on stop); a second cancel does not cut them."""
    if tasks:
        await asyncio.shield(asyncio.wait(set(tasks), timeout=DRAIN_SECONDS))
