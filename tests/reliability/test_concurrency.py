"""Many people at once: one thread's turns stay in order and attributed; many sessions all complete."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bot.dispatcher import dispatch
from bot.models import Invocation, Progress, ThreadRef, UserRef
from commands import COMMANDS
from tests.core.conftest import THREAD, png_bytes
from tests.fakes.chat import RecordingResponder
from tests.fakes.gemini import FakeGemini


async def test_ten_users_in_one_thread_take_turns_in_order(make_services, fake_gemini: FakeGemini) -> None:
    services = await make_services()
    await dispatch(
        Invocation("imagine", UserRef("console", "host"), THREAD, "a market square"),
        RecordingResponder(),
        services,
        COMMANDS,
    )
    fake_gemini.latency = 0.1
    users = [UserRef("console", f"user{i}", display_name=f"User {i}") for i in range(10)]
    responders = [RecordingResponder() for _ in users]
    await asyncio.gather(
        *(
            dispatch(Invocation("imagine", user, THREAD, f"add stall {i}"), responder, services, COMMANDS)
            for i, (user, responder) in enumerate(zip(users, responders, strict=True))
        )
    )

    prompts = [r.body["contents"][-1]["parts"][-1]["text"] for r in fake_gemini.requests[1:]]
    assert prompts == [f"add stall {i}" for i in range(10)]  # first come, first served
    full = 2 * (services.settings.history_turns + 1) + 1  # the first turn, the window, the new message
    assert [len(r.body["contents"]) for r in fake_gemini.requests] == [1] + [min(3 + 2 * i, full) for i in range(10)]
    assert all(r.status == 200 for r in fake_gemini.requests)  # no signature was ever refused
    for i, responder in enumerate(responders):
        [reply] = responder.replies
        assert reply.images and f"User {i}" in reply.text  # attributed to whoever asked
        queued = [e for e in responder.events if e.kind == "queued"]
        assert queued == ([] if i == 0 else [Progress("queued", position=i)])  # told truthfully how many are ahead
        assert (await services.store.usage(users[i].key, now=services.now())).day_credits == 1


async def test_a_hundred_sessions_in_parallel_all_complete(make_services, fake_gemini: FakeGemini) -> None:
    services = await make_services(max_concurrent_calls=100)
    fake_gemini.latency = 1.0
    responders = [RecordingResponder() for _ in range(100)]
    await asyncio.gather(
        *(
            dispatch(
                Invocation(
                    "imagine", UserRef("console", f"u{i}"), ThreadRef("console", "local", "t", f"s{i}"), "a kite"
                ),
                responder,
                services,
                COMMANDS,
            )
            for i, responder in enumerate(responders)
        )
    )
    assert all(len(r.replies) == 1 and r.replies[0].images for r in responders)
    assert all([e.kind for e in r.events] == ["started", "finished"] for r in responders)  # nobody was queued
    assert len(fake_gemini.requests) == 100 and not services.charges and not services.in_flight


@dataclass
class Downloads:
    """How many downloads were under way as each one started."""

    now: int = 0
    seen: list[int] = field(default_factory=list)


@dataclass
class CountedImage:
    """An attachment whose download takes a moment and is counted in `downloads`."""

    data: bytes
    downloads: Downloads
    filename: str = "ref.png"
    declared_mime: str = "image/png"

    @property
    def declared_size(self) -> int:
        return len(self.data)

    async def read(self, max_bytes: int) -> bytes:
        self.downloads.now += 1
        self.downloads.seen.append(self.downloads.now)
        try:
            await asyncio.sleep(0.02)
            return self.data
        finally:
            self.downloads.now -= 1


async def test_a_burst_of_edits_downloads_a_few_attachments_at_a_time(make_services, fake_gemini: FakeGemini) -> None:
    # 40 edits at once, two attachments each: all 80 fetched, never more than 3 at once, every turn delivered.
    services = await make_services(max_concurrent_calls=100, max_concurrent_downloads=3)
    responders = [RecordingResponder() for _ in range(40)]
    downloads = Downloads()
    png = png_bytes()
    await asyncio.gather(
        *(
            dispatch(
                Invocation(
                    "imagine",
                    UserRef("console", f"u{i}"),
                    ThreadRef("console", "local", "t", f"s{i}"),
                    "make it blue",
                    (CountedImage(png, downloads), CountedImage(png, downloads)),
                ),
                responder,
                services,
                COMMANDS,
            )
            for i, responder in enumerate(responders)
        )
    )
    assert len(downloads.seen) == 80 and max(downloads.seen) == 3
    assert all(len(r.replies) == 1 and r.replies[0].images for r in responders)
    sent = [[part for part in r.body["contents"][-1]["parts"] if "inlineData" in part] for r in fake_gemini.requests]
    assert len(sent) == 40 and all(len(images) == 2 for images in sent)
