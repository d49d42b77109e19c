"""The storage contract: sessions, turns, blobs, the quota ledger and event dedupe, for every backend."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

TurnStatus = Literal["pending", "done", "failed"]
RefusalScope = Literal["blocked", "daily", "monthly", "user_budget", "workspace_budget", "global_budget"]


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A conversation bound to one thread; at most one active (ended_at is None) per thread_key."""

    id: str
    thread_key: str
    created_by: str
    created_at: datetime
    ended_at: datetime | None = None
    head_turn_id: str | None = None


@dataclass(frozen=True, slots=True)
class TurnRow:
    """One exchange with the model, stored verbatim.

    `request_json` / `response_json` are `Content` JSON whose image parts carry `{"blob": sha256}` instead of
    bytes (see bot/sessions.py); thought signatures stay inside them byte-exact (base64).
    """

    id: str
    session_id: str
    parent_id: str | None
    kind: str
    user_key: str
    user_name: str
    prompt: str
    model: str
    aspect_ratio: str | None
    image_size: str | None
    request_json: str
    created_at: datetime
    status: TurnStatus = "pending"
    response_json: str | None = None
    outcome: str = ""
    outcome_detail: str = ""
    prompt_tokens: int = 0
    candidate_tokens: int = 0
    thought_tokens: int = 0
    cost_usd: float = 0.0
    credits: int = 0
    finished_at: datetime | None = None
    owner: str | None = None  # the process running it (Ledger.owner); None for turns stored before it was recorded


@dataclass(frozen=True, slots=True)
class TurnResult:
    """What `finish_turn` writes once the model answered (or failed)."""

    status: Literal["done", "failed"]
    outcome: str
    finished_at: datetime
    outcome_detail: str = ""
    response_json: str | None = None
    prompt_tokens: int = 0
    candidate_tokens: int = 0
    thought_tokens: int = 0
    cost_usd: float = 0.0
    credits: int = 0


@dataclass(frozen=True, slots=True)
class Limits:
    """Ceilings a reservation must stay under; None means no limit of that kind."""

    daily_credits: int | None
    monthly_credits: int | None
    user_monthly_usd: float | None = None
    workspace_daily_usd: float | None = None
    global_daily_usd: float | None = None


@dataclass(frozen=True, slots=True)
class Reservation:
    """Credits and estimated USD held for one turn until commit or refund."""

    id: str
    user_key: str
    workspace_id: str
    credits: int
    usd: float
    day: str  # "2026-11-21" (UTC): the periods whose counters it moved, kept so a refund after midnight is right
    month: str  # "2026-11"
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a reservation was refused: which limit, its value and what is used."""

    scope: RefusalScope
    limit: float
    used: float


@dataclass(frozen=True, slots=True)
class Usage:
    """A user's counters (reserved + committed) for the current day and month."""

    day_credits: int
    month_credits: int
    month_usd: float


@dataclass(frozen=True, slots=True)
class UserPolicy:
    """Admin overrides for one user; None limits fall back to the configured defaults."""

    user_key: str
    daily_credits: int | None = None
    monthly_credits: int | None = None
    exempt: bool = False
    blocked: bool = False


@dataclass(frozen=True, slots=True)
class Standing:
    """What a user's limits and credits left are computed from: policy, today's and this month's grants, usage."""

    policy: UserPolicy
    day_grant: int
    month_grant: int
    usage: Usage | None = None  # None unless asked for


LimitRule = Callable[[Standing], "Limits | Refusal"]
"""Makes a user's limits from their standing (policy and grants; no usage), or refuses outright (a blocked user).
A store runs it inside the reservation's own transaction where it can (SQLite, on its writer thread), so it must be
quick and touch nothing but its argument and immutable settings."""


async def decide_limits(store: Store, rule: LimitRule, user_key: str, *, now: datetime) -> Limits | Refusal:
    """What `rule` makes of the user's standing read now: for a store that reads it before the reservation."""
    return rule(await store.standing(user_key, now=now, with_usage=False))


