"""Web API methods other than files.*: auth, chat, reactions, conversations, users, bots, views, apps."""

from __future__ import annotations

import copy
from typing import Any

from .protocol import Answer, Context, Params, SlackError, channel_for_read, channel_for_write, json_param, required
from .state import Message

_CREATED = 1700000000


def auth_test(ctx: Context, p: Params) -> Answer:
    ws = ctx.settings.workspace
    return {
        "url": f"https://{ws.team_domain}.slack.com/",
        "team": "Test",
        "user": ws.bot_name,
        "team_id": ws.team_id,
        "user_id": ws.bot_user_id,
        "bot_id": ws.bot_id,
        "is_enterprise_install": False,
    }


def content(ctx: Context, p: Params) -> dict[str, Any]:
    """text/blocks/attachments of a message, validated against Slack's limits (§13)."""
    text = p.get("text") or ""
    blocks = json_param(p, "blocks")
    attachments = json_param(p, "attachments")
    if not text and not blocks and not attachments:
        raise SlackError("no_text")
    if len(text) > ctx.settings.max_text_chars:
        raise SlackError("msg_too_long")
    result: dict[str, Any] = {"text": text}
    if blocks:
        if not isinstance(blocks, list) or not all(isinstance(b, dict) and "type" in b for b in blocks):
            raise SlackError("invalid_blocks_format")
        if len(blocks) > ctx.settings.max_blocks:
            raise SlackError(
                "invalid_blocks", response_metadata={"messages": ["[ERROR] no more than 50 items allowed"]}
            )
        result["blocks"] = blocks
    if attachments:
        result["attachments"] = attachments
    return result


def bot_message(ctx: Context, fields: dict[str, Any], *, ts: str, thread_ts: str | None) -> Message:
    ws = ctx.settings.workspace
    message: Message = {"type": "message", **fields, "user": ws.bot_user_id, "bot_id": ws.bot_id}
    message.update({"app_id": ws.api_app_id, "team": ws.team_id, "ts": ts})
    message["bot_profile"] = {"id": ws.bot_id, "app_id": ws.api_app_id, "name": ws.bot_name, "deleted": False}
    if thread_ts:
        message["thread_ts"] = thread_ts
    return message


def post_message(ctx: Context, p: Params) -> Answer:
    channel = channel_for_write(ctx, required(p, "channel"))
    message = bot_message(ctx, content(ctx, p), ts=ctx.state.next_ts(), thread_ts=p.get("thread_ts") or None)
    ctx.state.add(channel.id, message)
    return {"channel": channel.id, "ts": message["ts"], "message": copy.deepcopy(message)}


def post_ephemeral(ctx: Context, p: Params) -> Answer:
    channel = channel_for_write(ctx, required(p, "channel"))
    user = required(p, "user")
    if user not in ctx.state.users:
        raise SlackError("user_not_in_channel")
    message = bot_message(ctx, content(ctx, p), ts=ctx.state.next_ts(), thread_ts=p.get("thread_ts") or None)
    ctx.state.ephemeral.setdefault(user, []).append({**message, "channel": channel.id})
    return {"message_ts": message["ts"]}


def _own_message(ctx: Context, p: Params, refusal: str) -> tuple[str, Message]:
    channel = channel_for_write(ctx, required(p, "channel"))
    message = ctx.state.find(channel.id, required(p, "ts"))
    if message is None:
        raise SlackError("message_not_found")
    if message.get("bot_id") != ctx.settings.workspace.bot_id:
        raise SlackError(refusal)
    return channel.id, message


def update(ctx: Context, p: Params) -> Answer:
    channel, message = _own_message(ctx, p, "cant_update_message")
    message.pop("blocks", None)
    message.update(content(ctx, p))
    message["edited"] = {"user": ctx.settings.workspace.bot_user_id, "ts": ctx.state.next_ts()}
    return {"channel": channel, "ts": message["ts"], "text": message["text"], "message": copy.deepcopy(message)}


def delete(ctx: Context, p: Params) -> Answer:
    channel, message = _own_message(ctx, p, "cant_delete_message")
    ctx.state.remove(channel, message["ts"])
    return {"channel": channel, "ts": message["ts"]}


def _reaction_target(ctx: Context, p: Params) -> tuple[Message, str]:
    channel = channel_for_write(ctx, required(p, "channel"))
    name = required(p, "name")
    if ":" in name or " " in name:  # the API takes the bare name ("eyes"), not ":eyes:"
        raise SlackError("invalid_name")
    message = ctx.state.find(channel.id, required(p, "timestamp"))
    if message is None:
        raise SlackError("message_not_found")
    return message, name


def reactions_add(ctx: Context, p: Params) -> Answer:
    message, name = _reaction_target(ctx, p)
    me = ctx.settings.workspace.bot_user_id
    reactions: list[dict[str, Any]] = message.setdefault("reactions", [])
    entry = next((r for r in reactions if r["name"] == name), None)
    if entry is None:
        entry = {"name": name, "users": [], "count": 0}
        reactions.append(entry)
    if me in entry["users"]:
        raise SlackError("already_reacted")
    entry["users"].append(me)
    entry["count"] = len(entry["users"])
    return {}


