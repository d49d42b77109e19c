"""Replies into a Slack thread: images via files_upload_v2, Block Kit buttons, ephemeral errors, progress."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.translate import slack_escaped
from bot.models import Progress, Reply

log = logging.getLogger(__name__)
TEXT_LIMIT = 3000  # a section block's text limit; plain messages stay well under Slack's 40,000


def clip(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def message_text(text: str, asker: str) -> str:
    """A reply's text as a Slack message: the user's words in it escaped (see `slack_escaped`), then clipped."""
    return clip(slack_escaped(text, asker=asker))


def button_blocks(reply: Reply) -> list[dict[str, Any]]:
    elements = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": button.label},
            "action_id": button.custom_id,  # bb:<action>:<turn>: unique per message, readable after restarts
            "value": button.turn_id,
            **({"style": "primary"} if button.action == "retry" else {}),
        }
        for button in reply.buttons
    ]
    return [{"type": "actions", "block_id": "bananabot_actions", "elements": elements}]


class SlackResponder:
    """Answers one invocation in its thread.

    Progress: a reaction on the user's message (👀 while working, ✅ or ❌ at the end) and a status message
    updated in place with the queue position, deleted when the turn ends.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        thread_ts: str | None,
        user_id: str,
        source_ts: str | None = None,
    ) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.user_id = user_id
        self.source_ts = source_ts
        self._status_ts: str | None = None

    async def send(self, reply: Reply) -> None:
        if reply.ephemeral:
            await self.client.chat_postEphemeral(
                channel=self.channel,
                user=self.user_id,
                text=message_text(reply.text, self.user_id),
                thread_ts=self.thread_ts,
            )
            return
        if reply.images:
            await self.client.files_upload_v2(
                channel=self.channel,
                initial_comment=message_text(reply.text, self.user_id),
                file_uploads=[
                    {"content": image.data, "filename": image.filename, "title": image.filename}
                    for image in reply.images
                ],
                thread_ts=self.thread_ts,
            )
            if reply.buttons:
                try:
                    await self.client.chat_postMessage(
                        channel=self.channel, text="What next?", blocks=button_blocks(reply), thread_ts=self.thread_ts
                    )
                except Exception as exc:  # the image is posted: the turn is delivered, only its buttons are lost
                    why = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
                    log.warning("the buttons of a posted image were not posted: %s", why)
            return
        await self.client.chat_postMessage(
            channel=self.channel, text=message_text(reply.text, self.user_id), thread_ts=self.thread_ts
        )

    async def progress(self, event: Progress) -> None:
        try:
            if event.kind == "queued":
                await self._status(f"⏳ Queued: {event.position} ahead of you in this thread.")
            elif event.kind == "started":
                await self._react("eyes")
                await self._status("🎨 Working on it…")
            else:
                await self._unreact("eyes")
                await self._react("x" if event.kind == "failed" else "white_check_mark")
                if self._status_ts is not None:
                    await self.client.chat_delete(channel=self.channel, ts=self._status_ts)
                    self._status_ts = None
        except SlackApiError as exc:
            log.info("progress not shown: %s", exc.response.get("error"))

    async def _status(self, text: str) -> None:
        if self._status_ts is None:
            posted = await self.client.chat_postMessage(channel=self.channel, text=text, thread_ts=self.thread_ts)
            self._status_ts = str(posted["ts"])
        else:
            await self.client.chat_update(channel=self.channel, ts=self._status_ts, text=text)

    async def _react(self, name: str) -> None:
        if self.source_ts:
            with contextlib.suppress(SlackApiError):
                await self.client.reactions_add(channel=self.channel, timestamp=self.source_ts, name=name)

    async def _unreact(self, name: str) -> None:
        if self.source_ts:
            with contextlib.suppress(SlackApiError):
                await self.client.reactions_remove(channel=self.channel, timestamp=self.source_ts, name=name)
