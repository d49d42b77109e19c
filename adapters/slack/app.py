"""The bolt app: mentions, thread messages, /imagine, buttons and App Home into invocations for the core."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.files import SlackFile
from adapters.slack.home import publish_home
from adapters.slack.responder import SlackResponder
from adapters.slack.translate import (
    DM_THREAD,
    parse_admin,
    parse_flags,
    plain_text,
    slack_escaped,
    strip_mention,
    user_ref,
)
from bot.dispatcher import dispatch
from bot.models import Button, Invocation, ThreadRef
from bot.proxies import EnvProxies
from bot.services import Services
from bot.targets import size_option
from commands import COMMANDS
from commands.imagine import refusal_before_start

log = logging.getLogger(__name__)
UPLOAD_LIMIT = 50 * 1024 * 1024
_ACTION = re.compile(r"^bb:")
# Messages that are someone writing: plain, with files, or a thread reply also sent to the channel.
PROMPT_SUBTYPES = (None, "file_share", "thread_broadcast")


OOPS = "Something went wrong on my side. It has been logged; please try again."
Listener = Callable[..., Awaitable[None]]


def acked(listener: Listener) -> Listener:
    """A listener that acks first, then works: what fails after its ack is logged and told to the user privately
    through `respond` (so each such listener takes it), never handed back to bolt. Bolt takes an ack back when its
    listener fails within the 10 ms it polls for it: HTTP mode answers 404 and Socket Mode never acks, so Slack
    shows the command as failed."""

    @functools.wraps(listener)  # bolt passes arguments by the names in the listener's own signature
    async def guarded(**kwargs: Any) -> None:
        try:
            await listener(**kwargs)
        except Exception:
            log.exception("%s failed", listener.__name__)
            with contextlib.suppress(Exception):
                await kwargs["respond"](text=OOPS, response_type="ephemeral")

    return guarded


def session_refused(error: str, bot_user_id: str | None) -> str:
    """Why /imagine could not post its session's first message, for the user who asked (nothing was charged)."""
    if error in ("not_in_channel", "channel_not_found"):
        me = f"<@{bot_user_id}>" if bot_user_id else "me"
        return f"I'm not in this channel yet: invite me with `/invite` {me}, then try again. Nothing was charged."
    return f"Slack didn't let me start the session here ({error or 'unknown error'}). Nothing was charged."