def reactions_remove(ctx: Context, p: Params) -> Answer:
    message, name = _reaction_target(ctx, p)
    me = ctx.settings.workspace.bot_user_id
    reactions: list[dict[str, Any]] = message.get("reactions", [])
    entry = next((r for r in reactions if r["name"] == name and me in r["users"]), None)
    if entry is None:
        raise SlackError("no_reaction")
    entry["users"].remove(me)
    entry["count"] = len(entry["users"])
    message["reactions"] = [r for r in reactions if r["count"]]
    if not message["reactions"]:
        del message["reactions"]
    return {}


def conversations_info(ctx: Context, p: Params) -> Answer:
    channel = channel_for_read(ctx, required(p, "channel"))
    return {
        "channel": {
            "id": channel.id,
            "name": channel.name,
            "name_normalized": channel.name,
            "is_channel": not channel.is_private,
            "is_group": False,
            "is_im": channel.id.startswith("D"),
            "is_private": channel.is_private,
            "is_archived": False,
            "is_general": channel.name == "general",
            "is_member": channel.is_member,
            "created": _CREATED,
            "creator": "U0HUMAN",
            "context_team_id": ctx.settings.workspace.team_id,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }
    }


def conversations_replies(ctx: Context, p: Params) -> Answer:
    channel = channel_for_read(ctx, required(p, "channel"))
    message = ctx.state.find(channel.id, required(p, "ts"))
    if message is None:
        raise SlackError("thread_not_found")
    root = message.get("thread_ts") or message["ts"]
    messages = ctx.state.thread(channel.id, root)
    limit = int(p.get("limit") or 1000)
    return {
        "messages": copy.deepcopy(messages[:limit]),
        "has_more": len(messages) > limit,
        "response_metadata": {"next_cursor": ""},
    }


def users_info(ctx: Context, p: Params) -> Answer:
    user = ctx.state.users.get(required(p, "user"))
    if user is None:
        raise SlackError("user_not_found")
    profile: dict[str, Any] = {"real_name": user.name, "display_name": user.name, "image_72": ""}
    if user.bot_id:
        profile["bot_id"] = user.bot_id
    return {
        "user": {
            "id": user.id,
            "team_id": ctx.settings.workspace.team_id,
            "name": user.name,
            "real_name": user.name,
            "deleted": False,
            "is_bot": user.is_bot,
            "is_admin": False,
            "tz": "Europe/Berlin",
            "tz_offset": 3600,
            "profile": profile,
        }
    }


def bots_info(ctx: Context, p: Params) -> Answer:
    ws = ctx.settings.workspace
    if required(p, "bot") != ws.bot_id:
        raise SlackError("bot_not_found")
    icons = {"image_36": "", "image_48": "", "image_72": ""}
    bot = {"id": ws.bot_id, "deleted": False, "name": ws.bot_name, "updated": _CREATED, "app_id": ws.api_app_id}
    return {"bot": {**bot, "user_id": ws.bot_user_id, "icons": icons}}


def views_publish(ctx: Context, p: Params) -> Answer:
    user = required(p, "user_id")
    if user not in ctx.state.users:
        raise SlackError("user_not_found")
    view = json_param(p, "view")
    if not isinstance(view, dict) or view.get("type") != "home":
        raise SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] view.type must be home"]})
    current = ctx.state.home_views.get(user)
    if p.get("hash") and current is not None and p["hash"] != current["hash"]:
        raise SlackError("hash_conflict")
    ws = ctx.settings.workspace
    published = {
        "id": current["id"] if current else ctx.state.next_id("V"),
        "team_id": ws.team_id,
        "type": "home",
        "blocks": view.get("blocks", []),
        "private_metadata": view.get("private_metadata", ""),
        "callback_id": view.get("callback_id", ""),
        "state": {"values": {}},
        "hash": ctx.state.next_ts().replace(".", "-"),
        "app_id": ws.api_app_id,
        "bot_id": ws.bot_id,
    }
    ctx.state.home_views[user] = published
    return {"view": copy.deepcopy(published)}


def connections_open(ctx: Context, p: Params) -> Answer:
    return {"url": ctx.issue_socket_url()}


METHODS = {
    "auth.test": (None, auth_test),
    "chat.postMessage": ("chat:write", post_message),
    "chat.postEphemeral": ("chat:write", post_ephemeral),
    "chat.update": ("chat:write", update),
    "chat.delete": ("chat:write", delete),
    "reactions.add": ("reactions:write", reactions_add),
    "reactions.remove": ("reactions:write", reactions_remove),
    "conversations.info": ("channels:read", conversations_info),
    "conversations.replies": ("channels:history", conversations_replies),
    "users.info": ("users:read", users_info),
    "bots.info": ("users:read", bots_info),
    "views.publish": (None, views_publish),
    "apps.connections.open": (None, connections_open),
}
