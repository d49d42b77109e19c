"""One way to drive every adapter in the fault matrix: start a session with an image, send a turn, read answers."""

from __future__ import annotations

import asyncio
import io
from typing import Any, Protocol

from adapters.console.chat import ConsoleChat
from bot.services import Services
from tests.adapters.discord.conftest import DiscordBot, World
from tests.adapters.slack.conftest import SlackBot
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import CHANNEL, HUMAN, FakeSlack

SETTINGS = {
    "gemini_max_attempts": 2,
    "gemini_backoff_seconds": 0.01,
    "gemini_timeout_seconds": 2.0,
    "gemini_deadline_seconds": 3.0,
}


class Driver(Protocol):
    services: Services
    user_key: str

    async def first_image(self, prompt: str) -> None: ...

    async def turn(self, prompt: str) -> None: ...

    def said(self) -> str: ...

    def images(self) -> int: ...


async def settle(services: Services, quiet: float = 0.3) -> None:
    """Until no turn has been queued or running for `quiet` seconds."""
    loop = asyncio.get_running_loop()
    calm = None
    while True:
        busy = services.queue.depth() or services.in_flight or services.charges
        now = loop.time()
        if busy:
            calm = None
        elif calm is None:
            calm = now
        elif now - calm >= quiet:
            return
        await asyncio.sleep(0.02)


async def wait(check: Any, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("the bot never answered")


class ConsoleDriver:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.out = io.StringIO()
        self.chat = ConsoleChat(services, session="matrix", stdout=self.out, stderr=io.StringIO())
        self.user_key = self.chat.user.key

    async def first_image(self, prompt: str) -> None:
        await self.chat.handle(prompt)

    async def turn(self, prompt: str) -> None:
        await self.chat.handle(prompt)

    def said(self) -> str:
        return self.out.getvalue()

    def images(self) -> int:
        return self.out.getvalue().count("\nimage: ") + self.out.getvalue().startswith("image: ")


class SlackDriver:
    def __init__(self, bot: SlackBot, fake: FakeSlack) -> None:
        assert bot.services is not None
        self.bot, self.fake, self.services = bot, fake, bot.services
        self.user_key = f"slack:{HUMAN}"
        self.root = ""

    def _answers(self) -> int:
        return len(self.fake.uploads()) + len(self.fake.ephemerals(HUMAN))

    async def first_image(self, prompt: str) -> None:
        payload = self.fake.app_mention(HUMAN, CHANNEL, f"<@{self.fake.bot_user_id}> {prompt}")
        self.root = payload["event"]["ts"]
        await self.bot.deliver(payload)
        await wait(lambda: self.fake.uploads())
        await settle(self.services)

    async def turn(self, prompt: str) -> None:
        before = self._answers()
        await self.bot.deliver(self.fake.message(HUMAN, CHANNEL, prompt, thread_ts=self.root))
        await wait(lambda: self._answers() > before)
        await settle(self.services)

    def said(self) -> str:
        texts = [m.get("text", "") for m in self.fake.ephemerals(HUMAN)]
        texts += [u.initial_comment or "" for u in self.fake.uploads()]
        return "\n".join(texts)

    def images(self) -> int:
        return len(self.fake.uploads())


class DiscordDriver:
    def __init__(self, bot: DiscordBot, fake: FakeDiscord, world: World) -> None:
        assert bot.services is not None
        self.bot, self.fake, self.world, self.services = bot, fake, world, bot.services
        self.user_key = f"discord:{world.alice}"
        self.thread = ""

    def _bot_messages(self) -> list[dict[str, Any]]:
        return [m for m in self.fake.messages_in(self.thread) if m["author"]["id"] == self.fake.bot_id]

    async def first_image(self, prompt: str) -> None:
        await self.fake.send_slash_command(
            self.world.guild_id, self.world.channel_id, self.world.alice, "imagine", {"prompt": prompt}
        )
        await wait(lambda: self.fake.threads_of(self.world.channel_id))
        self.thread = self.fake.threads_of(self.world.channel_id)[-1]["id"]
        await wait(lambda: self.images() >= 1)
        await settle(self.services)

    async def turn(self, prompt: str) -> None:
        before = len(self._bot_messages())
        await self.fake.send_message(self.thread, self.world.alice, prompt)
        await wait(lambda: len(self._bot_messages()) > before)
        await settle(self.services)

    def said(self) -> str:
        return "\n".join(m["content"] for m in self._bot_messages())

    def images(self) -> int:
        return sum(1 for m in self._bot_messages() if m["attachments"])
