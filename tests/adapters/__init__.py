"""Each platform adapter end to end, against its fake; shared helpers below."""

from __future__ import annotations

import asyncio

import pytest

from bot.adapter import Adapter
from bot.config import Settings
from bot.services import build_services


async def refusal_at_start(adapter: Adapter, settings: Settings, refused: type[Exception]) -> Exception:
    """What `adapter.run` raises at start with these settings (within 10 s), the services closed after it."""
    services = await build_services(settings)
    try:
        with pytest.raises(refused) as caught:
            await asyncio.wait_for(adapter.run(services), timeout=10)
    finally:
        await services.close()
    return caught.value
