"""The fake workspace: channels, users, messages with Slack-style ts, reactions, files, ephemerals, home views."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

Message = dict[str, Any]


@dataclass(slots=True)
class Channel:
    id: str
    name: str
    is_member: bool = True
    is_private: bool = False


@dataclass(slots=True)
class User:
    id: str
    name: str
    is_bot: bool = False
    bot_id: str | None = None


@dataclass(slots=True)
class StoredFile:
    """A file the fake hosts under /files-pri/: its Slack file object and its bytes."""

    file: dict[str, Any]
    data: bytes
    public: bool = False  # served without a token (tests only; real url_private always needs one)
    redirect_to: str | None = None  # answer downloads with a 302 to this URL


@dataclass(slots=True)
class PendingUpload:
    """Between files.getUploadURLExternal and files.completeUploadExternal."""

    file_id: str
    filename: str
    length: int
    upload_key: str
    alt_txt: str | None = None
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class Upload:
    """A completed files_upload_v2: what the bot uploaded and where it was shared."""

    file_id: str
    filename: str
    title: str
    data: bytes
    channel_id: str | None
    thread_ts: str | None
    initial_comment: str | None
    alt_txt: str | None
    message_ts: str | None


@dataclass(frozen=True, slots=True)
class ResponsePost:
    """A JSON body posted to a response_url (`respond()`)."""

    url: str
    body: dict[str, Any]


@dataclass(slots=True)
class ResponseTarget:
    channel: str
    user: str
    uses: int = 0


@dataclass
class SlackState:
    """Everything the fake remembers; FakeSlack exposes the query helpers."""

    channels: dict[str, Channel] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    messages: dict[str, list[Message]] = field(default_factory=dict)  # channel → all messages, ts order
    ephemeral: dict[str, list[Message]] = field(default_factory=dict)  # user → ephemeral messages
    files: dict[str, StoredFile] = field(default_factory=dict)
    pending: dict[str, PendingUpload] = field(default_factory=dict)  # file_id → upload in progress
    uploads: list[Upload] = field(default_factory=list)
    home_views: dict[str, dict[str, Any]] = field(default_factory=dict)
    responses: list[ResponsePost] = field(default_factory=list)
    response_targets: dict[str, ResponseTarget] = field(default_factory=dict)  # response_url path → target
    _last_micros: int = 0
    _counter: int = 0

    def next_ts(self) -> str:
        """A Slack message ts ("1732190000.000100"): wall-clock based, strictly increasing."""
        micros = max(time.time_ns() // 1000, self._last_micros + 100)
        self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def next_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}0{self._counter:08X}"

    def resolve_channel(self, ref: str) -> Channel | None:
        """Channel by id, or by name with or without '#' (chat.postMessage accepts both)."""
        if ref in self.channels:
            return self.channels[ref]
        name = ref.removeprefix("#")
        return next((c for c in self.channels.values() if c.name == name), None)

    def find(self, channel: str, ts: str) -> Message | None:
        return next((m for m in self.messages.get(channel, []) if m["ts"] == ts), None)

    def add(self, channel: str, message: Message) -> Message:
        """Store a message (ts already set), keeping the thread root's reply fields up to date like Slack."""
        if self._micros(message["ts"]) > self._last_micros:
            self._last_micros = self._micros(message["ts"])
        history = self.messages.setdefault(channel, [])
        history.append(message)
        history.sort(key=lambda m: self._micros(m["ts"]))
        root_ts = message.get("thread_ts")
        if root_ts and root_ts != message["ts"]:
            root = self.find(channel, root_ts)
            if root is not None:
                root["thread_ts"] = root_ts
                replies = [m for m in history if m.get("thread_ts") == root_ts and m["ts"] != root_ts]
                root["reply_count"] = len(replies)
                root["reply_users"] = sorted({m.get("user", "") for m in replies} - {""})
                root["reply_users_count"] = len(root["reply_users"])
                root["latest_reply"] = replies[-1]["ts"]
        return message

    def remove(self, channel: str, ts: str) -> None:
        self.messages[channel] = [m for m in self.messages.get(channel, []) if m["ts"] != ts]

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """The root message (if known) and its replies, oldest first."""
        return [m for m in self.messages.get(channel, []) if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts]

    def reactions(self, channel: str, ts: str) -> dict[str, list[str]]:
        message = self.find(channel, ts)
        if message is None:
            return {}
        return {r["name"]: list(r["users"]) for r in message.get("reactions", [])}

    @staticmethod
    def _micros(ts: str) -> int:
        seconds, _, fraction = ts.partition(".")
        return int(seconds) * 1_000_000 + int(fraction.ljust(6, "0")[:6] or 0)
