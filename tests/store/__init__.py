"""Store contract suite: shared times and row builders (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime, timedelta

from bot.store import LimitRule, Limits, Refusal, Reservation, Store, TurnRow

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
TTL = timedelta(minutes=10)
USER = "discord:user-1"
WORKSPACE = "discord:guild-1"
# A thought signature is opaque base64: '+' and '/' must survive byte for byte.
REQUEST_JSON = (
    '{"role":"user","parts":[{"text":"a banana in space \\u2014 \u00e9t\u00e9 \U0001f34c"},'
    '{"blob":"%s","mimeType":"image/png"}]}'
)
RESPONSE_JSON = (
    '{"role":"model","parts":[{"text":"thinking","thought":true},'
    '{"blob":"%s","mimeType":"image/png","thoughtSignature":"Cq8+Ab/9xY+/z0==","thought":false}]}'
)


class Gate:
    """A write that holds the writer thread until the test opens the gate."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, conn: sqlite3.Connection) -> str:
        self.entered.set()
        if not self.opened.wait(timeout=30):
            raise TimeoutError("the test never opened the gate")
        return "gate"

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 30)


class Clock:
    """A wall clock the test sets; stores use it where the contract passes no `now` (blob touch time)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_turn(
    turn_id: str,
    session_id: str,
    *,
    parent_id: str | None = None,
    created_at: datetime = NOW,
    request_json: str = '{"role":"user","parts":[{"text":"hi"}]}',
    model: str = "gemini-2.5-flash-image",
    owner: str | None = None,
) -> TurnRow:
    return TurnRow(
        id=turn_id,
        session_id=session_id,
        parent_id=parent_id,
        kind="imagine",
        user_key=USER,
        user_name="Ada",
        prompt=f"prompt of {turn_id}",
        model=model,
        aspect_ratio="16:9",
        image_size="1K",
        request_json=request_json,
        created_at=created_at,
        owner=owner,
    )


async def hold(
    store: Store,
    limits: Limits | LimitRule,
    *,
    user_key: str = USER,
    workspace_id: str = WORKSPACE,
    credits: int = 1,
    usd: float = 0.0,
    now: datetime = NOW,
    ttl: timedelta = TTL,
    owner: str = "proc-a",
) -> Reservation | Refusal:
    return await store.reserve(
        user_key=user_key,
        workspace_id=workspace_id,
        credits=credits,
        usd=usd,
        limits=limits,
        now=now,
        ttl=ttl,
        owner=owner,
    )


async def held(store: Store, limits: Limits, **kwargs: object) -> Reservation:
    """A reservation that must succeed."""
    result = await hold(store, limits, **kwargs)  # type: ignore[arg-type]
    assert isinstance(result, Reservation), result
    return result
