"""pytest plugin: `fake_discord`, a started FakeDiscord with discord.py pointed at it (enable with `pytest_plugins`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from .client_setup import point_discord_py_at
from .server import FakeDiscord


@pytest_asyncio.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        with point_discord_py_at(fake.api_url, fake.gateway_url):
            yield fake
