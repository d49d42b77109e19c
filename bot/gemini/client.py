"""The Gemini image client: one aiohttp session, retries, typed outcomes, the key kept out of sight."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp

from bot.gemini.body import StreamedBody
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
from bot.proxies import DIRECT, EnvProxies, Route

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
Sleep = Callable[[float], Awaitable[None]]
# Python before 3.12.8 (and 3.13.0) can leak TLS transports aborted mid-answer unless aiohttp cleans them up.
_CLEANUP_CLOSED = sys.version_info < (3, 12, 8) or (3, 13, 0) <= sys.version_info < (3, 13, 1)


class GeminiClient:
    """Calls `generateContent` for image models.

    HTTP is aiohttp's: sending a 1.9 MB body and reading a 2.7 MB answer cost ~3.5 ms of CPU per call, where httpx
    (anyio, h11, 64 KiB reads) took ~15 ms (bench). Redirects are never followed: the key travels in a header.
    HTTPS_PROXY and NO_PROXY apply, read once (`bot/proxies.py`); ~/.netrc does not.
    Each attempt is bounded by the policy's attempt timeout per step (connecting or waiting for a connection, each
    piece of the body sent, each read of the answer) and by the deadline as a whole.

    Args:
        api_key: Sent as `x-goog-api-key`; never logged, never part of an error.
        base_url: API root (`GEMINI_BASE_URL`), with or without a trailing `/v1beta`.
        policy: Retry and timeout policy.
        sleep: Waits between retries (tests pass a recording one).
        rng: Jitter source.
        max_connections: Connections open at once; calls beyond them wait for one.
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
        self._key = api_key  # one line: Settings trims every secret and refuses control characters
        root = base_url.rstrip("/")
        self._root = root if root.endswith("/v1beta") else f"{root}/v1beta"
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._receiving = asyncio.Semaphore(receive_at_once)
        self._max_connections = max_connections
        self._http: aiohttp.ClientSession | None = None  # made on first use, inside the running loop
        self._route: Route = DIRECT  # HTTPS_PROXY / NO_PROXY for the API root, read with the session
        self._closed = False

    def __repr__(self) -> str:
        return f"GeminiClient(root={self._root!r})"

    def _session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("GeminiClient is closed")
        if self._http is None:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, enable_cleanup_closed=_CLEANUP_CLOSED),
                headers={"user-agent": "bananabot/0.1", "content-type": "application/json"},
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._route = EnvProxies().route(self._root)
        return self._http

    async def aclose(self) -> None:
        self._closed = True
        if self._http is not None:
            await self._http.close()
            self._http = None

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
        http = self._session()
        started = time.monotonic()
        attempt = 0
        lost = 0  # attempts sent whole and never answered: each may have been billed
        while True:
            attempt += 1
            error: GeminiError
            remaining = max(policy.deadline - (time.monotonic() - started), 0.001)
            step = min(policy.attempt_timeout, remaining)
            timeout = aiohttp.ClientTimeout(
                total=None, connect=step, sock_connect=min(policy.connect_timeout, remaining), sock_read=step
            )
            try:
                sent: list[bool] = []  # one True once the whole body is out: a timeout after that was unanswered
                async with asyncio.timeout(remaining) as attempt_clock:
                    sending = _paced(body, attempt_clock, step, sent)
                    async with (
                        http.post(
                            url, data=sending, timeout=timeout, allow_redirects=False, **self._route.request(headers)
                        ) as response,
                        self._receiving,  # answers wait in their sockets, not in memory
                    ):
                        raw = await response.read()
                        if response.status == 200:
                            outcome = await asyncio.to_thread(
                                parse_response, raw, spec=spec, size=request.size, attempts=attempt
                            )
                        else:
                            outcome, error = None, classify(response.status, raw, secret=self._key)
                        del raw  # before the next answer is let in
                if outcome is not None:
                    return dataclasses.replace(outcome, unanswered=lost) if lost else outcome
            except MalformedResponseError as exc:
                error = exc
            except TimeoutError as exc:  # aiohttp's socket timeouts, or the deadline cutting the attempt
                error = TimedOutError(f"{type(exc).__name__} after {time.monotonic() - started:.1f}s")
                lost += 1 if sent else 0
            except aiohttp.ClientError as exc:
                error = UnreachableError(redact(f"{type(exc).__name__}: {exc}", self._key))
            error.attempts, error.unanswered = attempt, lost
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


async def _paced(body: StreamedBody, clock: asyncio.Timeout, step: float, sent: list[bool]) -> AsyncIterator[bytes]:
    """The body's pieces, each to be sent within `step` seconds (aiohttp has no write timeout of its own); once
    all are sent, the attempt's clock goes back to its deadline and `sent` gets its True."""
    deadline = clock.when()
    assert deadline is not None  # the attempt's clock is made with one
    loop = asyncio.get_running_loop()
    for piece in body:
        clock.reschedule(min(loop.time() + step, deadline))
        yield piece
    clock.reschedule(deadline)
    sent.append(True)
