"""The Discord adapter in this process (for the phase timers), against a DiscordWorld and the fake Gemini process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from adapters.discord import ADAPTER
from bench.loop import wait_until
from bench.procs import FakeGeminiProcess
from bench.worlds import DiscordWorld
from bot.config import Settings
from bot.services import Services, build_services


class InProcessBot:
    """`bananabot run` minus the CLI: Services plus the Discord adapter as a task of this event loop."""

    def __init__(self, world: DiscordWorld, gemini: FakeGeminiProcess, db: Path, **overrides: Any) -> None:
        self.world = world
        values: dict[str, Any] = {
            "gemini_api_key": gemini.api_key,
            "gemini_base_url": gemini.base_url,
            "database_url": f"sqlite:///{db}",
            "discord_token": world.fake.token,
            "discord_api_url": world.fake.api_url,
            "discord_gateway_url": world.fake.gateway_url,
            "discord_guild_ids": world.guild,
            "max_concurrent_calls": 256,
            "user_daily_credits": 10_000,
            "user_monthly_credits": 100_000,
            **overrides,
        }
        self.settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        self._services: Services | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def services(self) -> Services:
        assert self._services is not None
        return self._services

    async def __aenter__(self) -> InProcessBot:
        self._services = await build_services(self.settings)
        identified = len(self.world.fake.gateway.identifies)
        self._task = asyncio.create_task(ADAPTER.run(self._services))
        await self.world.wait_ready(identified)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._services is not None:
            await self._services.close(drain_timeout=5)

    async def next_result(self, before: int, *, timeout: float = 120) -> float:
        """Wait until the world holds more than `before` result images; the loop time the last one landed."""
        if not await wait_until(lambda: len(self.world.results) > before, timeout=timeout, step=0.002):
            raise TimeoutError(f"no result image within {timeout} s")
        return self.world.results[before]
