"""Section 6, scale-out: the Slack burst against `bananabot run` processes sharing one Postgres schema, each
event sent to the next process in turn (as a load balancer in front of HTTP-mode replicas would). The Postgres
server's CPU is measured too: with images stored in the database it is part of each turn's cost."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from pathlib import Path

from bench.burst import bot_env
from bench.ledger import postgres_schema
from bench.loop import wait_until
from bench.photos import unique_reference
from bench.procs import BotProcess, FakeGeminiProcess
from bench.sender import Sender
from bench.stats import cpu_seconds, peak_rss_bytes, postgres_server_cpu_seconds, reset_peak
from bench.worlds import SlackWorld


@dataclass(slots=True)
class ScaleOut:
    replicas: int
    n: int
    makespan: float = math.nan
    done: int = 0
    bot_cpu: list[float] = field(default_factory=list)  # per process
    peak_rss: list[int] = field(default_factory=list)  # per process
    postgres_cpu: float | None = None
    acks: list[float] = field(default_factory=list)


async def slack_replicas(n: int, gemini: FakeGeminiProcess, workdir: Path, *, replicas: int) -> ScaleOut:
    result = ScaleOut(replicas, n)
    async with postgres_schema() as database, SlackWorld(users=n + replicas) as world:
        env = {**bot_env(gemini, workdir / "unused.db"), "BANANABOT_DATABASE_URL": database, **world.bot_env()}
        bots = [BotProcess(env, log=workdir / f"replica-{r}.log", timers=False) for r in range(replicas)]
        try:
            for bot in bots:  # one after the other: the first one creates the schema
                await bot.start()
            urls = [f"http://127.0.0.1:{bot.port}/slack/events" for bot in bots]
            for r, url in enumerate(urls):
                await world.mention(n + r, "warm-up: a lighthouse", photo=unique_reference(), url=url)
            await wait_until(lambda: len(world.uploads) >= replicas, timeout=60)
            requests = [
                world.mention_request(i, f"make it dusk #{i}", photo=unique_reference(), url=urls[i % replicas])
                for i in range(n)
            ]
            async with Sender(requests) as sender:
                for bot in bots:
                    reset_peak(bot.pid)
                before = [cpu_seconds(bot.pid) for bot in bots]
                server = postgres_server_cpu_seconds()
                started = asyncio.get_running_loop().time()
                answers = asyncio.create_task(sender.fire())
                await wait_until(lambda: len(world.uploads) >= n + replicas, timeout=60 + n)
                result.acks = [a.elapsed if a.status == 200 else math.inf for a in await answers]
            result.done = len(world.uploads) - replicas
            if result.done >= n:
                result.makespan = world.uploads.at[n + replicas - 1] - started
            result.bot_cpu = [cpu_seconds(bot.pid) - cpu for bot, cpu in zip(bots, before, strict=True)]
            result.peak_rss = [peak_rss_bytes(bot.pid) for bot in bots]
        finally:
            await asyncio.gather(*(bot.stop() for bot in bots), return_exceptions=True)
        after = postgres_server_cpu_seconds()  # backends have exited: their time is the postmaster's now
        if server is not None and after is not None:
            result.postgres_cpu = after - server
    return result
