"""pytest plugin: `fake_gemini`, a started FakeGemini per test (enable with `pytest_plugins`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from .server import FakeGemini


@pytest_asyncio.fixture
async def fake_gemini() -> AsyncIterator[FakeGemini]:
    async with FakeGemini() as fake:
        yield fake
