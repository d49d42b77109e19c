"""The bench's timers reach into the running bot: they must keep working when the bot's insides change."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import bench.botmain
from bench.phases import PhaseClock
from bot.catalog import FLASH_31
from bot.gemini import Content, GeminiClient, ImageRequest
from bot.store.sqlite import SqliteStore
from tests.fakes.gemini import FakeGemini


class Ledger:
    async def reserve(self) -> None:
        return None


async def _services(fake: FakeGemini) -> Any:
    store = SqliteStore(":memory:")
    await store.open()
    gemini = GeminiClient(api_key=fake.api_key, base_url=fake.base_url)
    return SimpleNamespace(store=store, gemini=gemini, ledger=Ledger())


async def test_the_phase_clock_reads_each_body_size_and_the_fakes_own_work() -> None:
    async with FakeGemini(bench=True) as fake:
        services = await _services(fake)
        clock = PhaseClock()
        try:
            with clock.installed(services):
                await services.gemini.generate(ImageRequest(FLASH_31.id, (Content.user("a lighthouse"),)))
            await services.gemini.generate(ImageRequest(FLASH_31.id, (Content.user("not timed"),)))
        finally:
            await services.gemini.aclose()
            await services.store.close()
    assert clock.request_bytes == [int(fake.requests[0].headers["content-length"])]
    assert clock.fake_server > 0  # read from the answer's X-Fake-Server-Seconds
    assert clock.spent["model client"] > clock.fake_server  # the call took at least the fake's work


async def test_the_bot_timers_time_the_model_call_and_its_answer_headers() -> None:
    bench.botmain.SAMPLES.clear()
    async with FakeGemini(bench=True) as fake:
        services = await _services(fake)
        try:
            bench.botmain._instrument(services)
            await services.gemini.generate(ImageRequest(FLASH_31.id, (Content.user("a lighthouse"),)))
        finally:
            await services.gemini.aclose()
            await services.store.close()
    samples = bench.botmain.SAMPLES
    assert len(samples["stage:request sent → answer headers"]) == 1
    assert len(samples["stage:model call"]) == 1
    headers, call = samples["stage:request sent → answer headers"][0][1], samples["stage:model call"][0][1]
    assert 0 < headers <= call
