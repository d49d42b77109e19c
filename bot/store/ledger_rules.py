"""The ledger's rules, shared by every backend: which counters a reservation moves and which limit refuses it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from bot.store.base import Limits, Refusal, RefusalScope, Reservation, period_day

Counter = tuple[str, str]  # (scope, period)
Totals = tuple[float, float]  # (credits, usd) counted so far


def counters(*, user_key: str, workspace_id: str, day: str, month: str) -> tuple[Counter, ...]:
    """The four counters a reservation moves: user day, user month, workspace day, global day."""
    return (f"user:{user_key}", day), (f"user:{user_key}", month), (f"workspace:{workspace_id}", day), ("global", day)


def refusal(
    limits: Limits,
    *,
    credits: int,
    usd: float,
    user_day: Totals,
    user_month: Totals,
    workspace_day: Totals,
    global_day: Totals,
) -> Refusal | None:
    """The first limit the reservation would cross, in the order users are told about them; None if it fits."""
    checks: tuple[tuple[RefusalScope, float | None, float, float], ...] = (
        ("daily", limits.daily_credits, user_day[0], credits),
        ("monthly", limits.monthly_credits, user_month[0], credits),
        ("user_budget", limits.user_monthly_usd, user_month[1], usd),
        ("workspace_budget", limits.workspace_daily_usd, workspace_day[1], usd),
        ("global_budget", limits.global_daily_usd, global_day[1], usd),
    )
    for scope, limit, used, wanted in checks:
        if limit is not None and used + wanted > limit:
            return Refusal(scope=scope, limit=limit, used=used)
    return None


def new_reservation(
    *, user_key: str, workspace_id: str, credits: int, usd: float, now: datetime, ttl: timedelta
) -> Reservation:
    """A held reservation made at `now` (timezone-aware): a new id, the UTC day and month it counts in, its expiry."""
    day = period_day(now)
    month = day[:7]
    return Reservation(
        id=uuid.uuid4().hex,
        user_key=user_key,
        workspace_id=workspace_id,
        credits=credits,
        usd=usd,
        day=day,
        month=month,
        expires_at=now + ttl,
    )
