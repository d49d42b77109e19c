"""Image turns through the dispatcher: sessions, history with signatures, undo/retry/upscale/variations."""

from __future__ import annotations

import asyncio
import base64
import json

from bot.catalog import FLASH_25, FLASH_31, PRO_3
from bot.store.base import period_day
from tests.core.conftest import ALICE, BOB, NOON, THREAD, png_bytes, size_of
from tests.fakes.chat import BytesImage, RecordingResponder


def model_signatures(body: dict) -> list[bytes]:
    out = []
    for content in body["contents"]:
        if content["role"] == "model":
            for part in content["parts"]:
                if "thoughtSignature" in part:
                    out.append(base64.b64decode(part["thoughtSignature"]))
    return out


async def test_imagine_posts_an_image_with_buttons_and_charges_one_credit(run, services, fake_gemini) -> None:
    replies = await run("imagine", "a banana astronaut", aspect_ratio="16:9")

    [reply] = replies
    assert not reply.error, reply.text
    assert size_of(reply.images[0].data) == FLASH_31.dimensions("1K", "16:9")
    assert {b.action for b in reply.buttons} == {"retry", "undo", "upscale_2k", "upscale_4k", "variations"}
    assert "a banana astronaut" in reply.text and "Alice" in reply.text
    assert (await services.store.usage(ALICE.key, now=NOON)).day_credits == 1
    session = await services.store.active_session(THREAD.key)
    assert session is not None and session.head_turn_id == reply.buttons[0].turn_id
    assert len(fake_gemini.requests) == 1


async def test_edits_from_two_users_build_on_each_other_and_send_signatures(run, services, fake_gemini) -> None:
    await run("imagine", "a red bicycle", model=PRO_3.id)
    await run("imagine", "make it blue", user=BOB, images=(BytesImage(png_bytes()),))
    third = await run("imagine", "add a basket")

    assert not third[0].error
    bodies = [r.body for r in fake_gemini.requests]
    assert [len(b["contents"]) for b in bodies] == [1, 3, 5]
    assert len(model_signatures(bodies[2])) >= 4  # two signed parts per earlier model turn
    assert all(r.status == 200 for r in fake_gemini.requests)
    assert (await services.store.usage(ALICE.key, now=NOON)).day_credits == 2
    assert (await services.store.usage(BOB.key, now=NOON)).day_credits == 1
    second_user_turn = bodies[1]["contents"][2]["parts"]
    assert any("inlineData" in p for p in second_user_turn)  # Bob's reference image went with his edit


async def test_a_restart_continues_the_thread_with_signatures_intact(make_services, run, fake_gemini) -> None:
    first = await make_services()
    await run("imagine", "a castle", on=first, model=PRO_3.id)
    await first.close()

    second = await make_services()
    try:
        [reply] = await run("imagine", "at sunset", on=second)
    finally:
        await second.close()
    assert not reply.error, reply.text
    last = fake_gemini.requests[-1]
    assert last.status == 200 and len(last.body["contents"]) == 3
    assert len(model_signatures(last.body)) >= 2


async def test_two_turns_in_one_thread_run_in_order(run, services, fake_gemini, responder) -> None:
    await run("imagine", "a lamp")
    fake_gemini.latency = 0.3
    other = RecordingResponder()
    await asyncio.gather(run("imagine", "make it green"), run("imagine", "make it tall", user=BOB, to=other))

    prompts = [r.body["contents"][-1]["parts"][-1]["text"] for r in fake_gemini.requests]
    assert prompts[0] == "a lamp" and sorted(prompts[1:]) == ["make it green", "make it tall"]
    # the later turn was built on the earlier one: it carries two model turns
    assert [len(r.body["contents"]) for r in fake_gemini.requests] == [1, 3, 5]
    assert any(e.kind == "queued" and e.position == 1 for e in [*responder.events, *other.events])


async def test_undo_then_edit_branches_from_the_previous_image(run, services, fake_gemini) -> None:
    await run("imagine", "a boat")
    await run("imagine", "add a sail")
    [undone] = await run("undo")
    assert "Undone" in undone.text and undone.images
    await run("imagine", "paint it yellow")

    body = fake_gemini.requests[-1].body
    texts = [p.get("text") for c in body["contents"] if c["role"] == "user" for p in c["parts"]]
    assert texts == ["a boat", "paint it yellow"]
    assert (await services.store.usage(ALICE.key, now=NOON)).day_credits == 3  # undo is free


async def test_undo_at_the_first_image_says_so(run) -> None:
    await run("imagine", "a boat")
    [reply] = await run("undo")
    assert reply.error and "nothing to undo" in reply.text


async def test_retry_resends_the_same_request_from_the_same_parent(run, fake_gemini) -> None:
    await run("imagine", "a fox")
    await run("imagine", "in the snow")
    [again] = await run("retry")

    assert not again.error
    first_try, retried = fake_gemini.requests[1].body, fake_gemini.requests[2].body
    assert retried["contents"] == first_try["contents"]


async def test_upscale_renders_the_head_at_4k(run, services) -> None:
    await run("imagine", "a mountain", aspect_ratio="3:2")
    [big] = await run("upscale", size="4K")

    assert not big.error, big.text
    assert size_of(big.images[0].data) == FLASH_31.dimensions("4K", "3:2")
    assert (await services.store.usage(ALICE.key, now=NOON)).day_credits == 1 + 4  # 4K costs 4 credits


