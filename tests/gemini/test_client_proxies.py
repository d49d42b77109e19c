"""The Gemini client and the environment: HTTP(S)_PROXY and NO_PROXY are honoured, ~/.netrc is not read, and a
call hands nothing to a worker thread but the parsing of its answer."""

from __future__ import annotations

import asyncio
import base64
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bot.catalog import FLASH_31
from bot.gemini import Content, GeminiClient, ImageRequest, RetryPolicy
from bot.gemini.outcomes import ImagesDelivered
from tests.fakes.gemini import FakeGemini
from tests.fakes.proxy import ForwardProxy

FAST = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05, deadline=10.0, attempt_timeout=5.0)


async def one_call(fake: FakeGemini) -> ImagesDelivered:
    gemini = GeminiClient(api_key=fake.api_key, base_url=fake.base_url, policy=FAST)
    try:
        outcome = await gemini.generate(ImageRequest(FLASH_31.id, (Content.user("a pear"),)))
    finally:
        await gemini.aclose()
    assert isinstance(outcome, ImagesDelivered)
    return outcome


async def test_calls_go_through_the_proxy_the_environment_names(no_proxies, fake_gemini: FakeGemini) -> None:
    async with ForwardProxy() as proxy:
        no_proxies.setenv("HTTP_PROXY", proxy.url("alice:s3cret"))
        await one_call(fake_gemini)
        await one_call(fake_gemini)

    assert len(fake_gemini.requests) == 2 and all(r.status == 200 for r in fake_gemini.requests)
    assert len(proxy.requests) == 2  # one connection per client, each through the proxy
    seen = proxy.requests[0]
    assert seen.method == "POST"
    assert seen.target == f"{fake_gemini.base_url}/v1beta/models/{FLASH_31.id}:generateContent"
    assert seen.headers["proxy-authorization"] == "Basic " + base64.b64encode(b"alice:s3cret").decode()


async def test_no_proxy_exempts_the_api_host(no_proxies, fake_gemini: FakeGemini) -> None:
    async with ForwardProxy() as proxy:
        no_proxies.setenv("HTTP_PROXY", proxy.url())
        no_proxies.setenv("NO_PROXY", "localhost,127.0.0.1")
        await one_call(fake_gemini)
    assert proxy.requests == [] and len(fake_gemini.requests) == 1


async def test_netrc_credentials_are_never_sent(no_proxies, fake_gemini: FakeGemini, tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password not-for-gemini\n")
    netrc.chmod(0o600)
    no_proxies.setenv("NETRC", str(netrc))
    await one_call(fake_gemini)
    [sent] = fake_gemini.requests
    assert "authorization" not in sent.headers
    assert sent.headers["x-goog-api-key"] == fake_gemini.api_key


class RecordingExecutor(ThreadPoolExecutor):
    """The loop's default executor, recording the name of each function handed to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.names: list[str] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        # asyncio.to_thread hands over partial(context.run, func, *args); run_in_executor the function itself
        inner = fn.args[0] if isinstance(fn, functools.partial) and fn.args else fn
        if not getattr(inner, "__module__", "").startswith("tests."):  # the fake server shares this loop
            self.names.append(getattr(inner, "__name__", repr(inner)))
        return super().submit(fn, *args, **kwargs)


async def test_a_call_hands_only_its_answers_parsing_to_a_thread(no_proxies, fake_gemini: FakeGemini) -> None:
    """Each hand-off waits its turn on the event loop, which a burst keeps busy; aiohttp's trust_env made two more
    per request (the proxy lookup and a read of ~/.netrc)."""
    loop = asyncio.get_running_loop()
    executor = RecordingExecutor()
    loop.set_default_executor(executor)
    await one_call(fake_gemini)
    await one_call(fake_gemini)
    assert executor.names == ["parse_response", "parse_response"]
