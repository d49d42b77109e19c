"""Sections 1 and 2: N turns at once against `bananabot run`, with a cheap command every 0.25 s meanwhile."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.botmain import starts, window
from bench.loop import LagMonitor, wait_until
from bench.photos import unique_reference
from bench.procs import BotProcess, FakeGeminiProcess
from bench.sender import Sender
from bench.stats import cpu_seconds, machine_cpu_seconds, peak_rss_bytes, reset_peak
from bench.worlds import DiscordWorld, SlackWorld

PROBE_EVERY = 0.25
MAX_PROBES = 400


@dataclass(slots=True)
class Burst:
    platform: str
    n: int
    makespan: float = math.nan
    done: int = 0
    acks: list[float] = field(default_factory=list)
    probes: list[float | None] = field(default_factory=list)  # None: never answered
    peak_rss: int = 0
    bot_cpu: float = 0.0
    gemini_cpu: float = 0.0
    driver_cpu: float = 0.0
    inside: dict[str, list[float]] = field(default_factory=dict)  # bench/botmain.py samples taken during the burst
    driver_lag_max: float = 0.0
    machine_cpu: float = math.nan  # the whole machine's busy CPU from the burst's start until its last result


def bot_env(gemini: FakeGeminiProcess, db: Path) -> dict[str, str]:
    """What `bananabot run` gets for a burst (also printed in the notes)."""
    return {
        "GEMINI_API_KEY": gemini.api_key,
        "GEMINI_BASE_URL": gemini.base_url,
        "BANANABOT_DATABASE_URL": f"sqlite:///{db}",
        "BANANABOT_MAX_CONCURRENT_CALLS": "256",  # default 8 would queue a burst behind the model
    }


class Prober:
    """Sends the cheap command every PROBE_EVERY seconds until stopped; `send` returns a way to read its latency."""

    def __init__(self, send: Callable[[int], Awaitable[Callable[[], float | None]]]) -> None:
        self.send = send
        self.readers: list[Callable[[], float | None]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        for i in range(MAX_PROBES):
            self.readers.append(await self.send(i))
            await asyncio.sleep(PROBE_EVERY)

    async def stop(self) -> list[float | None]:
        if self._task is not None:
            self._task.cancel()
        await wait_until(lambda: all(read() is not None for read in self.readers), timeout=5)
        return [read() for read in self.readers]


@asynccontextmanager
async def measured(
    result: Burst,
    bot: BotProcess,
    gemini: FakeGeminiProcess,
    probe: Callable[[int], Awaitable[Callable[[], float | None]]],
) -> AsyncIterator[float]:
    """Around one burst: CPU of each side, the bot's peak RSS, the cheap-command probes and this loop's lag.
    Yields the burst's start (loop time)."""
    reset_peak(bot.pid)
    cpu = (cpu_seconds(bot.pid), cpu_seconds(gemini.pid), time.process_time())
    prober = Prober(probe)
    with LagMonitor() as lag:
        prober.start()
        yield asyncio.get_running_loop().time()
        result.probes = await prober.stop()
    result.peak_rss = peak_rss_bytes(bot.pid)
    result.bot_cpu, result.gemini_cpu = cpu_seconds(bot.pid) - cpu[0], cpu_seconds(gemini.pid) - cpu[1]
    result.driver_cpu = time.process_time() - cpu[2]
    result.driver_lag_max = max(lag.lags, default=0.0)


async def discord_burst(
    n: int, gemini: FakeGeminiProcess, workdir: Path, *, profile: Path | None = None, timers: bool = True
) -> Burst:
    result = Burst("Discord /imagine", n)
    async with DiscordWorld(users=n + 2) as world:
        bot = BotProcess(
            {**bot_env(gemini, workdir / f"discord-{n}.db"), **world.bot_env()},
            log=workdir / "bot.log",
            profile=profile,
            timers=timers,
        )
        await bot.start()
        try:
            await world.wait_ready()
            await world.imagine(n, "warm-up: a lighthouse", photo=unique_reference())
            await wait_until(lambda: world.results, timeout=60)

            async def probe(_: int) -> Callable[[], float | None]:
                sent = await world.command(n + 1, "quota")
                return lambda: world.answered(sent)

            photos = [unique_reference() for _ in range(n)]
            async with measured(result, bot, gemini, probe) as started:
                machine = machine_cpu_seconds()
                sent = await asyncio.gather(
                    *(world.imagine(i, f"make it dusk #{i}", photo=photos[i]) for i in range(n))
                )
                await wait_until(lambda: len(world.results) > n, timeout=60 + n)
                span = (started, asyncio.get_running_loop().time())
                result.machine_cpu = machine_cpu_seconds() - machine
            result.done = len(world.results) - 1
            if result.done >= n:
                result.makespan = world.results[n] - started
            result.acks = [s.ack_elapsed if s.ack_elapsed is not None else math.inf for s in sent]
        finally:
            await bot.stop()
        if bot.stats is not None and bot.stats.exists():
            result.inside = {
                **window(str(bot.stats), *span),
                "span": [span[1] - span[0]],
                "model call began (s into the burst)": starts(str(bot.stats), "stage:model call", *span),
                "turn row written from (s into the burst)": starts(str(bot.stats), "stage:store turn row", *span),
            }
    return result


async def slack_burst(
    n: int, gemini: FakeGeminiProcess, workdir: Path, *, profile: Path | None = None, timers: bool = True
) -> Burst:
    result = Burst("Slack mention", n)
    async with SlackWorld(users=n + 1 + MAX_PROBES) as world:
        bot = BotProcess(
            {**bot_env(gemini, workdir / f"slack-{n}.db"), **world.bot_env()},
            log=workdir / "bot.log",
            profile=profile,
            timers=timers,
        )
        await bot.start()
        world.events_url = f"http://127.0.0.1:{bot.port}/slack/events"
        try:
            await world.mention(n, "warm-up: a lighthouse", photo=unique_reference())
            await wait_until(lambda: world.uploads, timeout=60)

            async def probe(i: int) -> Callable[[], float | None]:
                user = world.users[n + 1 + i]
                sent, _ = await world.open_home(n + 1 + i)
                return lambda: world.home_views.set_at[user] - sent if user in world.home_views.set_at else None

            requests = [world.mention_request(i, f"make it dusk #{i}", photo=unique_reference()) for i in range(n)]
            async with Sender(requests) as sender, measured(result, bot, gemini, probe) as started:
                machine = machine_cpu_seconds()
                answers = asyncio.create_task(sender.fire())
                await wait_until(lambda: len(world.uploads) > n, timeout=60 + n)
                span = (started, asyncio.get_running_loop().time())
                result.machine_cpu = machine_cpu_seconds() - machine
                sent = await answers
            result.driver_cpu += sender.cpu
            result.done = len(world.uploads) - 1
            if result.done >= n:
                result.makespan = world.uploads.at[n] - started
            result.acks = [a.elapsed if a.status == 200 else math.inf for a in sent]
        finally:
            await bot.stop()
        if bot.stats is not None and bot.stats.exists():
            result.inside = {
                **window(str(bot.stats), *span),
                "span": [span[1] - span[0]],
                "model call began (s into the burst)": starts(str(bot.stats), "stage:model call", *span),
                "turn row written from (s into the burst)": starts(str(bot.stats), "stage:store turn row", *span),
            }
    return result