async def test_upscale_of_a_nano_banana_image_moves_to_nano_banana_2(run, fake_gemini) -> None:
    await run("imagine", "a tree", model=FLASH_25.id)
    [big] = await run("upscale", size="2K")

    assert not big.error, big.text
    last = fake_gemini.requests[-1]
    assert last.model == FLASH_31.id
    parts = last.body["contents"][-1]["parts"]
    assert len(last.body["contents"]) == 1 and any("inlineData" in p for p in parts)  # the image went as a reference


async def test_variations_are_siblings_and_each_charged(run, services, fake_gemini) -> None:
    [first] = await run("imagine", "a robot")
    [second] = await run("imagine", "give it wheels")
    replies = await run("variations", count="3")

    assert len(replies) == 3 and all(r.images for r in replies)
    ids = [r.buttons[0].turn_id for r in replies]
    assert len(set(ids)) == 3 and second.buttons[0].turn_id not in ids
    for turn_id in ids:
        turn = await services.store.get_turn(turn_id)
        assert turn is not None and turn.kind == "variation"
        assert turn.parent_id == first.buttons[0].turn_id  # siblings of "give it wheels"
    session = await services.store.active_session(THREAD.key)
    assert session is not None and session.head_turn_id == ids[0]
    assert (await services.store.usage(ALICE.key, now=NOON)).day_credits == 5
    assert all(r.body["contents"] == fake_gemini.requests[1].body["contents"] for r in fake_gemini.requests[2:])


async def test_a_button_from_another_thread_is_refused(run, fake_gemini) -> None:
    [reply] = await run("imagine", "a cup")
    turn_id = reply.buttons[0].turn_id
    elsewhere = THREAD.__class__("console", "local", "terminal", "other")
    await run("imagine", "a plate", thread=elsewhere)
    requests = len(fake_gemini.requests)

    [refused] = await run("retry", thread=elsewhere, turn=turn_id)
    assert refused.error and "another session" in refused.text
    assert len(fake_gemini.requests) == requests


async def test_reset_ends_the_session_and_the_next_prompt_starts_fresh(run, fake_gemini) -> None:
    await run("imagine", "a dog")
    [done] = await run("reset")
    assert "Session ended" in done.text
    await run("imagine", "a cat")
    assert len(fake_gemini.requests[-1].body["contents"]) == 1


async def test_request_size_stays_bounded_as_the_session_grows(run, services, fake_gemini) -> None:
    sizes = {}
    for turn in range(1, 21):
        [reply] = await run("imagine", f"step {turn}: change one detail")
        assert not reply.error, reply.text
        sizes[turn] = len(json.dumps(fake_gemini.requests[-1].body))
    assert len(fake_gemini.requests[-1].body["contents"]) == 2 * (services.settings.history_turns + 1) + 1
    assert sizes[20] / sizes[2] <= 8
    assert sizes[20] <= sizes[10] * 1.2  # flat once the window is full
    texts = [c["parts"][-1].get("text") for c in fake_gemini.requests[-1].body["contents"] if c["role"] == "user"]
    assert texts[0] == "step 1: change one detail"  # the session's first turn is always kept


async def test_switching_model_mid_session_carries_the_image_not_the_signatures(run, fake_gemini) -> None:
    await run("imagine", "a kite", model=PRO_3.id)
    [reply] = await run("imagine", "make it red", model=FLASH_31.id)

    assert not reply.error, reply.text
    last = fake_gemini.requests[-1]
    assert last.status == 200 and len(last.body["contents"]) == 1
    assert any("inlineData" in p for p in last.body["contents"][0]["parts"])


async def test_a_model_switch_counts_the_carried_image_among_the_new_models_references(
    run, services, fake_gemini
) -> None:
    await run("imagine", "a castle", model=FLASH_31.id)
    three = tuple(BytesImage(png_bytes(64, 64, (i * 40, 0, 0))) for i in range(FLASH_25.max_references))
    [refused] = await run("imagine", "combine these", model=FLASH_25.id, images=three)
    assert refused.error and refused.text == (
        "That's 3 images, and this thread's last image goes along to the new model: it takes at most 3 in all, "
        "so send at most 2 with this message."
    )
    assert len(fake_gemini.requests) == 1  # refused before anything was reserved or sent
    assert (await services.store.usage(ALICE.key, now=NOON)).day_credits == 1
    [reply] = await run("imagine", "combine these", model=FLASH_25.id, images=three[:2])
    assert not reply.error, reply.text
    assert sum("inlineData" in p for p in fake_gemini.requests[-1].body["contents"][-1]["parts"]) == 3


async def test_usage_day_is_utc() -> None:
    from datetime import datetime, timedelta, timezone

    late_in_california = datetime(2026, 11, 21, 20, 30, tzinfo=timezone(timedelta(hours=-8)))
    assert period_day(late_in_california) == "2026-11-22"  # already tomorrow in UTC, where quota days live
    assert period_day(NOON) == "2026-11-21"


async def test_a_user_with_too_many_turns_in_flight_is_told_to_wait(make_services, run, fake_gemini) -> None:
    services = await make_services(user_max_in_flight=1)
    fake_gemini.latency = 0.4
    other_thread = THREAD.__class__("console", "local", "terminal", "t2")
    try:
        first, second = await asyncio.gather(
            run("imagine", "a kettle", on=services), run("imagine", "a teapot", on=services, thread=other_thread)
        )
    finally:
        await services.close()
    refused = [r for r in (*first, *second) if r.error]
    assert len(refused) == 1 and "wait for one to finish" in refused[0].text
    assert len(fake_gemini.requests) == 1