class SlackBot:
    """Turns Slack events into invocations; one per process, shared by HTTP and Socket Mode."""

    def __init__(self, services: Services, client: AsyncWebClient, http: aiohttp.ClientSession) -> None:
        self.services = services
        self.client = client
        self.http = http  # file downloads
        self.proxies = EnvProxies()  # the downloads' proxy routes, read once per file host
        settings = services.settings
        self.token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""

    def register(self, app: AsyncApp) -> None:
        app.event("app_mention")(self.on_mention)
        app.event("message")(self.on_message)
        app.command("/imagine")(acked(self.on_imagine))
        app.command("/bananabot-admin")(acked(self.on_admin))
        app.action(_ACTION)(acked(self.on_button))
        app.event("app_home_opened")(self.on_home)

    async def on_mention(self, body: dict[str, Any], event: dict[str, Any], context: dict[str, Any]) -> None:
        text = strip_mention(event.get("text", ""), context.get("bot_user_id"))
        thread_ts = event.get("thread_ts") or event["ts"]  # Slack: the thread root ts, never a reply's
        await self._turn(body, event, text=text, thread_ts=thread_ts)

    async def on_message(self, body: dict[str, Any], event: dict[str, Any], context: dict[str, Any]) -> None:
        if event.get("subtype") not in PROMPT_SUBTYPES or event.get("bot_id"):
            return  # edits, deletions, joins and other bots (ourselves included) are not turns
        bot_user = context.get("bot_user_id")
        if not event.get("user") or event.get("user") == bot_user:
            return
        is_dm = event.get("channel_type") == "im"
        if bot_user and f"<@{bot_user}>" in event.get("text", "") and not is_dm:
            return  # the app_mention event for the same message runs the turn
        thread_ts = event.get("thread_ts")
        if not is_dm:
            if not thread_ts:
                return
            team = body.get("team_id") or event.get("team") or ""
            key = ThreadRef("slack", team, event["channel"], thread_ts).key
            if await self.services.store.active_session(key) is None:
                return  # a thread that isn't a session: stay quiet
        await self._turn(body, event, text=strip_mention(event.get("text", ""), bot_user), thread_ts=thread_ts)

    async def on_imagine(
        self, ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: Any, context: dict[str, Any]
    ) -> None:
        await ack()
        user_id, channel, team = body["user_id"], body["channel_id"], body.get("team_id", "")
        text, options = parse_flags(plain_text(body.get("text", "")))
        user = user_ref(user_id, team)
        if not text:
            await client.chat_postEphemeral(
                channel=channel,
                user=user_id,
                text="Usage: /imagine a red fox in the "
                "snow --ar 16:9 --size 2K. To start from an image, mention me with it.",
            )
            return
        if not self._allowed(channel):
            await client.chat_postEphemeral(channel=channel, user=user_id, text="I'm not enabled in this channel.")
            return
        wrong = refusal_before_start(Invocation("imagine", user, None, text, (), options), self.services)
        if wrong is not None:  # no session message for a request that can't run
            await client.chat_postEphemeral(channel=channel, user=user_id, text=wrong)
            return
        credits = self.services.settings.credits_for(size_option(options.get("size")) or "1K")
        short = await self.services.ledger.precheck(user, credits=credits, now=self.services.now())
        if short is not None:  # no empty session thread for someone out of credits
            await client.chat_postEphemeral(channel=channel, user=user_id, text=short.message)
            return
        # Slack: slash commands can't run in threads, so the session gets a root message of its own.
        try:
            root = await client.chat_postMessage(
                channel=channel, text=f"🍌 <@{user_id}> started an image session: “{slack_escaped(text)}”"
            )
        except SlackApiError as exc:  # the command works in channels the bot was never invited to
            error = str(exc.response.get("error", ""))
            log.info("/imagine could not start a session in %s: %s", channel, error)
            await respond(text=session_refused(error, context.get("bot_user_id")), response_type="ephemeral")
            return
        thread = ThreadRef("slack", team, channel, str(root["ts"]))
        invocation = Invocation("imagine", user, thread, text, (), options, upload_limit=UPLOAD_LIMIT)
        responder = SlackResponder(client, channel=channel, thread_ts=thread.thread_id, user_id=user_id)
        await dispatch(invocation, responder, self.services, COMMANDS)

    async def on_admin(self, ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: Any) -> None:
        await ack()
        user_id, channel, team = body["user_id"], body["channel_id"], body.get("team_id", "")
        options = parse_admin(body.get("text", ""))
        invocation = Invocation("admin", user_ref(user_id, team), None, options=options)
        responder = SlackResponder(client, channel=channel, thread_ts=None, user_id=user_id)
        await dispatch(invocation, responder, self.services, COMMANDS)

    async def on_button(self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        await ack()
        found = Button.command_for(action.get("action_id", ""))
        if found is None:
            return
        command, options = found
        user_id = body["user"]["id"]
        team = (body.get("team") or {}).get("id", "")
        channel = body["channel"]["id"]
        message = body.get("message") or {}
        # A result in a channel is always in its session's thread. In a DM, a session may live at the top level
        # (keyed DM_THREAD), where the button's message has no thread of its own.
        thread_ts = message.get("thread_ts") or (None if channel.startswith("D") else message.get("ts"))
        event_id = f"action:{channel}:{action.get('action_ts', '')}:{user_id}"
        invocation = Invocation(
            command,
            user_ref(user_id, team),
            ThreadRef("slack", team, channel, thread_ts or DM_THREAD),
            options=options,
            event_id=event_id,
            upload_limit=UPLOAD_LIMIT,
        )
        responder = SlackResponder(self.client, channel=channel, thread_ts=thread_ts, user_id=user_id)
        await dispatch(invocation, responder, self.services, COMMANDS)

    async def on_home(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home":
            await publish_home(self.client, self.services, user_ref(event["user"], body.get("team_id", "")))

    async def _turn(self, body: dict[str, Any], event: dict[str, Any], *, text: str, thread_ts: str | None) -> None:
        channel = event["channel"]
        user_id = event["user"]
        team = body.get("team_id") or event.get("team") or ""
        responder = SlackResponder(
            self.client, channel=channel, thread_ts=thread_ts, user_id=user_id, source_ts=event.get("ts")
        )
        if not self._allowed(channel):
            await responder.client.chat_postEphemeral(channel=channel, user=user_id, text="I'm not enabled here.")
            return
        files = tuple(
            SlackFile(info, self.http, self.token, self.services.settings.slack_file_hosts, self.proxies)
            for info in [await self._file_info(info) for info in event.get("files") or ()]
        )
        text, options = parse_flags(plain_text(text))
        invocation = Invocation(
            "imagine",
            user_ref(user_id, team),
            ThreadRef("slack", team, channel, thread_ts or DM_THREAD),
            text,
            files,
            options,
            event_id=body.get("event_id"),
            upload_limit=UPLOAD_LIMIT,
        )
        await dispatch(invocation, responder, self.services, COMMANDS)

    async def _file_info(self, info: dict[str, Any]) -> dict[str, Any]:
        """A file's full object. In Slack Connect channels an event carries only the id and `file_access:
        check_file_info`, and files.info gives the rest (name, type, size, download URL)."""
        if info.get("file_access") != "check_file_info" or not info.get("id"):
            return info
        try:
            answer = await self.client.files_info(file=str(info["id"]))
        except SlackApiError as exc:
            log.info("files.info for %s failed: %s", info["id"], exc.response.get("error"))
            return info  # the download then names the file it can't get
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("files.info for %s failed: %s", info["id"], type(exc).__name__)
            return info
        found = answer.get("file")
        return dict(found) if isinstance(found, dict) else info

    def _allowed(self, channel: str) -> bool:
        allowed = self.services.settings.slack_allowed_channels
        return not allowed or channel in allowed or channel.startswith("D")
