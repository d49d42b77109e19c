"""Shared Web API plumbing: settings, the error type, parameter helpers."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .events import Workspace
from .state import Channel, SlackState

Params = dict[str, Any]
Answer = dict[str, Any]

DEFAULT_SCOPES = frozenset(
    {
        "app_mentions:read",
        "channels:history",
        "channels:read",
        "chat:write",
        "commands",
        "files:read",
        "files:write",
        "reactions:write",
        "users:read",
    }
)


@dataclass
class Settings:
    """What a FakeSlack accepts and enforces; mutable so a test can tighten it mid-run."""

    bot_token: str = "xoxb-1-fake-bot-token"
    app_token: str = "xapp-1-A0APP-1-fake-app-token"
    signing_secret: str = "fake-signing-secret"
    workspace: Workspace = field(default_factory=Workspace)
    scopes: set[str] = field(default_factory=lambda: set(DEFAULT_SCOPES))
    max_upload_bytes: int = 1024 * 1024 * 1024  # 1 GB, the widely cited figure (§13, unverified)
    max_text_chars: int = 40_000  # Slack truncates longer text; the fake refuses it instead (msg_too_long)
    max_blocks: int = 50


class SlackError(Exception):
    """Answered as HTTP 200 `{"ok": false, "error": ...}` plus any extra fields, like Slack."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def body(self) -> Answer:
        return {"ok": False, "error": self.error, **self.extra}


@dataclass
class Context:
    """What a Web API method handler may use."""

    state: SlackState
    settings: Settings
    base_url: Callable[[], str]
    issue_socket_url: Callable[[], str]


def required(p: Params, name: str) -> str:
    value = p.get(name)
    if value is None or value == "":
        raise SlackError(
            "invalid_arguments", response_metadata={"messages": [f"[ERROR] missing required field: {name}"]}
        )
    return str(value)


def json_param(p: Params, name: str) -> Any:
    """A structured parameter: a list/dict in a JSON body, a JSON string in a form or query string."""
    value = p.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise SlackError(f"invalid_{name}_format" if name == "blocks" else "invalid_arguments") from None
    return value


def channel_for_write(ctx: Context, ref: str) -> Channel:
    channel = ctx.state.resolve_channel(ref)
    if channel is None:
        raise SlackError("channel_not_found")
    if not channel.is_member:
        raise SlackError("not_in_channel")
    return channel


def channel_for_read(ctx: Context, ref: str) -> Channel:
    channel = ctx.state.resolve_channel(ref)
    if channel is None:
        raise SlackError("channel_not_found")
    return channel


def form_parts(content_type: str, body: bytes) -> list[tuple[str, str | None, bytes]]:
    """(field name, filename, bytes) for each part of a multipart/form-data body."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.message_from_bytes(head + body, policy=email.policy.HTTP)
    parts: list[tuple[str, str | None, bytes]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            parts.append((name, part.get_filename(), payload))
    return parts
