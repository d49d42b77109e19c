"""AckGate: a turn's work waits until the defers already on the way have landed, and never longer than HOLD_MAX."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.discord import acks
from adapters.discord.acks import AckGate


class Response:
    """An interaction's response whose defer lands when the test says so."""

    def __init__(self) -> None:
        self.landed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.calls: list[dict[str, Any]] = []

    async def defer(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)
        await self.landed


class Interaction:
    def __init__(self) -> None:
        self.response = Response()


async def test_a_lone_interaction_goes_on_once_its_defer_landed() -> None:
    gate, alone = AckGate(), Interaction()
    going = asyncio.ensure_future(gate.defer(alone))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert alone.response.calls == [{"ephemeral": True, "thinking": True}] and not going.done()
    alone.response.landed.set_result(None)
    await asyncio.wait_for(going, 0.05)


async def test_work_waits_for_the_other_defers_in_flight() -> None:
    gate, first, second = AckGate(), Interaction(), Interaction()
    a = asyncio.ensure_future(gate.defer(first))  # type: ignore[arg-type]
    b = asyncio.ensure_future(gate.defer(second))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    first.response.landed.set_result(None)
    await asyncio.sleep(0.02)
    assert not a.done()  # its defer landed, but the second one is still on the way
    second.response.landed.set_result(None)
    await asyncio.wait_for(asyncio.gather(a, b), 0.05)


async def test_a_defer_that_never_lands_holds_the_others_only_hold_max(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(acks, "HOLD_MAX", 0.05)
    gate, quick, stuck = AckGate(), Interaction(), Interaction()
    stalled = asyncio.ensure_future(gate.defer(stuck))  # type: ignore[arg-type]
    going = asyncio.ensure_future(gate.defer(quick))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    quick.response.landed.set_result(None)
    await asyncio.wait_for(going, 1.0)
    stalled.cancel()


async def test_a_failed_defer_raises_and_holds_nobody_after_it() -> None:
    gate, failing, later = AckGate(), Interaction(), Interaction()
    failed = asyncio.ensure_future(gate.defer(failing))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    failing.response.landed.set_exception(RuntimeError("404 Unknown interaction"))
    with pytest.raises(RuntimeError):
        await failed
    going = asyncio.ensure_future(gate.defer(later))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    later.response.landed.set_result(None)
    await asyncio.wait_for(going, 0.05)  # the failed one no longer counts as in flight
