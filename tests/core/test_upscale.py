"""Upscale is for keeping: it names the user's prompt, never goes sideways, and edits after it go back to the size
the image was made at (a 4K edit costs four credits)."""

from __future__ import annotations

import pytest

from bot.catalog import FLASH_25, FLASH_31
from commands.upscale import INSTRUCTION
from tests.core.conftest import ALICE, NOON, THREAD
from tests.fakes.gemini import FakeGemini


def turn_of(reply) -> str:  # type: ignore[no-untyped-def]
    return str(reply.buttons[0].turn_id)


def sent_text(fake_gemini: FakeGemini) -> str:
    return str(fake_gemini.requests[-1].body["contents"][-1]["parts"][-1]["text"])


async def credits(services) -> int:  # type: ignore[no-untyped-def]
    return (await services.store.usage(ALICE.key, now=NOON)).day_credits


async def test_the_model_gets_the_instruction_and_every_caption_after_names_the_users_prompt(run, fake_gemini) -> None:
    await run("imagine", "a mountain", aspect_ratio="3:2")
    [two_k] = await run("upscale", size="2K")
    assert sent_text(fake_gemini) == INSTRUCTION
    [four_k] = await run("upscale", size="4K", turn=turn_of(two_k))  # the Upscale 4K button on the 2K result
    [again] = await run("retry", turn=turn_of(four_k))
    variations = await run("variations", turn=turn_of(four_k))
    [edit] = await run("imagine", "add snow")
    [undone] = await run("undo", turn=turn_of(edit))

    for reply in (two_k, four_k, again, *variations, undone):
        assert not reply.error, reply.text
        quoted = reply.text.splitlines()[0]  # the caption's quote (the fake's own text follows it)
        assert "“a mountain" in quoted and "Re-render" not in quoted
    assert "“a mountain (upscaled to 4K)”" in four_k.text
    assert sent_text(fake_gemini) == "add snow"


async def test_an_upscale_to_the_size_it_has_or_smaller_is_refused_and_free(run, services, fake_gemini) -> None:
    await run("imagine", "a lake", size="4K")
    used, calls = await credits(services), len(fake_gemini.requests)
    [same] = await run("upscale", size="4K")
    [smaller] = await run("upscale", size="2K")

    assert same.error and same.text == "That image is already 4K; upscale only goes to a larger size."
    assert smaller.error and "already 4K" in smaller.text
    assert (await credits(services), len(fake_gemini.requests)) == (used, calls)


async def test_an_edit_after_an_upscale_goes_on_at_the_model_and_size_from_before_it(
    run, services, fake_gemini
) -> None:
    await run("imagine", "a tree", model=FLASH_25.id)  # Nano Banana: 1K only, 1 credit
    [big] = await run("upscale", size="2K")  # drawn by Nano Banana 2 at 2K
    [bigger] = await run("upscale", size="4K", turn=turn_of(big))
    [again] = await run("retry", turn=turn_of(bigger))  # another take of the 4K upscale
    assert not again.error, again.text
    before = await credits(services)
    [edit] = await run("imagine", "add a swing")

    assert not edit.error, edit.text
    assert await credits(services) - before == 1  # a 1K edit, not a 4K one
    last = fake_gemini.requests[-1]
    assert last.model == FLASH_25.id and "imageSize" not in last.body["generationConfig"].get("imageConfig", {})
    parts = last.body["contents"][-1]["parts"]
    assert any("inlineData" in p for p in parts)  # it builds on the upscaled picture, sent as a reference
    assert "1K" in edit.text.splitlines()[1]


@pytest.mark.parametrize("model", [FLASH_31, FLASH_25])  # Nano Banana draws only 1K: its upscale went to Nano Banana 2
async def test_an_edit_after_an_upscale_can_still_ask_for_the_large_size(run, services, fake_gemini, model) -> None:
    await run("imagine", "a tree", model=model.id)
    await run("upscale", size="2K")
    before = await credits(services)
    [edit] = await run("imagine", "add a swing", size="2K")

    assert not edit.error, edit.text
    assert await credits(services) - before == 2
    assert fake_gemini.requests[-1].model == FLASH_31.id


async def test_the_variations_button_works_when_the_limit_is_one(make_services, run) -> None:
    services = await make_services(max_variations=1)
    [first] = await run("imagine", "a pear", on=services)
    replies = await run("variations", on=services, turn=turn_of(first))  # a button sends no count

    assert [bool(r.images) for r in replies] == [True]
    session = await services.store.active_session(THREAD.key)
    assert session is not None and session.head_turn_id == turn_of(replies[0])
