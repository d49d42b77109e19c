"""Credits under stress: cancellation, partial delivery, batch refusals; who is an admin."""

from __future__ import annotations

import asyncio

from pytest import approx

from bot.catalog import FLASH_31, PRO_3, lookup
from bot.dispatcher import STOPPED, dispatch
from bot.models import Invocation, Progress, Reply, UserRef
from commands import COMMANDS
from tests.core.conftest import ALICE, NOON, THREAD
from tests.fakes.chat import RecordingResponder
from tests.fakes.gemini.faults import Fault


async def slow_turn_under_way(services, fake_gemini, responder) -> asyncio.Task[list[Reply]]:  # type: ignore[no-untyped-def]
    """A turn whose model call has gone out and takes 30 s."""
    fake_gemini.latency = 30
    task = asyncio.create_task(
        dispatch(Invocation("imagine", ALICE, THREAD, "a slow cat"), responder, services, COMMANDS)
    )
    while not fake_gemini.requests:
        await asyncio.sleep(0.02)
    return task


async def test_a_turn_cancelled_mid_call_refunds_and_leaves_nothing_pending(services, fake_gemini, responder) -> None:
    task = await slow_turn_under_way(services, fake_gemini, responder)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    usage = await services.store.usage(ALICE.key, now=NOON)
    assert usage.day_credits == 0
    # The request went out: Gemini may still make (and bill) the image, so USD budgets keep its estimate.
    assert usage.month_usd == approx(lookup(services.settings.model).usd_per_image("1K"))
    assert await services.store.held_owners() == []
    assert services.charges == {} and not services.in_flight
    session = await services.store.active_session(THREAD.key)
    assert session is not None and session.head_turn_id is None
    assert await services.store.pending_turn_owners() == []


async def test_a_turn_cancelled_before_its_call_went_out_costs_nothing(make_services, fake_gemini, responder) -> None:
    services = await make_services(max_concurrent_calls=1)
    async with services.model_slots:  # every model slot is taken: the turn waits for one
        task = asyncio.create_task(
            dispatch(Invocation("imagine", ALICE, THREAD, "a patient cat"), responder, services, COMMANDS)
        )
        while (await services.store.usage(ALICE.key, now=NOON)).day_credits == 0:
            await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert fake_gemini.requests == []
    usage = await services.store.usage(ALICE.key, now=NOON)
    assert (usage.day_credits, usage.month_usd) == (0, 0.0)
    assert await services.store.held_owners() == []


async def test_a_call_given_up_on_keeps_its_estimate_for_the_budgets_but_not_its_credit(
    make_services, fake_gemini, run
) -> None:
    services = await make_services(gemini_timeout_seconds=0.3, gemini_max_attempts=1)
    fake_gemini.enqueue(Fault.HANG)
    replies = await run("imagine", "a slow cat", on=services)

    assert "didn't answer in time" in replies[-1].text and fake_gemini.requests
    usage = await services.store.usage(ALICE.key, now=NOON)
    assert usage.day_credits == 0
    assert usage.month_usd == approx(lookup(services.settings.model).usd_per_image("1K"))


async def test_an_attempt_given_up_on_keeps_its_estimate_whatever_the_retry_ends_in(
    make_services, fake_gemini, run
) -> None:
    services = await make_services(gemini_timeout_seconds=0.3, gemini_max_attempts=2, gemini_backoff_seconds=0.01)
    estimate = lookup(services.settings.model).usd_per_image("1K")
    fake_gemini.enqueue(Fault.HANG)  # attempt 1: sent whole, never answered (Gemini may still bill it)
    fake_gemini.enqueue(Fault.OVERLOADED)  # attempt 2: a 503, never billed
    [failed] = await run("imagine", "a slow cat", on=services)
    assert failed.error and len(fake_gemini.requests) == 2
    assert (await services.store.usage(ALICE.key, now=NOON)).month_usd == approx(estimate)

    fake_gemini.enqueue(Fault.HANG)  # attempt 1 lost again, then attempt 2 delivers: both count
    [delivered] = await run("imagine", "a slow dog", on=services)
    assert delivered.images
    usage = await services.store.usage(ALICE.key, now=NOON)
    assert usage.day_credits == 1 and usage.month_usd > 2 * estimate


async def test_an_error_gemini_answered_costs_nothing(services, fake_gemini, run) -> None:
    fake_gemini.enqueue(Fault.DEADLINE, times=5, retry_delay="0.01s")
    replies = await run("imagine", "a cat")

    assert replies[-1].error and fake_gemini.requests
    usage = await services.store.usage(ALICE.key, now=NOON)
    assert (usage.day_credits, usage.month_usd) == (0, 0.0)


