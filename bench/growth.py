"""Section 5: one session growing to 20 turns, and the bot's memory over a database of 10,000 stored sessions."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from bench.inproc import InProcessBot
from bench.loop import wait_until
from bench.overhead import Turns
from bench.photos import unique_reference
from bench.procs import BotProcess, FakeGeminiProcess
from bench.stats import peak_rss_bytes, rss_bytes
from bench.worlds import DiscordWorld
from bot.catalog import DEFAULT_MODEL
from bot.store import open_store
from bot.store.base import TurnResult, TurnRow
from tests.fakes.gemini.photo import encode, render_photo, tag_unique


@dataclass(slots=True)
class SessionTurn:
    turn: int
    request_bytes: int
    overhead: float


async def grow_session(bot: InProcessBot, turns: Turns, *, count: int) -> list[SessionTurn]:
    """Turn 1 is an /imagine with the 1.4 MB photo; turns 2..count are plain messages in its thread."""
    world = bot.world
    channel = turns.next_channel
    first = await turns.imagine("a harbour at dawn", size="1K", photo=True)
    grown = [SessionTurn(1, turns.clock.request_bytes[-1], first.overhead)]
    thread = world.thread_of(channel)
    for k in range(2, count + 1):
        before = len(world.results)
        turns.clock.reset()
        sent = await world.say(thread, channel, f"turn {k}: add a small red boat")
        cost = await turns.posted(before, sent)
        grown.append(SessionTurn(k, turns.clock.request_bytes[-1], cost.overhead))
    return grown


SEED_WRITERS = 64  # sessions written at once: the store group-commits them (one image sync per group, not per image)


async def seed_sessions(db: Path, count: int) -> float:
    """`count` finished one-turn sessions written through the Store API, SEED_WRITERS at a time, as many users'
    turns would arrive; returns the seconds it took."""
    store = open_store(f"sqlite:///{db}")
    await store.open()
    thumb = encode(render_photo(48, 48, seed=3), "PNG")

    async def one(k: int) -> None:
        now = datetime.now(UTC)
        user = f"discord:{1000 + k % 500}"
        session = await store.get_or_create_session(thread_key=f"discord:1:2:{k}", user_key=user, now=now)
        ref = await store.put_blob(tag_unique(thumb, f"ref {k}"), "image/png")
        out = await store.put_blob(tag_unique(thumb, f"out {k}"), "image/png")
        turn = TurnRow(
            id=uuid.uuid4().hex,
            session_id=session.id,
            parent_id=None,
            kind="imagine",
            user_key=user,
            user_name=f"<@{1000 + k % 500}>",
            prompt=f"stored session {k}: a fox in the snow",
            model=DEFAULT_MODEL,
            aspect_ratio=None,
            image_size=None,
            request_json=_content("user", ref, text=f"stored session {k}"),
            created_at=now,
        )
        await store.insert_turn(turn)
        result = TurnResult("done", "ImagesDelivered", now, response_json=_content("model", out), credits=1)
        await store.finish_turn(turn.id, result)
        await store.set_head(session.id, turn.id)

    started = time.perf_counter()
    try:
        for first in range(0, count, SEED_WRITERS):
            await asyncio.gather(*(one(k) for k in range(first, min(first + SEED_WRITERS, count))))
    finally:
        await store.close()
    return time.perf_counter() - started


def _content(role: str, blob: str, *, text: str = "") -> str:
    parts: list[dict[str, str]] = [{"blob": blob, "mimeType": "image/png"}]
    if text:
        parts.append({"text": text})
    return json.dumps({"role": role, "parts": parts}, separators=(",", ":"))


@dataclass(slots=True)
class MemoryRun:
    sessions: int
    idle_rss: int = 0
    peak_rss: int = 0


async def serve_few(db: Path, sessions: int, gemini: FakeGeminiProcess, workdir: Path, *, turns: int) -> MemoryRun:
    """`bananabot run` on `db`: RSS once ready, then its peak while it serves `turns` 1.4 MB edits one by one."""
    run = MemoryRun(sessions)
    async with DiscordWorld(users=turns) as world:
        env = {
            "GEMINI_API_KEY": gemini.api_key,
            "GEMINI_BASE_URL": gemini.base_url,
            "BANANABOT_DATABASE_URL": f"sqlite:///{db}",
            **world.bot_env(),
        }
        bot = BotProcess(env, log=workdir / "bot.log")
        await bot.start()
        try:
            await world.wait_ready()
            run.idle_rss = rss_bytes(bot.pid)
            for i in range(turns):
                before = len(world.results)
                await world.imagine(i, f"a harbour at dawn #{i}", photo=unique_reference())
                if not await wait_until(partial(_more, world, before), timeout=60):
                    raise TimeoutError("the bot did not answer within 60 s")
            run.peak_rss = peak_rss_bytes(bot.pid)
        finally:
            await bot.stop()
    return run


def _more(world: DiscordWorld, before: int) -> bool:
    return len(world.results) > before
