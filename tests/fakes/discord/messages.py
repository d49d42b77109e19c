"""Message objects: build them from REST bodies and uploads, validate them as Discord does, edit them."""

from __future__ import annotations

import copy
import hashlib
import io
import mimetypes
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .payloads import user_payload
from .state import DiscordState, User, now_iso
from .wire import MAX_REQUEST_BYTES, DiscordError, UploadedFile, invalid_form, too_large

MAX_CONTENT = 2000
EPHEMERAL, LOADING, HAS_THREAD = 1 << 6, 1 << 7, 1 << 5
DEFAULT, REPLY, THREAD_CREATED = 0, 19, 18
_SENDABLE_FLAGS = (1 << 2) | EPHEMERAL | (1 << 12) | (1 << 15)  # suppress embeds, ephemeral, silent, components v2
_MENTION = re.compile(r"<@!?(\d+)>")


def cdn_signature(attachment_id: str) -> str:
    return hashlib.sha256(f"fake-discord:{attachment_id}".encode()).hexdigest()[:32]


def attachment_object(
    state: DiscordState,
    base_url: str,
    folder: str,
    upload: UploadedFile,
    *,
    description: str | None = None,
    ephemeral: bool = False,
) -> dict[str, Any]:
    """Store the bytes and describe them like Discord: signed CDN URLs, sniffed content type, image size.

    `folder` is `attachments/{channel_id}` for messages, `ephemeral-attachments/{application_id}` for command options.
    """
    attachment_id = state.ids.next()
    state.blobs[attachment_id] = upload.data
    # Discord derives content_type itself; discord.py uploads everything as application/octet-stream.
    content_type = mimetypes.guess_type(upload.filename)[0] or upload.content_type or "application/octet-stream"
    url = (
        f"{base_url}/{folder}/{attachment_id}/{upload.filename}"
        f"?ex=ffffffff&is=00000000&hm={cdn_signature(attachment_id)}&"
    )
    found: dict[str, Any] = {
        "id": attachment_id,
        "filename": upload.filename,
        "size": len(upload.data),
        "url": url,
        "proxy_url": url,
        "content_type": content_type,
    }
    if description:
        found["description"] = description
    if ephemeral:
        found["ephemeral"] = True
    size = _image_size(upload.data) if content_type.startswith("image/") else None
    if size is not None:
        found["width"], found["height"] = size
    return found


def check_uploads(uploads: Iterable[UploadedFile], limit: int) -> None:
    files = list(uploads)
    if any(len(f.data) > limit for f in files) or sum(len(f.data) for f in files) > MAX_REQUEST_BYTES:
        raise too_large()


def new_message(
    state: DiscordState,
    *,
    channel_id: str,
    author: User,
    body: Mapping[str, Any] | None,
    uploads: Mapping[int, UploadedFile],
    base_url: str,
    limit: int,
    extra: Mapping[str, Any] | None = None,
    allow_empty: bool = False,
) -> dict[str, Any]:
    """A new message from a create-message body (JSON or `payload_json`) plus `files[n]`; validated, not stored."""
    body = body or {}
    check_uploads(uploads.values(), limit)
    message: dict[str, Any] = {
        "id": state.ids.next(),
        "channel_id": channel_id,
        "type": DEFAULT,
        "author": user_payload(author),
        "content": "",
        "attachments": [],
        "embeds": [],
        "components": [],
        "mentions": [],
        "mention_roles": [],
        "mention_everyone": False,
        "pinned": False,
        "tts": bool(body.get("tts", False)),
        "timestamp": now_iso(),
        "edited_timestamp": None,
        "flags": int(body.get("flags") or 0) & _SENDABLE_FLAGS,
        **(extra or {}),
    }
    if body.get("nonce") is not None:
        message["nonce"] = body["nonce"]
    _apply(state, message, body, uploads, base_url=base_url, keep=[])
    _reference(state, message, body.get("message_reference"))
    if not (allow_empty or _has_something(message) or body.get("sticker_ids") or body.get("poll")):
        raise DiscordError(400, 50006, "Cannot send an empty message")
    return message


