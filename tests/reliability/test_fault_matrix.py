"""Every adapter × every fault the fake Gemini plays: the right message, exact credits, a consistent session."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from bot.catalog import FLASH_31
from tests.fakes.gemini import DEFAULT_MODELS, FakeGemini, Fault
from tests.reliability.drivers import SETTINGS, ConsoleDriver, DiscordDriver, Driver, SlackDriver


@dataclass(frozen=True)
class Case:
    name: str
    arrange: Callable[[FakeGemini], None]
    words: str | None  # what the user must be told; None: the image arrives
    delivered: bool = False


def enqueue(fault: Fault, times: int = 10) -> Callable[[FakeGemini], None]:
    return lambda fake: fake.enqueue(fault, times=times, retry_delay="0.01s")


def rotate_key(fake: FakeGemini) -> None:
    fake.api_key = "a-rotated-key-the-bot-does-not-have"


def drop_model(fake: FakeGemini) -> None:
    fake.models = {name: spec for name, spec in DEFAULT_MODELS.items() if not name.startswith(FLASH_31.id)}


CASES = [
    Case("429_then_ok", enqueue(Fault.RATE_LIMIT, times=1), None, delivered=True),
    Case("429_exhausted", enqueue(Fault.RATE_LIMIT), "rate-limiting"),
    Case("500", enqueue(Fault.INTERNAL), "internal error"),
    Case("503", enqueue(Fault.OVERLOADED), "overloaded"),
    Case("504", enqueue(Fault.DEADLINE), "didn't answer in time"),
    Case("hang", enqueue(Fault.HANG), "didn't answer in time"),
    Case("reset", enqueue(Fault.RESET), "couldn't reach Gemini"),
    Case("malformed_json", enqueue(Fault.MALFORMED_JSON), "couldn't read"),
    Case("image_safety", enqueue(Fault.IMAGE_SAFETY, 1), "safety filter"),
    Case("prohibited", enqueue(Fault.IMAGE_PROHIBITED_CONTENT, 1), "prohibited content"),
    Case("no_image", enqueue(Fault.NO_IMAGE, 1), "without an image"),
    Case("text_only", enqueue(Fault.TEXT_ONLY, 1), "without an image"),
    Case("blocked_prompt", enqueue(Fault.BLOCKED_PROMPT, 1), "was blocked by Gemini"),
    Case("invalid_key", rotate_key, "API key was refused"),
    Case("unknown_model", drop_model, "doesn't exist"),
]


@pytest.fixture
def mode() -> str:
    return "http"  # the Slack harness is parametrized by mode; the matrix uses HTTP mode


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_console(case: Case, make_services, fake_gemini: FakeGemini, caplog) -> None:
    await check(ConsoleDriver(await make_services(**SETTINGS)), fake_gemini, case, caplog)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_discord(case: Case, make_discord_bot, fake_discord_raw, world, fake_gemini: FakeGemini, caplog) -> None:
    bot = await make_discord_bot(**SETTINGS)
    await check(DiscordDriver(bot, fake_discord_raw, world), fake_gemini, case, caplog)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_slack(case: Case, make_slack_bot, fake_slack, fake_gemini: FakeGemini, caplog) -> None:
    bot = await make_slack_bot(**SETTINGS)
    await check(SlackDriver(bot, fake_slack), fake_gemini, case, caplog)


async def check(driver: Driver, fake_gemini: FakeGemini, case: Case, caplog) -> None:
    caplog.set_level(logging.WARNING)
    await driver.first_image("a lighthouse on a cliff")
    assert driver.images() == 1
    before = driver.said()

    case.arrange(fake_gemini)
    await driver.turn("paint it red")

    told = driver.said()[len(before) :] if driver.said().startswith(before) else driver.said()
    store, now = driver.services.store, driver.services.now()
    usage = await store.usage(driver.user_key, now=now)
    [session] = await store.recent_sessions(driver.user_key, limit=1)
    head = await store.get_turn(session.head_turn_id or "")
    assert head is not None and head.status == "done"
    if case.delivered:
        assert driver.images() == 2 and usage.day_credits == 2  # charged once, for the one image
        assert head.prompt == "paint it red"
    else:
        assert case.words is not None and case.words in told, told
        assert "charged" in told
        assert driver.images() == 1 and usage.day_credits == 1  # the failure cost nothing
        assert head.prompt == "a lighthouse on a cliff"  # the session did not move
    assert await store.held_owners() == []
    assert driver.services.charges == {}
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
