"""Child processes: the fake Gemini in benchmark mode, and `bananabot run` (python -m bot run)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
_OURS = ("BANANABOT_", "GEMINI_", "DISCORD_", "SLACK_")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# The fake stands in for Google's servers, so its memory is not what is measured: glibc keeps what it freed for
# reuse (no 1-3 MB block goes back to the system and faults in again on the next request), and the fake touches
# that much heap before the first burst. Without this, the first 200-turn burst paid ~2-3 CPU-s of page faults
# in the fake (4.6-5.8 CPU-s instead of ~2), on a VM where page faults are dear.
FAKE_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(4 << 30), "MALLOC_ARENA_MAX": "1"}
FAKE_PREFAULT_MIB = 1024  # about what a 200-turn burst has in flight in the fake


class FakeGeminiProcess:
    """`python -m tests.fakes.gemini --bench` in its own process, so its work never shares the bot's CPU slice."""

    def __init__(self, *, latency: float) -> None:
        self.latency = latency
        self.process: asyncio.subprocess.Process | None = None
        self.base_url = ""
        self.api_key = "test-key"

    async def __aenter__(self) -> FakeGeminiProcess:
        args = ["-m", "tests.fakes.gemini", "--bench", "--latency", str(self.latency), "--key", self.api_key,
                "--prefault", str(FAKE_PREFAULT_MIB)]  # fmt: skip
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE, env={**os.environ, **FAKE_MALLOC}
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout=30)
        self.base_url = line.decode().strip()
        if not self.base_url.startswith("http"):
            raise RuntimeError(f"the fake Gemini did not start: {line!r}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await stop(self.process)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


class BotProcess:
    """One `bananabot run` with the given environment; healthy once /healthz answers 200."""

    def __init__(self, env: dict[str, str], *, log: Path, profile: Path | None = None, timers: bool = True) -> None:
        self.port = free_port()
        self.stats = log.with_name(f"stats-{self.port}.json") if timers else None
        self.profile = profile
        self.spy: asyncio.subprocess.Process | None = None
        base = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
        self.env = {**base, "BANANABOT_HTTP_PORT": str(self.port), **env}
        if self.stats is not None:
            self.env["BENCH_BOT_STATS"] = str(self.stats)
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def command(self) -> list[str]:
        """`bananabot run` itself, or the same run with the bench's timers (bench/botmain.py)."""
        return ["-m", "bench.botmain"] if self.stats is not None else ["-m", "bot", "run"]

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, *self.command, env=self.env, cwd=ROOT, stdout=log, stderr=log
            )
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as response:
                        if response.status == 200:
                            await self._start_profiler()
                            return
                except aiohttp.ClientError:
                    pass
                if self.process.returncode is not None:
                    raise RuntimeError(f"bananabot exited: {self.log.read_text()[-2000:]}")
                await asyncio.sleep(0.05)
        raise TimeoutError(f"bananabot never became healthy: {self.log.read_text()[-2000:]}")

    async def _start_profiler(self) -> None:
        """py-spy (if installed) samples the bot until it stops: collapsed stacks for flame graphs or grep."""
        if self.profile is None:
            return
        spy = Path(sys.executable).with_name("py-spy")
        args = ["record", "--pid", str(self.pid), "--format", "raw", "--rate", "100", "--threads"]
        self.spy = await asyncio.create_subprocess_exec(
            spy, *args, "-o", str(self.profile), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )

    async def stop(self) -> None:
        if self.spy is not None:
            self.spy.send_signal(signal.SIGINT)
            await asyncio.wait_for(self.spy.wait(), timeout=30)
        await stop(self.process)


async def stop(process: asyncio.subprocess.Process | None) -> None:
    if process is None or process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), timeout=30)
    except TimeoutError:
        process.kill()
        await process.wait()
