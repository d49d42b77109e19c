"""The Gemini image client: sharded httpx pools, retries, typed outcomes, the key kept out of sight."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

import httpx

from bot.gemini.errors import (
    GeminiError,
    MalformedResponseError,
    TimedOutError,
    UnreachableError,
    classify,
    redact,
)
from bot.gemini.outcomes import Outcome
from bot.gemini.request import ImageRequest
from bot.gemini.response import parse_response
from bot.gemini.retry import RetryPolicy
from bot.http_pool import ShardedPool

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
Sleep = Callable[[float], Awaitable[None]]


class GeminiClient:
    """Calls `generateContent` for image models.

    Args:
        api_key: Sent as `x-goog-api-key`; never logged, never part of an error.
        base_url: API root (`GEMINI_BASE_URL`), with or without a trailing `/v1beta`.
        policy: Retry and timeout policy.
        sleep: Waits between retries (tests pass a recording one).
        rng: Jitter source.
        max_connections: Connections in all, shared by the pool's shards.
        receive_at_once: Responses read and parsed at the same time. An answer is ~2.7 MB of JSON and ~9 MB while
            parsed; the rest wait unread in their sockets, so a burst of answers can't pile up in memory.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        max_connections: int = 64,
        receive_at_once: int = 4,
    ) -> None:
        self._key = api_key
        root = base_url.rstrip("/")
        self._root = root if root.endswith("/v1beta") else f"{root}/v1beta"
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._receiving = asyncio.Semaphore(receive_at_once)
        self._pool = ShardedPool(
            max_connections=max_connections,
            headers={"user-agent": "bananabot/0.1", "content-type": "application/json"},
        )

    def __repr__(self) -> str:
        return f"GeminiClient(root={self._root!r})"

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def generate(self, request: ImageRequest) -> Outcome:
        """Run one request to a typed outcome.

        Raises:
            UnsupportedOptionError: the model can't do what was asked (nothing was sent).
            GeminiError: no usable answer after the retries the policy allows.
        """
        spec = request.validate()
        body = request.body()
        headers = {"x-goog-api-key": self._key, "content-length": str(body.length)}
        url = f"{self._root}/models/{spec.id}:generateContent"
        policy = self.policy
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            error: GeminiError
            remaining = policy.deadline - (time.monotonic() - started)
            try:
                async with self._pool.lease() as http, asyncio.timeout(max(remaining, 0.001)):
                    # asyncio.timeout: httpx's read timeout is per chunk, the deadline is for the whole attempt
                    sent = http.build_request(
                        "POST",
                        url,
                        content=body.stream(),
                        headers=headers,
                        timeout=httpx.Timeout(
                            max(min(policy.attempt_timeout, remaining), 0.001),
                            connect=min(policy.connect_timeout, max(remaining, 0.001)),
                        ),
                    )
                    response = await http.send(sent, stream=True)
                    try:
                        async with self._receiving:  # answers wait in their sockets, not in memory
                            raw = b"".join([chunk async for chunk in response.aiter_bytes()])
                            if response.status_code == 200:
                                outcome = await asyncio.to_thread(
                                    parse_response, raw, spec=spec, size=request.size, attempts=attempt
                                )
                            else:
                                outcome, error = None, classify(response.status_code, raw, secret=self._key)
                            del raw  # before the next answer is let in
                    finally:
                        await response.aclose()
                if outcome is not None:
                    return outcome
            except MalformedResponseError as exc:
                error = exc
            except (httpx.TimeoutException, TimeoutError) as exc:  # TimeoutError: the deadline cut the attempt
                error = TimedOutError(f"{type(exc).__name__} after {time.monotonic() - started:.1f}s")
            except httpx.HTTPError as exc:
                error = UnreachableError(redact(f"{type(exc).__name__}: {exc}", self._key))
            error.attempts = attempt
            delay = self._next_delay(error, attempt, started)
            if delay is None:
                log.warning(
                    "gemini %s failed after %d attempt(s): %s %s", spec.id, attempt, type(error).__name__, error.detail
                )
                raise error
            log.info("gemini %s attempt %d: %s; retrying in %.2fs", spec.id, attempt, type(error).__name__, delay)
            await self._sleep(delay)

    def _next_delay(self, error: GeminiError, attempt: int, started: float) -> float | None:
        policy = self.policy
        if not error.retryable or attempt >= policy.max_attempts:
            return None
        delay = policy.backoff(attempt, self._rng, at_least=error.retry_after)
        if time.monotonic() - started + delay >= policy.deadline:
            return None
        return delay
