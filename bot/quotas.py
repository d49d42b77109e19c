"""The quota ledger as users meet it: limits from config and admin overrides, refusals with reset times."""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.config import Settings
from bot.models import UserRef
from bot.store.base import Limits, Refusal, Reservation, Standing, Store, Usage


@dataclass(frozen=True, slots=True)
class QuotaRefused:
    """A reservation that was refused, with the sentence to show."""

    message: str


def next_day(now: datetime) -> datetime:
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def next_month(now: datetime) -> datetime:
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first + timedelta(days=32)).replace(day=1)


def until(now: datetime, then: datetime) -> str:
    minutes = max(int((then - now).total_seconds() // 60), 1)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def reset_phrase(now: datetime, then: datetime) -> str:
    return f"{then:%a %d %b} at {then:%H:%M} UTC (in {until(now, then)})"


def _machine() -> str:
    """Host name plus PID namespace: containers sharing a host name (host networking) still differ."""
    try:
        namespace = os.readlink("/proc/self/ns/pid").removeprefix("pid:[").removesuffix("]")
    except OSError:
        namespace = "0"
    return f"{socket.gethostname()}/{namespace}"


def instance_owner() -> str:
    """This process's owner id for reservations: machine, pid and a random part (pids get reused)."""
    return f"{_machine()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str, *, me: str) -> bool:
    """True for an owner that is a process of this machine and PID namespace which no longer runs.

    Owners elsewhere, and an earlier process that had our very pid (a restarted container), are left to the
    reservation TTL: we can't see their processes, so we don't guess.
    """
    machine, pid, _ = ([*owner.rsplit(":", 2), "", ""])[:3]
    if owner == me or machine != _machine() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Ledger:
    """Reserve before the model call, commit when an image is delivered, refund otherwise."""

    def __init__(self, store: Store, settings: Settings, *, owner: str | None = None) -> None:
        self.store = store
        self.settings = settings
        self.owner = owner or instance_owner()
        self._orphans: set[asyncio.Task[bool]] = set()  # refunds of reservations whose caller was cancelled

    async def _standing(self, user: UserRef, now: datetime, *, with_usage: bool) -> tuple[Limits | QuotaRefused, Usage]:
        """The user's limits and (if asked) usage (`Store.standing`: one trip to SQLite's reader thread instead of
        2-3 in a row, which is what a cheap command like /quota waits for while a burst keeps the process busy)."""
        standing = await self.store.standing(user.key, now=now, with_usage=with_usage)
        limits = self._limits(user, standing)
        if isinstance(limits, Refusal):
            return QuotaRefused(self.refusal_message(limits, credits=0, now=now)), Usage(0, 0, 0.0)
        return limits, standing.usage or Usage(0, 0, 0.0)

    def _limits(self, user: UserRef, standing: Standing) -> Limits | Refusal:
        """The user's ceilings from config, their admin policy and grants; a blocked user is refused outright.
        It is the `LimitRule` of every reservation, so it may run on the store's thread: it reads only settings."""
        policy = standing.policy
        if policy.blocked:
            return Refusal("blocked", 0, 0)
        s = self.settings
        if policy.exempt or user.key in s.exempt_users:
            return Limits(None, None, None, s.workspace_daily_usd, s.global_daily_usd)
        daily = policy.daily_credits if policy.daily_credits is not None else s.user_daily_credits
        monthly = policy.monthly_credits if policy.monthly_credits is not None else s.user_monthly_credits
        return Limits(
            daily + standing.day_grant,
            monthly + standing.month_grant,
            s.user_monthly_usd,
            s.workspace_daily_usd,
            s.global_daily_usd,
        )

    async def reserve(self, user: UserRef, *, credits: int, usd: float, now: datetime) -> Reservation | QuotaRefused:
        """Hold `credits` and `usd` for one turn, or say which limit refuses it. The user's policy and grants are read
        with the reservation (SQLite: in its transaction), so a block or a grant counts from the moment it lands."""
        held = asyncio.ensure_future(
            self.store.reserve(
                user_key=user.key,
                workspace_id=user.workspace_id,
                credits=credits,
                usd=usd,
                limits=functools.partial(self._limits, user),
                now=now,
                ttl=timedelta(seconds=self.settings.reservation_ttl_seconds),
                owner=self.owner,
            )
        )
        try:
            result = await asyncio.shield(held)
        except asyncio.CancelledError:
            # The caller is gone, but a write already under way still lands: hand back what it reserves.
            held.add_done_callback(lambda done: self._refund_orphan(done, now))
            raise
        if isinstance(result, Refusal):
            return QuotaRefused(self.refusal_message(result, credits=credits, now=now))
        return result

    def _refund_orphan(self, done: asyncio.Future[Reservation | Refusal], now: datetime) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        granted = done.result()
        if not isinstance(granted, Reservation):
            return
        refund = asyncio.get_running_loop().create_task(self.store.refund(granted.id, usd=0.0, now=now))
        self._orphans.add(refund)
        refund.add_done_callback(self._orphans.discard)

    async def commit(self, reservation: Reservation, *, usd: float, now: datetime) -> bool:
        return await self.store.commit(reservation.id, usd=usd, now=now)

    async def refund(self, reservation: Reservation, *, usd: float, now: datetime) -> bool:
        return await self.store.refund(reservation.id, usd=usd, now=now)

    def refusal_message(self, refusal: Refusal, *, credits: int, now: datetime) -> str:
        if refusal.scope == "blocked":
            return "You're blocked from generating images here. Ask an admin if that's a mistake."
        need = f"this needs {credits} credit{'s' if credits != 1 else ''}"
        if refusal.scope == "daily":
            left = max(int(refusal.limit - refusal.used), 0)
            return (
                f"You've used {int(refusal.used)} of your {int(refusal.limit)} credits today and {need} "
                f"({left} left). Your quota resets {reset_phrase(now, next_day(now))}."
            )
        if refusal.scope == "monthly":
            left = max(int(refusal.limit - refusal.used), 0)
            return (
                f"You've used {int(refusal.used)} of your {int(refusal.limit)} credits this month and {need} "
                f"({left} left). It resets {reset_phrase(now, next_month(now))}."
            )
        if refusal.scope == "user_budget":
            return (
                f"You've reached your monthly budget of ${refusal.limit:.2f} (${refusal.used:.2f} spent). "
                f"It resets {reset_phrase(now, next_month(now))}."
            )
        where = "this workspace" if refusal.scope == "workspace_budget" else "the bot"
        return (
            f"The daily budget of ${refusal.limit:.2f} for {where} is spent (${refusal.used:.2f}). "
            f"It resets {reset_phrase(now, next_day(now))}."
        )

    async def summary(self, user: UserRef, now: datetime) -> str:
        limits, usage = await self._standing(user, now, with_usage=True)
        if isinstance(limits, QuotaRefused):
            return limits.message
        lines = []
        if limits.daily_credits is None:
            lines.append(f"You're exempt from credit limits ({usage.day_credits} used today).")
        else:
            left_day = max(limits.daily_credits - usage.day_credits, 0)
            lines.append(
                f"Today: {left_day} of {limits.daily_credits} credits left; resets {reset_phrase(now, next_day(now))}."
            )
        if limits.monthly_credits is not None:
            left_month = max(limits.monthly_credits - usage.month_credits, 0)
            lines.append(
                f"This month: {left_month} of {limits.monthly_credits} credits left; "
                f"resets {reset_phrase(now, next_month(now))}."
            )
        if limits.user_monthly_usd is not None:
            left_usd = max(limits.user_monthly_usd - usage.month_usd, 0.0)
            lines.append(f"Budget: ${left_usd:.2f} of ${limits.user_monthly_usd:.2f} left this month.")
        credits = ", ".join(f"{size} = {n}" for size, n in self.settings.credits_by_size.items())
        lines.append(f"Credits per image: {credits}.")
        return "\n".join(lines)

    async def precheck(self, user: UserRef, *, credits: int, now: datetime) -> QuotaRefused | None:
        """A read-only look before platform work (say, creating a thread): would a reservation be refused now?

        `reserve` still decides atomically; this only spares users an empty thread when they are out of credits.
        """
        limits, usage = await self._standing(user, now, with_usage=True)
        if isinstance(limits, QuotaRefused):
            return limits
        if limits.daily_credits is not None and usage.day_credits + credits > limits.daily_credits:
            refusal = Refusal("daily", limits.daily_credits, usage.day_credits)
        elif limits.monthly_credits is not None and usage.month_credits + credits > limits.monthly_credits:
            refusal = Refusal("monthly", limits.monthly_credits, usage.month_credits)
        else:
            return None
        return QuotaRefused(self.refusal_message(refusal, credits=credits, now=now))

    async def left_today(self, user: UserRef, now: datetime) -> int | None:
        """Credits left today, None when unlimited (for result captions)."""
        limits, usage = await self._standing(user, now, with_usage=True)
        if isinstance(limits, QuotaRefused) or limits.daily_credits is None:
            return None
        left = limits.daily_credits - usage.day_credits
        if limits.monthly_credits is not None:
            left = min(left, limits.monthly_credits - usage.month_credits)
        return max(left, 0)


def utcnow() -> datetime:
    return datetime.now(UTC)