class Store(Protocol):
    """Everything the core persists. SQLite and Postgres implement it; one contract suite tests both."""

    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None: ...

    async def schema_version(self) -> int: ...

    async def ping(self) -> bool:
        """True when the database answers."""

    # Sessions and turns
    async def active_session(self, thread_key: str) -> SessionRow | None: ...

    async def get_or_create_session(self, *, thread_key: str, user_key: str, now: datetime) -> SessionRow:
        """The thread's active session, created atomically if there is none (never two active per thread)."""

    async def get_session(self, session_id: str) -> SessionRow | None: ...

    async def end_session(self, session_id: str, *, now: datetime) -> None: ...

    async def set_head(self, session_id: str, turn_id: str | None) -> None: ...

    async def insert_turn(self, turn: TurnRow) -> None: ...

    async def finish_turn(self, turn_id: str, result: TurnResult) -> None: ...

    async def get_turn(self, turn_id: str) -> TurnRow | None: ...

    async def ancestors(self, turn_id: str, *, limit: int) -> list[TurnRow]:
        """The turn and its parents, nearest first, at most `limit` rows."""

    async def root_of(self, turn_id: str) -> TurnRow | None:
        """The first turn of the turn's branch (the one with no parent)."""

    async def fail_pending_turns(
        self, *, dead_owners: tuple[str, ...], before: datetime, now: datetime, ownerless: bool = False
    ) -> int:
        """Mark turns of `dead_owners` still pending since before `before` as failed ("interrupted").

        Only those owners' turns: a turn another live process is running is never touched. `ownerless` also takes
        the turns stored before turns recorded their owner. Returns how many turns were failed.
        """

    async def pending_turn_owners(self) -> list[str]:
        """Distinct owners of turns still pending (to find the ones whose process died); ownerless turns aside."""

    async def unleased_turn_owners(self, *, now: datetime) -> list[str]:
        """Owners of pending turns who hold no unexpired thread lease at `now`.

        A live process holds its thread's lease for as long as it runs a turn there (its heartbeat renews it), so
        such an owner stopped, wherever it ran: on another machine, or before a container restart."""

    async def recent_sessions(self, user_key: str, *, limit: int) -> list[SessionRow]: ...

    # Blobs (content-addressed images)
    async def put_blob(self, data: bytes, mime: str) -> str:
        """Store bytes once under their sha256 hex digest, which is returned."""

    async def get_blob(self, sha256: str) -> tuple[bytes, str] | None:
        """(data, mime), or None when unknown."""

    async def blob_sizes(self, refs: Sequence[str]) -> dict[str, int]:
        """The byte size of each known blob among `refs`, without reading the bytes; unknown ones are left out."""

    # Quota ledger
    async def reserve(
        self,
        *,
        user_key: str,
        workspace_id: str,
        credits: int,
        usd: float,
        limits: Limits | LimitRule,
        now: datetime,
        ttl: timedelta,
        owner: str,
    ) -> Reservation | Refusal:
        """Atomically check every limit against reserved+committed usage and hold credits+usd, or refuse.

        `limits`: the ceilings, or a rule that makes them from the user's standing. SQLite reads the standing in the
        reservation's transaction (an admin's block or grant counts from the moment it is written); Postgres reads
        it just before (`decide_limits`).
        """

    async def commit(self, reservation_id: str, *, usd: float, now: datetime) -> bool:
        """Turn a held reservation into spend, correcting usd to the actual cost. False if not held anymore."""

    async def refund(self, reservation_id: str, *, usd: float, now: datetime) -> bool:
        """Give the credits back; usd becomes the actual cost (Google may bill a failed call). False if not held."""

    async def reclaim(self, *, now: datetime, dead_owners: tuple[str, ...] = ()) -> int:
        """Refund held reservations that expired or whose owner is dead, and drop such owners' thread leases.

        Returns how many reservations were refunded.
        """

    async def held_owners(self) -> list[str]:
        """Distinct owners of reservations still held (to find the ones whose process died)."""

    async def renew(self, owner: str, *, until: datetime) -> int:
        """Heartbeat: push the expiry of this owner's held reservations and thread leases to `until`.

        A live process renews what it holds, so expiry only ever reclaims what a dead process left.
        Returns how many rows were extended.
        """

    async def try_lease(self, thread_key: str, *, owner: str, now: datetime, ttl: timedelta) -> bool:
        """Take the thread for one turn (across processes): True if it was free, expired or already ours."""

    async def release_lease(self, thread_key: str, *, owner: str) -> None:
        """Give the thread back (only if `owner` holds it)."""

    async def usage(self, user_key: str, *, now: datetime) -> Usage: ...

    async def spend(self, *, scope: str, period: str) -> float:
        """USD counted for a scope ("user:K", "workspace:W", "global") and period ("2026-11-21" / "2026-11")."""

    async def get_policy(self, user_key: str) -> UserPolicy: ...

    async def set_policy(self, policy: UserPolicy) -> None: ...

    async def grant(self, user_key: str, *, credits: int, now: datetime, by: str) -> None:
        """Extra credits for the user's current day and month (raises both ceilings by `credits`)."""

    async def granted(self, user_key: str, *, now: datetime) -> tuple[int, int]:
        """(credits granted for today, credits granted for this month)."""

    async def standing(self, user_key: str, *, now: datetime, with_usage: bool) -> Standing:
        """Policy, grants and (`with_usage`) usage; a store may read them in one trip (SQLite does). This default
        reads them one after another: no task per read (Postgres batches each kind across concurrent callers)."""
        policy = await self.get_policy(user_key)
        day, month = await self.granted(user_key, now=now)
        usage = await self.usage(user_key, now=now) if with_usage else None
        return Standing(policy, day, month, usage)

    async def reset_usage(self, user_key: str, *, now: datetime) -> None:
        """Zero the user's credit counters for the current day and month; usd spent stays counted.

        A refund of a reservation made before the reset never takes a counter below zero.
        """

    # Delivery safety
    async def claim_event(self, event_id: str, *, now: datetime) -> bool:
        """True the first time an event id is seen (across processes), False for a redelivery."""

    async def checkpoint(self) -> None:
        """Make what was written durable in the database file now (SQLite: a WAL checkpoint); by default nothing."""
        return None

    async def purge(self, *, before: datetime) -> int:
        """Retention: delete ended data older than `before` (turns, sessions, unreferenced blobs, old events)."""


def period_day(now: datetime) -> str:
    """The UTC day a moment counts in, "2026-11-21" (a date's isoformat: a third of strftime's cost, and every
    reservation formats its periods on the event loop)."""
    return now.astimezone(UTC).date().isoformat()


def period_month(now: datetime) -> str:
    """The UTC month a moment counts in, "2026-11"."""
    return period_day(now)[:7]
