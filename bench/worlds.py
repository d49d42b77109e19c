"""The fake Discord and the fake Slack as load drivers: users, channels, and the instants the bot's answers land."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bench.sender import Request
from tests.fakes.discord import FakeDiscord, FakeInteraction
from tests.fakes.slack import CHANNEL, FakeSlack
from tests.fakes.slack.delivery import Delivery, post_signed, signed_headers
from tests.fakes.slack.events import encode

RESULT_PREFIX = "bananabot-"


def _now() -> float:
    return asyncio.get_running_loop().time()


class DiscordWorld:
    """One guild with a channel per concurrent user: Discord rate-limits posting per channel (5 per 5 s), so a
    burst in one channel would measure discord.py's bucket sleeps, not the bot."""

    def __init__(self, *, users: int) -> None:
        self.fake = FakeDiscord()
        self.size = users
        self.guild = ""
        self.channels: list[str] = []
        self.users: list[str] = []
        self.results: list[float] = []  # loop time of every result image the bot posted

    async def __aenter__(self) -> DiscordWorld:
        await self.fake.start()
        self.guild = self.fake.add_guild("Bench Lab")
        for i in range(self.size):
            self.channels.append(self.fake.add_channel(self.guild, f"c{i}"))
            self.users.append(self.fake.add_user(f"u{i}"))
            self.fake.add_member(self.guild, self.users[-1])
        store = self.fake.state.store_message

        def store_message(message: dict[str, Any]) -> None:
            store(message)
            if any(a["filename"].startswith(RESULT_PREFIX) for a in message.get("attachments") or ()):
                self.results.append(_now())

        self.fake.state.store_message = store_message  # type: ignore[method-assign]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.fake.stop()

    def bot_env(self) -> dict[str, str]:
        return {
            "DISCORD_TOKEN": self.fake.token,
            "DISCORD_API_URL": self.fake.api_url,
            "DISCORD_GATEWAY_URL": self.fake.gateway_url,
            "DISCORD_GUILD_IDS": self.guild,
        }

    async def wait_ready(self, identifies: int = 0) -> None:
        await self.fake.wait_for(lambda: len(self.fake.gateway.identifies) > identifies, timeout=30)
        await self.fake.wait_for(lambda: self.fake.commands(self.guild), timeout=30)
        await asyncio.sleep(0.3)  # READY and GUILD_CREATE reach the client's cache

    async def imagine(self, i: int, prompt: str, *, photo: bytes | None, size: str | None = None) -> FakeInteraction:
        options = {"prompt": prompt, **({"resolution": size} if size else {})}
        attachments = [("photo.jpg", "image/jpeg", photo)] if photo is not None else None
        return await self.fake.send_slash_command(
            self.guild, self.channels[i], self.users[i], "imagine", options, attachments=attachments
        )

    async def command(self, i: int, name: str) -> FakeInteraction:
        return await self.fake.send_slash_command(self.guild, self.channels[i], self.users[i], name)

    def thread_of(self, i: int) -> str:
        return str(self.fake.threads_of(self.channels[i])[-1]["id"])

    async def say(self, thread_id: str, i: int, text: str) -> float:
        sent = _now()
        await self.fake.send_message(thread_id, self.users[i], text)
        return sent

    @staticmethod
    def answered(interaction: FakeInteraction) -> float | None:
        """Seconds from INTERACTION_CREATE to the first edit that put text into the deferred response."""
        for response in interaction.responses:
            body = response.body if isinstance(response.body, dict) else {}
            if response.kind in ("edit", "followup") and body.get("content"):
                return response.elapsed
        return None


class TimedDict(dict[str, Any]):
    """A dict that remembers when each key was last set (the fake's App Home views)."""

    def __init__(self) -> None:
        super().__init__()
        self.set_at: dict[str, float] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.set_at[key] = _now()


class TimedList(list[Any]):
    """A list that remembers when each item was appended (the fake's completed uploads)."""

    def __init__(self) -> None:
        super().__init__()
        self.at: list[float] = []

    def append(self, item: Any) -> None:
        super().append(item)
        self.at.append(_now())


class SlackWorld:
    """The fake Slack, delivering over HTTP like Slack (signed), from a client with no connection cap."""

    def __init__(self, *, users: int) -> None:
        self.fake = FakeSlack()
        self.users = [f"U0B{i:05d}" for i in range(users)]
        self.http: aiohttp.ClientSession | None = None
        self.events_url = ""

    async def __aenter__(self) -> SlackWorld:
        await self.fake.start()
        for user in self.users:
            self.fake.add_user(user, user.lower())
        self.fake.state.uploads = TimedList()
        self.fake.state.home_views = TimedDict()
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.http is not None:
            await self.http.close()
        await self.fake.stop()

    @property
    def uploads(self) -> TimedList:
        return self.fake.state.uploads  # type: ignore[return-value]

    @property
    def home_views(self) -> TimedDict:
        return self.fake.state.home_views  # type: ignore[return-value]

    def bot_env(self) -> dict[str, str]:
        return {
            "SLACK_BOT_TOKEN": self.fake.bot_token,
            "SLACK_SIGNING_SECRET": self.fake.signing_secret,
            "SLACK_API_URL": self.fake.api_url,
            "BANANABOT_SLACK_FILE_HOSTS": urlsplit(self.fake.base_url).netloc,
        }

    async def deliver(self, payload: dict[str, Any], *, url: str | None = None) -> Delivery:
        """To `url` (one replica's events endpoint), else to `events_url`."""
        assert self.http is not None
        body, content_type = encode(payload)
        return await post_signed(
            self.http, url or self.events_url, body, content_type, secret=self.fake.signing_secret, timeout=60
        )

    async def mention(self, i: int, prompt: str, *, photo: bytes | None, url: str | None = None) -> Delivery:
        return await self.deliver(self._mention(i, prompt, photo=photo), url=url)

    def mention_request(self, i: int, prompt: str, *, photo: bytes | None, url: str | None = None) -> Request:
        """The same mention, signed and encoded now, for bench.sender to deliver later."""
        body, content_type = encode(self._mention(i, prompt, photo=photo))
        headers = signed_headers(body, content_type, secret=self.fake.signing_secret)
        return Request(url or self.events_url, headers, body.encode())

    def _mention(self, i: int, prompt: str, *, photo: bytes | None) -> dict[str, Any]:
        user = self.users[i]
        files = [self.fake.add_file("photo.jpg", "image/jpeg", photo, user=user)] if photo is not None else None
        return self.fake.app_mention(user, CHANNEL, f"<@{self.fake.bot_user_id}> {prompt}", files=files)

    async def open_home(self, i: int) -> tuple[float, Delivery]:
        sent = _now()
        return sent, await self.deliver(self.fake.app_home_opened(self.users[i]))
