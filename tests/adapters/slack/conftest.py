"""Run the real Slack adapter (bolt) against the fake Slack and the fake Gemini, in HTTP or Socket Mode."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from adapters.slack import ADAPTER
from bot.services import Services, build_services
from tests.core.conftest import make_settings
from tests.fakes.gemini import FakeGemini
from tests.fakes.slack import FakeSlack


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SlackBot:
    """One `bananabot` Slack adapter process-in-a-task; restart() keeps the database."""

    def __init__(self, fake: FakeSlack, gemini: FakeGemini, tmp_path: Path, mode: str, overrides: dict[str, Any]):
        self.fake, self.gemini, self.tmp_path, self.mode = fake, gemini, tmp_path, mode
        self.overrides = overrides
        self.port = free_port()
        self.services: Services | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    async def start(self) -> None:
        values: dict[str, Any] = {
            "slack_bot_token": self.fake.bot_token,
            "slack_api_url": self.fake.api_url,
            "slack_file_hosts": urlsplit(self.fake.base_url).netloc,
            "http_port": self.port,
            **self.overrides,
        }
        if self.mode == "socket":
            values["slack_app_token"] = self.fake.app_token
        else:
            values["slack_signing_secret"] = self.fake.signing_secret
        self.services = await build_services(make_settings(self.gemini, self.tmp_path, **values))
        connects = self.fake.socket_connects
        self.task = asyncio.create_task(ADAPTER.run(self.services))
        if self.mode == "socket":
            await self.fake.wait_socket(timeout=10, more_than=connects)
        else:
            await self._wait_for_port()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        if self.services is not None:
            await self.services.close()
            self.services = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def deliver(self, payload: dict[str, Any], **options: Any) -> Any:
        """Deliver like Slack does in this mode; returns the HTTP Delivery or the socket Ack."""
        if self.mode == "http":
            return await self.fake.deliver_http(self.events_url, payload, **options)
        kind = "events_api" if "event" in payload else "slash_commands" if "command" in payload else "interactive"
        retry = options.get("retry_num") or 0
        envelope = await self.fake.deliver_socket(kind, payload, retry_attempt=retry)
        return await self.fake.wait_ack(envelope, timeout=5)

    async def _wait_for_port(self) -> None:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return
        raise TimeoutError("the Slack adapter never listened")


@pytest.fixture(params=["http", "socket"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_slack_bot(fake_slack: FakeSlack, fake_gemini: FakeGemini, tmp_path: Path, mode: str):
    bots: list[SlackBot] = []

    async def factory(**overrides: Any) -> SlackBot:
        bot = SlackBot(fake_slack, fake_gemini, tmp_path, mode, overrides)
        await bot.start()
        bots.append(bot)
        return bot

    yield factory
    for bot in bots:
        await bot.stop()


@pytest.fixture
async def slack_bot(make_slack_bot) -> AsyncIterator[SlackBot]:
    yield await make_slack_bot()
