"""Read-only views of FakeSlack's state for assertions (copies, so tests cannot corrupt the fake)."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .state import Message, ResponsePost, SlackState, Upload

T = TypeVar("T")


class StateQueries:
    """Mixin for FakeSlack."""

    state: SlackState

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        return copy.deepcopy(self.state.thread(channel, thread_ts))

    def history(self, channel: str) -> list[Message]:
        return copy.deepcopy(self.state.messages.get(channel, []))

    def ephemerals(self, user: str) -> list[Message]:
        return copy.deepcopy(self.state.ephemeral.get(user, []))

    def reactions(self, channel: str, ts: str) -> dict[str, list[str]]:
        return self.state.reactions(channel, ts)

    def uploads(self) -> list[Upload]:
        return list(self.state.uploads)

    def home_view(self, user: str) -> dict[str, Any] | None:
        view = self.state.home_views.get(user)
        return copy.deepcopy(view) if view is not None else None

    def response_posts(self) -> list[ResponsePost]:
        return list(self.state.responses)

    async def wait_until(self, check: Callable[[], T], timeout: float = 5.0) -> T:
        """Poll `check` until it returns something truthy (listeners run in the background)."""
        deadline = time.monotonic() + timeout
        while not (result := check()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            await asyncio.sleep(0.01)
        return result
