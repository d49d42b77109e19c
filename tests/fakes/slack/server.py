"""FakeSlack: one aiohttp server for the Web API, uploads, file hosting, response_urls and Socket Mode."""

from __future__ import annotations

import copy
from functools import partial
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

from . import files, responses
from .delivery import Delivery, post_signed
from .events import Payload, Workspace, encode
from .foreign import ForeignHost
from .payloads import PayloadFactory
from .protocol import DEFAULT_SCOPES, Context, Settings
from .queries import StateQueries
from .recording import RecordedCall, recorder
from .socket_mode import Ack, SocketHub
from .state import Channel, Message, ResponseTarget, SlackState, StoredFile, User
from .web_api import WebApi

HUMAN, OTHER_HUMAN, CHANNEL, OTHER_CHANNEL = "U0HUMAN", "U0OTHER", "C0CHAN", "C0RANDOM"


class FakeSlack(PayloadFactory, StateQueries):
    """A scriptable Slack on 127.0.0.1 that the real slack_sdk and slack_bolt talk to unchanged.

    Point `AsyncWebClient(base_url=fake.api_url)` at it; every other URL (upload, files, response_url,
    websocket) comes back absolute from the fake. Seeded with channels C0CHAN (#general) and C0RANDOM
    (#random) and users U0HUMAN (alice), U0OTHER (bob) and the bot.

    Args:
        bot_token: the only `xoxb-` token accepted by bot methods and file downloads.
        app_token: the only `xapp-` token accepted by apps.connections.open.
        signing_secret: signs HTTP deliveries.
        workspace: team/app/bot ids used in every payload and answer.
        scopes: the bot's granted scopes; a method needing another answers missing_scope.
        max_upload_bytes: files.getUploadURLExternal `length` and upload bodies above it are refused.
        max_text_chars: chat.* text above it answers msg_too_long.
    """

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-1-fake-bot-token",
        app_token: str = "xapp-1-A0APP-1-fake-app-token",
        signing_secret: str = "fake-signing-secret",
        workspace: Workspace | None = None,
        scopes: set[str] | None = None,
        max_upload_bytes: int = 1024 * 1024 * 1024,
        max_text_chars: int = 40_000,
    ) -> None:
        ws = workspace or Workspace()
        self.settings = Settings(
            bot_token=bot_token,
            app_token=app_token,
            signing_secret=signing_secret,
            workspace=ws,
            scopes=set(DEFAULT_SCOPES if scopes is None else scopes),
            max_upload_bytes=max_upload_bytes,
            max_text_chars=max_text_chars,
        )
        self.state = SlackState()
        self.calls: list[RecordedCall] = []
        self.socket = SocketHub(app_id=ws.api_app_id, on_ack=self._on_ack)
        self._ctx = Context(
            self.state, self.settings, lambda: self.base_url, lambda: self.socket.issue_url(self.base_url)
        )
        self.api = WebApi(self._ctx)
        self._foreign = ForeignHost(self.calls)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._base_url: str | None = None
        self.add_channel(CHANNEL, "general")
        self.add_channel(OTHER_CHANNEL, "random")
        self.add_user(HUMAN, "alice")
        self.add_user(OTHER_HUMAN, "bob")
        self.add_user(ws.bot_user_id, ws.bot_name, is_bot=True, bot_id=ws.bot_id)

    # -- identity and URLs

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("FakeSlack is not started")
        return self._base_url

    @property
    def api_url(self) -> str:
        """The value for SLACK_API_URL / `AsyncWebClient(base_url=...)`, trailing slash included."""
        return f"{self.base_url}/api/"

    @property
    def bot_token(self) -> str:
        return self.settings.bot_token

    @property
    def app_token(self) -> str:
        return self.settings.app_token

    @property
    def signing_secret(self) -> str:
        return self.settings.signing_secret

    @property
    def team_id(self) -> str:
        return self.settings.workspace.team_id

    @property
    def api_app_id(self) -> str:
        return self.settings.workspace.api_app_id

    @property
    def bot_user_id(self) -> str:
        return self.settings.workspace.bot_user_id

    @property
    def bot_id(self) -> str:
        return self.settings.workspace.bot_id

    # -- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(
            middlewares=[recorder(self.calls)], client_max_size=self.settings.max_upload_bytes + 2**20
        )
        ctx = self._ctx
        app.router.add_route("*", "/api/{method}", self.api.handle)
        app.router.add_post("/upload/v1/{key}", partial(files.upload, ctx))
        app.router.add_get("/files-pri/{team_file}/{tail:.*}", partial(files.download, ctx))
        app.router.add_get("/", files.login_page)
        app.router.add_get("/link/", self.socket.handle)
        app.router.add_post("/commands/{tail:.*}", partial(responses.response_url, ctx))
        app.router.add_post("/actions/{tail:.*}", partial(responses.response_url, ctx))
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self._base_url = f"http://{host}:{self._runner.addresses[0][1]}"
        await self._foreign.start(host)
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        await self.socket.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._foreign.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- scripting the world

    def rate_limit_next(self, method: str, retry_after: int = 1, *, times: int = 1) -> None:
        """The next `times` calls of `method` get HTTP 429, `Retry-After`, `{"ok": false, "error": "ratelimited"}`."""
        self.api.rate_limit_next(method, retry_after, times=times)

    def fail_next(self, method: str, error: str, *, times: int = 1) -> None:
        """The next `times` calls of `method` answer `{"ok": false, "error": error}` (HTTP 200)."""
        self.api.fail_next(method, error, times=times)

    def heal(self, method: str) -> None:
        """Drop what is still scripted for `method`: it answers normally again."""
        self.api.heal(method)

    def delay_next(self, method: str, seconds: float, *, times: int = 1) -> None:
        """The next `times` calls of `method` are answered `seconds` late (a slow Slack, or a slow network)."""
        self.api.delay_next(method, seconds, times=times)

    def hang_up_next(self, method: str, *, times: int = 1) -> None:
        """The next `times` calls of `method` get no answer: the connection closes (a network failure)."""
        self.api.hang_up_next(method, times=times)

    def add_channel(self, channel_id: str, name: str, *, is_member: bool = True, is_private: bool = False) -> Channel:
        channel = Channel(channel_id, name, is_member=is_member, is_private=is_private)
        self.state.channels[channel_id] = channel
        return channel

    def add_user(self, user_id: str, name: str, *, is_bot: bool = False, bot_id: str | None = None) -> User:
        user = User(user_id, name, is_bot=is_bot, bot_id=bot_id)
        self.state.users[user_id] = user
        return user

    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str = HUMAN,
        ts: str | None = None,
        thread_ts: str | None = None,
        **extra: Any,
    ) -> Message:
        """Put a message into the channel history (no event is delivered)."""
        message: Message = {"type": "message", "user": user, "text": text, "ts": ts or self.state.next_ts(), **extra}
        if thread_ts is not None:
            message["thread_ts"] = thread_ts
        return self.state.add(channel, message)

    def add_file(
        self,
        name: str,
        mimetype: str,
        data: bytes,
        *,
        private: bool = True,
        user: str = HUMAN,
        redirect_to: str | None = None,
    ) -> dict[str, Any]:
        """Host a file; returns its Slack file object. `private=False` serves it without a token (tests only);
        `redirect_to` answers downloads with a 302 there (e.g. a foreign_url)."""
        file_id = self.state.next_id("F")
        obj = files.file_object(self._ctx, file_id=file_id, name=name, mimetype=mimetype, size=len(data), user=user)
        obj["is_public"] = not private
        self.state.files[file_id] = StoredFile(obj, data, public=not private, redirect_to=redirect_to)
        return copy.deepcopy(obj)

    def foreign_url(self, name: str, data: bytes, *, mimetype: str = "image/png") -> str:
        """A URL on a second host (other port) that serves `data` to anyone and records Authorization headers."""
        return self._foreign.add(name, data, mimetype)

    def foreign_file(self, name: str, mimetype: str, data: bytes, *, user: str = HUMAN) -> dict[str, Any]:
        """A Slack-shaped file object whose url_private(_download) point at the foreign host."""
        obj = files.file_object(
            self._ctx, file_id=self.state.next_id("F"), name=name, mimetype=mimetype, size=len(data), user=user
        )
        url = self._foreign.add(name, data, mimetype)
        obj.update({"url_private": url, "url_private_download": url})
        return obj

    @property
    def foreign_calls(self) -> list[RecordedCall]:
        return [c for c in self.calls if c.foreign]

    def calls_to(self, method: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.method == method]

    # -- delivering events

    async def deliver_http(
        self,
        target_url: str,
        payload: Payload | str,
        *,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        signed: bool = True,
        timestamp: int | str | None = None,
        bad_signature: bool = False,
        content_type: str = "application/json",
        timeout: float = 10.0,
    ) -> Delivery:
        """POST a payload like Slack: JSON for events, a form for commands, `payload=` for interactivity."""
        assert self._session is not None, "FakeSlack is not started"
        body, content_type = (payload, content_type) if isinstance(payload, str) else encode(payload)
        delivery = await post_signed(
            self._session,
            target_url,
            body,
            content_type,
            secret=self.signing_secret,
            signed=signed,
            timestamp=timestamp,
            bad_signature=bad_signature,
            retry_num=retry_num,
            retry_reason=retry_reason,
            timeout=timeout,
        )
        if isinstance(payload, dict) and "command" in payload and delivery.status == 200:
            self._show_command_ack(payload, responses.ack_body(delivery.body))
        return delivery

    async def deliver_socket(
        self,
        payload_type: str,
        payload: Payload,
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
        envelope_id: str | None = None,
    ) -> str:
        """Send an envelope (`events_api`, `slash_commands`, `interactive`) to the connected client."""
        return await self.socket.deliver(
            payload_type, payload, retry_attempt=retry_attempt, retry_reason=retry_reason, envelope_id=envelope_id
        )

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        return await self.socket.wait_ack(envelope_id, timeout)

    async def wait_socket(self, timeout: float = 5.0, *, more_than: int = 0) -> None:
        """Until a Socket Mode client is connected (and more than `more_than` connections were made in all)."""
        await self.socket.wait_connected(timeout, more_than=more_than)

    @property
    def socket_connects(self) -> int:
        return self.socket.connects

    async def drop_socket(self) -> None:
        """Close the websocket(s) with a CLOSE frame; a real client reconnects via apps.connections.open."""
        await self.socket.drop()

    async def request_reconnect(self, reason: str = "refresh_requested") -> None:
        """Send `{"type": "disconnect"}` as Slack does before it recycles a connection."""
        await self.socket.send_disconnect(reason)

    def _on_ack(self, envelope: Payload, ack: Ack) -> None:
        if envelope["type"] == "slash_commands" and ack.payload:
            self._show_command_ack(envelope["payload"], ack.payload)

    def _show_command_ack(self, command: Payload, body: dict[str, Any]) -> None:
        responses.show(self._ctx, ResponseTarget(channel=command["channel_id"], user=command["user_id"]), body)
