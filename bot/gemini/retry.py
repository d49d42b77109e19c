"""Retry policy: exponential backoff with full jitter, RetryInfo honoured, bounded by attempts and a deadline."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard the client tries before giving up.

    Attributes:
        max_attempts: HTTP attempts in total, the first one included.
        base_delay: Backoff ceiling for the first retry, in seconds; doubles each retry.
        max_delay: Largest ceiling for one backoff.
        deadline: Seconds from the first attempt after which nothing more is tried.
        attempt_timeout: Read timeout of one attempt (image calls take 10-60 s, more at 4K).
        connect_timeout: Connect timeout of one attempt.
    """

    max_attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0
    deadline: float = 300.0
    attempt_timeout: float = 150.0
    connect_timeout: float = 10.0

    def backoff(self, retry: int, rng: random.Random, *, at_least: float | None = None) -> float:
        """Delay before retry number `retry` (1-based): uniform in [0, ceiling], never below Gemini's RetryInfo."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        delay = rng.uniform(0, ceiling)
        return max(delay, at_least) if at_least is not None else delay
