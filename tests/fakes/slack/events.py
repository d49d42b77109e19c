"""Inbound payloads in Slack's real shapes (reference §3, §9) and request signing (§7)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

Payload = dict[str, Any]

# Payload types that Slack posts as a form with one `payload=<json>` field.
INTERACTIVE_TYPES = frozenset(
    {"block_actions", "block_suggestion", "view_submission", "view_closed", "shortcut", "message_action"}
)
_CHANNEL_TYPES = {"D": "im", "G": "group"}


@dataclass(frozen=True, slots=True)
class Workspace:
    """The ids that appear in every payload."""

    team_id: str = "T0TEAM"
    team_domain: str = "test"
    api_app_id: str = "A0APP"
    bot_user_id: str = "U0BOT"
    bot_id: str = "B0BOT"
    bot_name: str = "bananabot"


def event_callback(ws: Workspace, event: Payload, *, event_id: str, event_time: int | None = None) -> Payload:
    return {
        "token": "x",  # the deprecated verification token; bolt ignores it
        "team_id": ws.team_id,
        "context_team_id": ws.team_id,
        "context_enterprise_id": None,
        "api_app_id": ws.api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time if event_time is not None else int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ws.team_id,
                "user_id": ws.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{event_id}",
    }


def app_mention_event(
    *, user: str, channel: str, text: str, ts: str, thread_ts: str | None, files: list[Payload] | None, team: str
) -> Payload:
    event: Payload = {
        "type": "app_mention",
        "user": user,
        "text": text,
        "ts": ts,
        "team": team,
        "channel": channel,
        "event_ts": ts,
    }
    if thread_ts is not None:  # only when the mention is itself a thread reply (§3.1)
        event["thread_ts"] = thread_ts
    if files:
        event["files"] = files
        event["upload"] = False
    return event


def message_event(
    *,
    user: str,
    channel: str,
    text: str,
    ts: str,
    thread_ts: str | None,
    files: list[Payload] | None,
    subtype: str | None,
    bot_id: str | None,
    team: str,
) -> Payload:
    event: Payload = {"type": "message", "text": text, "user": user, "ts": ts, "team": team}
    if files and subtype is None:
        subtype = "file_share"  # Slack: a user's upload arrives as subtype file_share (§3.3)
    if subtype is not None:
        event["subtype"] = subtype
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
        if thread_ts != ts:
            event["parent_user_id"] = user
    if bot_id is not None:
        event["bot_id"] = bot_id
    if files:
        event["files"] = files
        event["upload"] = False
        event["display_as_bot"] = False
    event.update({"channel": channel, "event_ts": ts, "channel_type": _CHANNEL_TYPES.get(channel[:1], "channel")})
    return event


def message_changed_event(*, channel: str, edited_ts: str, old: Payload, new_text: str, user: str) -> Payload:
    """An edit: Slack sends subtype message_changed with the new message nested inside."""
    message = {**{k: v for k, v in old.items() if k not in ("channel", "event_ts", "channel_type")}}
    message.update({"text": new_text, "edited": {"user": user, "ts": edited_ts}})
    previous = {k: v for k, v in old.items() if k not in ("channel", "event_ts", "channel_type")}
    return {
        "type": "message",
        "subtype": "message_changed",
        "message": message,
        "previous_message": previous,
        "channel": channel,
        "hidden": True,
        "ts": edited_ts,
        "event_ts": edited_ts,
        "channel_type": "channel",
    }


def slash_command(
    ws: Workspace,
    *,
    command: str,
    text: str,
    user: str,
    user_name: str,
    channel: str,
    channel_name: str,
    trigger_id: str,
    response_url: str,
) -> dict[str, str]:
    """The form fields of a slash command (§9.1); Socket Mode sends the same fields as a JSON object."""
    return {
        "token": "x",
        "team_id": ws.team_id,
        "team_domain": ws.team_domain,
        "channel_id": channel,
        "channel_name": channel_name,
        "user_id": user,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": ws.api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def block_actions(
    ws: Workspace,
    *,
    user: str,
    user_name: str,
    channel: str,
    channel_name: str,
    message: Payload,
    action_id: str,
    value: str,
    block_id: str,
    trigger_id: str,
    response_url: str,
) -> Payload:
    """A button click on a message (§9.2)."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user_name, "name": user_name, "team_id": ws.team_id},
        "api_app_id": ws.api_app_id,
        "token": "x",
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id,
        "team": {"id": ws.team_id, "domain": ws.team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": channel_name},
        "message": message,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": action_id, "emoji": True},
                "value": value,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def app_home_opened_event(*, user: str, channel: str, view: Payload | None) -> Payload:
    event: Payload = {"type": "app_home_opened", "user": user, "channel": channel, "tab": "home"}
    event["event_ts"] = f"{time.time():.6f}"
    if view is not None:
        event["view"] = view
    return event


def url_verification(challenge: str) -> Payload:
    return {"token": "x", "challenge": challenge, "type": "url_verification"}


def encode(payload: Payload) -> tuple[str, str]:
    """(body, content type) as Slack sends it: JSON for events, forms for commands and interactivity."""
    if payload.get("type") in INTERACTIVE_TYPES:
        return urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
    if "command" in payload and "type" not in payload:
        return urlencode(payload), "application/x-www-form-urlencoded"
    return json.dumps(payload), "application/json"


def signature(secret: str, timestamp: str, body: str) -> str:
    """X-Slack-Signature: v0= + hex HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return f"v0={digest}"
