"""Charges awaiting delivery: committed once the adapter posted the image, refunded if it could not.

Every reservation has one owner at a time: the turn runner until its reply is built, then a Charge in
`services.charges` until the dispatcher has tried to post the reply. Whatever the owner can't settle (an error,
a cancellation) it refunds; what a crash leaves behind expires and is reclaimed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from bot.store.base import Reservation, TurnResult

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Charge:
    """A delivered turn's reservation, held until its reply is posted.

    Attributes:
        batch: Turns made by one command share a batch; the first one actually posted becomes the session head.
    """

    reservation: Reservation
    usd: float
    turn_id: str
    session_id: str
    batch: str
    move_head: bool = True


async def refund_quietly(services: Services, reservation: Reservation, *, usd: float) -> None:
    """Refund, shielded from cancellation and never raising: a failed refund is left to expiry and reclaim."""
    try:
        if await asyncio.shield(services.ledger.refund(reservation, usd=usd, now=services.now())):
            services.metrics.credits.labels("refunded").inc(reservation.credits)
    except Exception:
        log.exception("refund of reservation %s failed; it will be reclaimed when it expires", reservation.id)


async def settle(services: Services, receipts: tuple[str, ...], *, delivered: bool) -> None:
    """After a reply was posted (or not): commit or refund its charges, move the head. Never raises but a
    cancellation, and that one only after the settling is under way: it finishes in the background (a shutdown
    that cancels a turn just after its image was posted still charges it), and `Services.drain` waits for it."""
    charges = [charge for charge in (services.charges.pop(receipt, None) for receipt in receipts) if charge]
    if not charges:
        return
    settling = asyncio.ensure_future(_settle_all(services, charges, delivered=delivered))
    services.running.add(settling)
    settling.add_done_callback(services.running.discard)
    await asyncio.shield(settling)


async def _settle_all(services: Services, charges: list[Charge], *, delivered: bool) -> None:
    for charge in charges:
        try:
            if not delivered:
                await refund_quietly(services, charge.reservation, usd=charge.usd)
                await mark_failed(services, charge.turn_id, "undelivered", "the reply could not be posted")
                continue
            if await services.ledger.commit(charge.reservation, usd=charge.usd, now=services.now()):
                services.metrics.credits.labels("committed").inc(charge.reservation.credits)
            else:
                log.warning("turn %s was delivered after its reservation expired; not charged", charge.turn_id)
            if charge.move_head:
                await services.store.set_head(charge.session_id, charge.turn_id)
                _head_taken(services, charge.batch)
        except Exception:
            log.exception("settling turn %s failed", charge.turn_id)


async def mark_failed(services: Services, turn_id: str, outcome: str, detail: str) -> None:
    """Mark a turn failed, keeping what it recorded (the model's answer, tokens and cost stay for the books)."""
    try:
        turn = await services.store.get_turn(turn_id)
        if turn is None:
            return
        result = TurnResult(
            status="failed",
            outcome=outcome,
            outcome_detail=detail[:500],
            finished_at=services.now(),
            response_json=turn.response_json,
            prompt_tokens=turn.prompt_tokens,
            candidate_tokens=turn.candidate_tokens,
            thought_tokens=turn.thought_tokens,
            cost_usd=turn.cost_usd,
            credits=0,
        )
        await asyncio.shield(services.store.finish_turn(turn_id, result))
    except Exception:
        log.exception("could not mark turn %s failed", turn_id)


def _head_taken(services: Services, batch: str) -> None:
    for turn_id, other in list(services.charges.items()):
        if other.batch == batch and other.move_head:
            services.charges[turn_id] = replace(other, move_head=False)
