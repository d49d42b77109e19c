"""From an invocation to replies: dedupe, permissions, the thread queue, the command, and nothing that crashes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta

from bot.charges import settle
from bot.command import Command
from bot.errors import UserError
from bot.logs import SESSION_KEY
from bot.models import Invocation, Progress, Reply, UserRef
from bot.ports import Responder
from bot.services import Services

log = logging.getLogger(__name__)

OOPS = "Something went wrong on my side; nothing was charged. Please try again."


async def dispatch(
    inv: Invocation, responder: Responder, services: Services, commands: Mapping[str, Command]
) -> list[Reply]:
    """Run one invocation, post its replies and settle their charges; returns the replies."""
    task = asyncio.current_task()
    if task is not None:
        services.running.add(task)
    SESSION_KEY.set(inv.thread.key if inv.thread else "")
    try:
        return await _dispatch(inv, responder, services, commands)
    finally:
        if task is not None:
            services.running.discard(task)


async def _dispatch(
    inv: Invocation, responder: Responder, services: Services, commands: Mapping[str, Command]
) -> list[Reply]:
    if inv.event_id is not None and not await services.store.claim_event(inv.event_id, now=services.now()):
        log.info("dropping redelivered event %s", inv.event_id)
        return []
    command = commands.get(inv.command)
    if command is None:
        return await _deliver(responder, services, [_refusal(f"I don't know the command “{inv.command}”. Try /help.")])
    if command.admin and not services.is_admin(inv.user):
        return await _deliver(responder, services, [_refusal("Only bot admins can do that.")])
    if not command.session:
        return await _deliver(responder, services, await _call(command, inv, services))
    if inv.thread is None:
        return await _deliver(responder, services, [_refusal("This works inside an image session thread.")])
    user = inv.user.key
    busy = too_busy(services, inv.user)
    if busy is not None:
        return await _deliver(responder, services, [_refusal(busy)])

    async def queued(position: int) -> None:
        await _progress(responder, Progress("queued", position=position))

    started = time.monotonic()
    services.in_flight[user] += 1
    answered = False
    try:
        # The thread is held until the replies are posted and settled, so the next turn sees the new head.
        async with services.queue.turn(inv.thread.key, on_queued=queued), thread_lease(services, inv.thread.key):
            await _progress(responder, Progress("started"))
            result = await _call(command, inv, services)
            answered = True
            replies = await _deliver(responder, services, result)
    except asyncio.CancelledError:
        if not answered:  # a shutdown stopped it before any answer: its credits went back, and the user is told
            await _stopped(responder, time.monotonic() - started)
        raise
    finally:
        services.in_flight[user] -= 1
        if services.in_flight[user] <= 0:
            del services.in_flight[user]
    failed = any(reply.error for reply in replies)
    await _progress(responder, Progress("failed" if failed else "finished", elapsed=time.monotonic() - started))
    return replies


def too_busy(services: Services, user: UserRef) -> str | None:
    """The refusal for a user with BANANABOT_USER_MAX_IN_FLIGHT requests on the way already, else None."""
    running = services.in_flight.get(user.key, 0)
    if running >= services.settings.user_max_in_flight:
        return f"You already have {running} requests on the way; wait for one to finish."
    return None


@asynccontextmanager
async def thread_lease(services: Services, key: str) -> AsyncIterator[None]:
    """Hold the thread in the store too, so replicas sharing a database also run its turns one at a time."""
    owner = services.ledger.owner
    ttl = timedelta(seconds=services.settings.reservation_ttl_seconds)
    delay = 0.05
    while not await services.store.try_lease(key, owner=owner, now=services.now(), ttl=ttl):
        await asyncio.sleep(delay)  # another process runs a turn of this thread
        delay = min(delay * 2, 1.0)
    try:
        yield
    finally:
        try:
            await asyncio.shield(services.store.release_lease(key, owner=owner))
        except Exception:
            # Our heartbeat would renew it forever: maintenance retries the release instead.
            services.unreleased_leases.add(key)
            log.warning("could not release the lease of %s; maintenance will retry", key, exc_info=True)


async def _call(command: Command, inv: Invocation, services: Services) -> list[Reply]:
    try:
        result = await command.handler(inv, services)
    except UserError as exc:
        return [_refusal(exc.user_message)]
    except Exception:
        services.metrics.errors.labels("unexpected").inc()
        log.exception("command %s failed", inv.command)
        return [_refusal(OOPS)]
    return result if isinstance(result, list) else [result]


async def _deliver(responder: Responder, services: Services, replies: list[Reply]) -> list[Reply]:
    """Post each reply, then settle its charges; whatever was not posted (error or cancellation) is refunded."""
    shown: list[Reply] = []
    waiting = list(replies)
    try:
        while waiting:
            reply = waiting[0]
            try:
                await responder.send(reply)
            except Exception:
                log.exception("could not post a reply")
                waiting.pop(0)
                await settle(services, reply.receipts, delivered=False)
                shown.append(await _apologise(responder, reply))
                continue
            waiting.pop(0)
            await settle(services, reply.receipts, delivered=True)
            shown.append(reply)
    finally:
        for reply in waiting:
            await settle(services, reply.receipts, delivered=False)
    return shown


async def _apologise(responder: Responder, failed: Reply) -> Reply:
    what = "made the image but couldn't post it here" if failed.images else "couldn't post my answer here"
    apology = _refusal(f"I {what}; nothing was charged.")
    try:
        await responder.send(apology)
    except Exception:
        log.warning("could not post the apology either")
    return apology


STOPPED = "I had to stop before finishing this (the bot is restarting); nothing was charged. Send it again in a minute."


async def _stopped(responder: Responder, elapsed: float) -> None:
    """Say so and end the progress display, within a few seconds: the process is on its way out."""

    async def tell() -> None:
        await responder.send(_refusal(STOPPED))
        await responder.progress(Progress("failed", elapsed=elapsed))

    try:
        await asyncio.wait_for(asyncio.shield(tell()), timeout=3.0)
    except Exception:  # a courtesy on the way out; the refund does not depend on it
        log.warning("could not tell the user their turn was stopped", exc_info=True)


async def _progress(responder: Responder, event: Progress) -> None:
    try:
        await responder.progress(event)
    except Exception:  # progress is a courtesy; it never fails a turn
        log.warning("progress %s could not be shown", event.kind, exc_info=True)


def _refusal(text: str) -> Reply:
    return Reply(text=text, ephemeral=True, error=True)
