"""Two real `bananabot run` processes on one Postgres schema, with the fake Slack (HTTP mode) and fake Gemini."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from bot.store import PostgresStore
from tests.adapters.slack.conftest import free_port
from tests.fakes.gemini import FakeGemini
from tests.fakes.slack import FakeSlack
from tests.store.conftest import POSTGRES_URL, fresh_schema


class Replica:
    """One `bananabot run` process; its stderr is kept for the no-secret-in-logs check."""

    def __init__(self, name: str, env: dict[str, str], cwd: Path) -> None:
        self.name, self.env, self.cwd = name, env, cwd
        self.port = int(env["BANANABOT_HTTP_PORT"])
        self.process: asyncio.subprocess.Process | None = None
        self.log = cwd / f"{name}.log"

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", env=self.env, cwd=self.cwd, stdout=log, stderr=log
            )
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if self.process.returncode is not None:
                    raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
                await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.name} never became healthy: {self.log.read_text()[-2000:]}")

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout=20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with fresh_schema() as name:
        yield name


@pytest.fixture
async def replicas(fake_slack: FakeSlack, fake_gemini: FakeGemini, schema: str, tmp_path: Path):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BANANABOT_", "GEMINI_", "DISCORD_", "SLACK_"))}
    common = {
        **base,
        "GEMINI_API_KEY": fake_gemini.api_key,
        "GEMINI_BASE_URL": fake_gemini.base_url,
        "SLACK_BOT_TOKEN": fake_slack.bot_token,
        "SLACK_SIGNING_SECRET": fake_slack.signing_secret,
        "SLACK_API_URL": fake_slack.api_url,
        "BANANABOT_SLACK_FILE_HOSTS": urlsplit(fake_slack.base_url).netloc,
        "BANANABOT_DATABASE_URL": f"{POSTGRES_URL}?schema={schema}",
        "BANANABOT_MAINTENANCE_SECONDS": "0.5",
        "BANANABOT_RESERVATION_TTL_SECONDS": "5",
        "BANANABOT_USER_MAX_IN_FLIGHT": "1000",
        "BANANABOT_LOG_FORMAT": "json",
    }
    started: list[Replica] = []

    async def start(**overrides: str) -> tuple[Replica, Replica]:
        pair = []
        for name in ("a", "b"):
            env = {**common, "BANANABOT_HTTP_PORT": str(free_port()), **overrides}
            replica = Replica(name, env, tmp_path)
            await replica.start()
            started.append(replica)
            pair.append(replica)
        return pair[0], pair[1]

    yield start
    await asyncio.gather(*(replica.stop() for replica in started))


@pytest.fixture
async def store(schema: str) -> AsyncIterator[PostgresStore]:
    opened = PostgresStore(POSTGRES_URL, schema=schema)
    await opened.open()
    yield opened
    await opened.close()