class FailFirstUpload(RecordingResponder):
    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def send(self, reply: Reply) -> None:
        if reply.images and not self.failed:
            self.failed = True
            raise ConnectionError("upload refused")
        await super().send(reply)


async def test_when_the_first_variation_cannot_be_posted_the_next_one_becomes_the_head(run, services) -> None:
    await run("imagine", "a tree")
    responder = FailFirstUpload()
    replies = await run("variations", count="2", to=responder)

    posted = [r for r in replies if r.images]
    assert len(posted) == 1 and any("couldn't post" in r.text for r in replies)
    session = await services.store.active_session(THREAD.key)
    assert session is not None and session.head_turn_id == posted[0].buttons[0].turn_id
    assert (await services.store.usage(ALICE.key, now=NOON)).day_credits == 2  # the tree + one posted variation
    assert services.charges == {}


async def test_a_batch_that_does_not_fit_says_what_it_needs_and_what_is_left(make_services, run) -> None:
    services = await make_services(user_daily_credits=4)
    try:
        await run("imagine", "a tree", on=services)
        await run("imagine", "a bigger tree", on=services)
        [refused] = await run("variations", count="3", on=services)
    finally:
        await services.close()
    assert refused.error
    assert "this needs 3 credits (2 left)" in refused.text


async def test_switching_model_drops_an_inherited_aspect_the_new_model_lacks(run, fake_gemini) -> None:
    await run("imagine", "a long banner", aspect_ratio="8:1", model=FLASH_31.id)
    [reply] = await run("imagine", "make it gold", model=PRO_3.id)
    assert not reply.error, reply.text
    assert "aspectRatio" not in fake_gemini.requests[-1].body["generationConfig"].get("imageConfig", {})


async def test_refused_input_creates_no_session(run, services) -> None:
    await run("imagine", "   ")
    assert await services.store.active_session(THREAD.key) is None


async def test_only_configured_admins_are_admins(make_services) -> None:
    services = await make_services(admins="discord:42,discord-role:7,slack:UADMIN")
    try:
        assert services.is_admin(UserRef("discord", "42"))
        assert services.is_admin(UserRef("discord", "9", roles=("7",)))
        assert services.is_admin(UserRef("slack", "UADMIN"))
        assert not services.is_admin(UserRef("discord", "9", roles=("8",), platform_admin=True))
        assert not services.is_admin(UserRef("slack", "U42"))
        assert services.is_admin(UserRef("console", "me", platform_admin=True))
    finally:
        await services.close()


async def test_progress_reports_queue_positions_in_order(run, services, fake_gemini) -> None:
    fake_gemini.latency = 0.3
    first, second, third = RecordingResponder(), RecordingResponder(), RecordingResponder()
    tasks = [asyncio.create_task(run("imagine", "one", to=first))]
    while not fake_gemini.requests:
        await asyncio.sleep(0.01)
    tasks.append(asyncio.create_task(run("imagine", "two", to=second)))
    await asyncio.sleep(0.05)
    tasks.append(asyncio.create_task(run("imagine", "three", to=third, user=UserRef("console", "carol"))))
    await asyncio.gather(*tasks)

    assert [e.kind for e in first.events] == ["started", "finished"]
    assert second.events[0] == Progress("queued", position=1)
    assert third.events[0] == Progress("queued", position=2)
    prompts = [r.body["contents"][-1]["parts"][-1]["text"] for r in fake_gemini.requests]
    assert prompts == ["one", "two", "three"]  # strictly first come, first served


async def test_a_turn_a_shutdown_stops_tells_its_user_and_ends_its_progress(services, fake_gemini, responder) -> None:
    task = await slow_turn_under_way(services, fake_gemini, responder)
    await services.drain(grace=0.1)  # what SIGTERM does, with BANANABOT_SHUTDOWN_GRACE_SECONDS=0.1

    assert task.done()
    assert responder.texts == [STOPPED] and responder.replies[0].ephemeral
    assert [event.kind for event in responder.events] == ["started", "failed"]
    assert (await services.store.usage(ALICE.key, now=NOON)).day_credits == 0


async def test_a_nul_character_in_a_prompt_is_dropped_before_anything_is_stored(run, fake_gemini) -> None:
    # Postgres text can't hold U+0000: the turn row failed after the model was paid. SQLite took it.
    [reply] = await run("imagine", "a fox\x00 in snow")
    assert reply.images
    assert fake_gemini.requests[-1].body["contents"][-1]["parts"][-1]["text"] == "a fox in snow"
