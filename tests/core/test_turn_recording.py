"""A turn's own records are written while the model works: the call never waits for the image writer, and a turn
whose answer comes back before its row is written still ends done or failed, never pending."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.store.sqlite import images_path
from tests.core.conftest import ALICE, NOON, png_bytes
from tests.fakes.chat import BytesImage
from tests.fakes.gemini import FakeGemini, Fault


@contextmanager
def images_file_locked(tmp_path: Path) -> Iterator[None]:
    """Another connection holds the images file's write lock, as a second process or a slow disk would: the bot's
    image writes wait (busy_timeout) until it lets go."""
    path = images_path(tmp_path / "bananabot.db")
    assert path is not None and path.exists()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def turn_statuses(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "bananabot.db") as db:
        return [status for (status,) in db.execute("SELECT status FROM turns ORDER BY created_at")]


async def until(check, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.01)


async def test_the_model_is_called_while_the_users_image_waits_for_the_writer(
    run, services, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    with images_file_locked(tmp_path):
        turn = asyncio.create_task(run("imagine", "make it dusk", images=(BytesImage(png_bytes()),)))
        await until(lambda: len(fake_gemini.requests) == 1)  # the call went out with the image not yet stored
        assert turn_statuses(tmp_path) == []
    [reply] = await turn

    assert not reply.error, reply.text
    assert turn_statuses(tmp_path) == ["done"]
    assert (await services.store.usage(ALICE.key, now=NOON)).day_credits == 1
    [follow] = await run("imagine", "now at night")  # the stored reference went into the session's history
    assert not follow.error, follow.text
    first_user_parts = fake_gemini.requests[1].body["contents"][0]["parts"]
    assert any("inlineData" in part for part in first_user_parts)


@pytest.mark.parametrize("fault", [Fault.IMAGE_SAFETY, Fault.RATE_LIMIT_DAILY], ids=lambda f: f.value)
async def test_an_answer_back_before_the_row_is_written_still_ends_the_turn_failed(
    run, services, fake_gemini: FakeGemini, tmp_path: Path, fault: Fault
) -> None:
    fake_gemini.enqueue(fault)
    with images_file_locked(tmp_path):
        turn = asyncio.create_task(run("imagine", "a storm", images=(BytesImage(png_bytes()),)))
        await until(lambda: fake_gemini.requests and fake_gemini.requests[-1].status is not None)
        await asyncio.sleep(0.1)  # the answer is in; the row still waits for the images file
        assert not turn.done()
    [reply] = await turn

    assert reply.error
    assert turn_statuses(tmp_path) == ["failed"]  # marked once its row landed, not left pending
    assert (await services.store.usage(ALICE.key, now=NOON)).day_credits == 0


async def test_a_turn_cancelled_while_its_row_waits_is_still_marked_failed(
    run, services, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    fake_gemini.latency = 5.0
    with images_file_locked(tmp_path):
        turn = asyncio.create_task(run("imagine", "a kite", images=(BytesImage(png_bytes()),)))
        await until(lambda: len(fake_gemini.requests) == 1)
        turn.cancel()
        await asyncio.sleep(0.1)
    await asyncio.gather(turn, return_exceptions=True)

    assert turn_statuses(tmp_path) == ["failed"]
    assert (await services.store.usage(ALICE.key, now=NOON)).day_credits == 0