def edit_message(
    state: DiscordState,
    message: dict[str, Any],
    body: Mapping[str, Any] | None,
    uploads: Mapping[int, UploadedFile],
    *,
    base_url: str,
    limit: int,
) -> dict[str, Any]:
    """Apply a PATCH: listed fields replace; `attachments` (if present) says which old attachments survive."""
    body = body or {}
    check_uploads(uploads.values(), limit)
    edited = copy.deepcopy(message)
    keep_ids = {str(a.get("id")) for a in body.get("attachments", [])}
    keep = [a for a in message["attachments"] if "attachments" not in body or a["id"] in keep_ids]
    _apply(state, edited, body, uploads, base_url=base_url, keep=keep)
    if "flags" in body and body["flags"] is not None:
        edited["flags"] = (message["flags"] & ~(1 << 2)) | (int(body["flags"]) & (1 << 2))
    edited["flags"] &= ~LOADING
    edited["edited_timestamp"] = now_iso()
    if not _has_something(edited):
        raise DiscordError(400, 50006, "Cannot send an empty message")
    message.clear()
    message.update(edited)
    return message


def _apply(
    state: DiscordState,
    message: dict[str, Any],
    body: Mapping[str, Any],
    uploads: Mapping[int, UploadedFile],
    *,
    base_url: str,
    keep: list[dict[str, Any]],
) -> None:
    if "content" in body:
        content = body["content"] or ""
        if len(content) > MAX_CONTENT:
            raise invalid_form("content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length.")
        message["content"] = content
        mentioned = [state.users[i] for i in dict.fromkeys(_MENTION.findall(content)) if i in state.users]
        message["mentions"] = [user_payload(u) for u in mentioned]
    if "embeds" in body or "embed" in body:
        embeds = body.get("embeds") or ([body["embed"]] if body.get("embed") else [])
        message["embeds"] = [{"type": "rich", **e} for e in embeds]
    if "components" in body:
        message["components"] = _components(body["components"] or [])
    described = {int(a["id"]): a for a in body.get("attachments", []) if str(a.get("id", "")).isdigit()}
    added = []
    for index, upload in uploads.items():
        meta = described.get(index, {})
        named = UploadedFile(meta.get("filename") or upload.filename, upload.content_type, upload.data)
        added.append(
            attachment_object(
                state, base_url, f"attachments/{message['channel_id']}", named, description=meta.get("description")
            )
        )
    message["attachments"] = [*keep, *added]


def _components(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(rows) > 5:
        raise invalid_form("components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
    seen: set[str] = set()
    counter = 0
    out = copy.deepcopy(rows)
    for r, row in enumerate(out):
        counter += 1
        row.setdefault("id", counter)
        for c, item in enumerate(row.get("components", [])):
            counter += 1
            item.setdefault("id", counter)
            custom_id = item.get("custom_id")
            where = f"components.{r}.components.{c}.custom_id"
            if custom_id is None:
                if item.get("type") == 2 and item.get("style") != 5 and "sku_id" not in item:
                    raise invalid_form(where, "BASE_TYPE_REQUIRED", "This field is required")
                continue
            if len(custom_id) > 100:
                raise invalid_form(where, "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
            if custom_id in seen:
                raise invalid_form(where, "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated")
            seen.add(custom_id)
    return out


def _reference(state: DiscordState, message: dict[str, Any], ref: Mapping[str, Any] | None) -> None:
    if not ref or not ref.get("message_id"):
        return
    channel_id = str(ref.get("channel_id") or message["channel_id"])
    referenced = state.messages.get(channel_id, {}).get(str(ref["message_id"]))
    if referenced is None:
        if ref.get("fail_if_not_exists", True):
            raise invalid_form("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
        return
    guild_id = state.channels[channel_id].guild_id
    message["type"] = REPLY
    message["message_reference"] = {
        "type": 0,
        "message_id": referenced["id"],
        "channel_id": channel_id,
        "guild_id": guild_id,
    }
    message["referenced_message"] = {k: v for k, v in referenced.items() if k != "referenced_message"}


def _has_something(message: Mapping[str, Any]) -> bool:
    return bool(message["content"] or message["embeds"] or message["attachments"] or message["components"])


def _image_size(data: bytes) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # not an image Pillow understands: Discord then omits width/height too
        return None
