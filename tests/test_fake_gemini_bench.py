"""The fake Gemini's benchmark mode: the official SDK gets photo-like 1–2 MB PNGs, byte-unique, with the work timed."""

from __future__ import annotations

import io
import time

import httpx
from google import genai
from google.genai import types
from PIL import Image

from tests.fakes.gemini import FakeGemini

FLASH = "gemini-3.1-flash-image-preview"


async def test_bench_mode_serves_realistic_unique_pngs() -> None:
    async with FakeGemini(bench=True) as fake:
        client = genai.Client(api_key=fake.api_key, http_options=types.HttpOptions(base_url=fake.base_url))
        images = []
        for _ in range(2):
            response = await client.aio.models.generate_content(model=FLASH, contents="a lighthouse at dusk")
            [part] = [p for p in response.candidates[0].content.parts if p.inline_data]
            images.append(part.inline_data.data)
        assert all(1_000_000 <= len(data) <= 2_500_000 for data in images)
        assert images[0] != images[1]
        picture = Image.open(io.BytesIO(images[0]))
        assert picture.format == "PNG" and picture.size == (1024, 1024)
        assert len(picture.convert("L").resize((64, 64)).getcolors(4096) or ()) > 100  # not flat colour
        assert fake.requests[0].body is None and fake.requests[0].status == 200

        async with httpx.AsyncClient() as http:
            raw = await http.post(
                f"{fake.base_url}/v1beta/models/{FLASH}:generateContent",
                headers={"x-goog-api-key": fake.api_key},
                json={"contents": [{"role": "user", "parts": [{"text": "a fox"}]}]},
            )
        assert raw.status_code == 200 and float(raw.headers["x-fake-server-seconds"]) < 5


async def test_the_answer_is_made_during_the_latency_not_after_it() -> None:
    # The first 1K answer renders the pool (about a second of work): it must overlap the latency, else a burst
    # measures the fake's own queue. Errors keep the latency too.
    async with FakeGemini(bench=True, latency=1.0) as fake, httpx.AsyncClient(timeout=30) as http:
        url = f"{fake.base_url}/v1beta/models/{FLASH}:generateContent"
        started = time.monotonic()
        raw = await http.post(url, headers={"x-goog-api-key": fake.api_key}, json=_PROMPT)
        elapsed = time.monotonic() - started
        worked = float(raw.headers["x-fake-server-seconds"])
        assert raw.status_code == 200 and worked > 0.3
        assert fake.latency <= elapsed < max(fake.latency, worked) + 0.3

        started = time.monotonic()
        refused = await http.post(url, headers={"x-goog-api-key": "wrong"}, json=_PROMPT)
        assert refused.status_code == 400 and time.monotonic() - started >= fake.latency

        sdk = genai.Client(api_key=fake.api_key, http_options=types.HttpOptions(base_url=fake.base_url))
        started = time.monotonic()
        chunks = [c async for c in await sdk.aio.models.generate_content_stream(model=FLASH, contents="a fox")]
        assert any(p.inline_data for c in chunks for p in c.candidates[0].content.parts)
        assert time.monotonic() - started >= fake.latency  # a stream's first byte waits too


_PROMPT = {"contents": [{"role": "user", "parts": [{"text": "a fox"}]}]}
