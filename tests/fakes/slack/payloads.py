"""FakeSlack's payload builders: events.py shapes filled with this workspace's ids, mirrored into its state."""

from __future__ import annotations

import secrets
from typing import Any

from . import events
from .events import Payload
from .protocol import Settings
from .state import Message, ResponseTarget, SlackState


class PayloadFactory:
    """Mixin for FakeSlack. A user's message built here also lands in the channel, as it would in Slack."""

    state: SlackState
    settings: Settings
    _events_built: int = 0

    @property
    def base_url(self) -> str:
        raise NotImplementedError

    def response_url(self, *, channel: str, user: str, kind: str = "commands") -> str:
        """A response_url on this fake; posts to it are recorded and shown (ephemeral unless in_channel)."""
        path = f"/{kind}/{self.settings.workspace.team_id}/{self.state.next_id('')}/{secrets.token_hex(8)}"
        self.state.response_targets[path] = ResponseTarget(channel=channel, user=user)
        return f"{self.base_url}{path}"

    def app_mention(
        self,
        user: str,
        channel: str,
        text: str,
        ts: str | None = None,
        thread_ts: str | None = None,
        files: list[Payload] | None = None,
        *,
        event_id: str | None = None,
    ) -> Payload:
        ts = ts or self.state.next_ts()
        team = self.settings.workspace.team_id
        event = events.app_mention_event(
            user=user, channel=channel, text=text, ts=ts, thread_ts=thread_ts, files=files, team=team
        )
        self._remember(channel, event)
        return self._callback(event, event_id)

    def message(
        self,
        user: str,
        channel: str,
        text: str,
        ts: str | None = None,
        thread_ts: str | None = None,
        files: list[Payload] | None = None,
        subtype: str | None = None,
        bot_id: str | None = None,
        edited: str | None = None,
        *,
        event_id: str | None = None,
    ) -> Payload:
        """A `message` event; with files it is a file_share. `edited` (the edit's ts) makes it message_changed."""
        ts = ts or self.state.next_ts()
        team = self.settings.workspace.team_id
        event = events.message_event(
            user=user,
            channel=channel,
            text=text,
            ts=ts,
            thread_ts=thread_ts,
            files=files,
            subtype=subtype,
            bot_id=bot_id,
            team=team,
        )
        if edited is None:
            self._remember(channel, event)
            return self._callback(event, event_id)
        stored = self.state.find(channel, ts)
        old = dict(stored) if stored is not None else {**event, "text": ""}
        if stored is not None:
            stored.update({"text": text, "edited": {"user": user, "ts": edited}})
        changed = events.message_changed_event(channel=channel, edited_ts=edited, old=old, new_text=text, user=user)
        return self._callback(changed, event_id)

    def slash_command(
        self,
        command: str,
        text: str,
        user: str,
        channel: str,
        trigger_id: str | None = None,
        response_url: str | None = None,
    ) -> dict[str, str]:
        return events.slash_command(
            self.settings.workspace,
            command=command,
            text=text,
            user=user,
            user_name=self._user_name(user),
            channel=channel,
            channel_name=self._channel_name(channel),
            trigger_id=trigger_id or self._trigger_id(),
            response_url=response_url or self.response_url(channel=channel, user=user),
        )

    def block_actions(
        self,
        user: str,
        channel: str,
        message_ts: str,
        thread_ts: str | None,
        action_id: str,
        value: str,
        *,
        block_id: str = "b1",
    ) -> Payload:
        """A button click on the message at `message_ts` (taken from the channel history when known)."""
        stored = self.state.find(channel, message_ts)
        message: Message = dict(stored) if stored is not None else {"type": "message", "text": "", "ts": message_ts}
        if thread_ts is not None:
            message["thread_ts"] = thread_ts
        return events.block_actions(
            self.settings.workspace,
            user=user,
            user_name=self._user_name(user),
            channel=channel,
            channel_name=self._channel_name(channel),
            message=message,
            action_id=action_id,
            value=value,
            block_id=block_id,
            trigger_id=self._trigger_id(),
            response_url=self.response_url(channel=channel, user=user, kind="actions"),
        )

    def app_home_opened(self, user: str, *, event_id: str | None = None) -> Payload:
        view = self.state.home_views.get(user)
        event = events.app_home_opened_event(user=user, channel=f"D0{user.removeprefix('U')}", view=view)
        return self._callback(event, event_id)

    def url_verification(self, challenge: str = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P") -> Payload:
        return events.url_verification(challenge)

    def _callback(self, event: Payload, event_id: str | None) -> Payload:
        self._events_built += 1
        event_id = event_id or f"Ev0{self._events_built:08X}"
        return events.event_callback(self.settings.workspace, event, event_id=event_id)

    def _remember(self, channel: str, event: Payload) -> None:
        # Slack sends app_mention and message for the same post; the channel holds it once.
        if self.state.find(channel, event["ts"]) is None:
            kept = ("type", "user", "text", "ts", "thread_ts", "files", "subtype", "bot_id", "team", "upload")
            message: dict[str, Any] = {k: event[k] for k in kept if k in event}
            self.state.add(channel, {**message, "type": "message"})

    def _user_name(self, user: str) -> str:
        found = self.state.users.get(user)
        return found.name if found else user.lower()

    def _channel_name(self, channel: str) -> str:
        found = self.state.channels.get(channel)
        return found.name if found else channel.lower()

    @staticmethod
    def _trigger_id() -> str:
        return f"{secrets.randbelow(10**13)}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
