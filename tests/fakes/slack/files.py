"""files.* methods, the upload URL, and hosting under /files-pri/ with Slack's login-page pitfall (§4, §5)."""

from __future__ import annotations

import copy
import secrets
import time
from typing import Any
from urllib.parse import quote

from aiohttp import web

from .methods import bot_message
from .protocol import Answer, Context, Params, SlackError, channel_for_write, form_parts, json_param, required
from .recording import record_of
from .state import PendingUpload, StoredFile, Upload

_FILETYPES = {
    "image/png": ("png", "PNG"),
    "image/jpeg": ("jpg", "JPEG"),
    "image/gif": ("gif", "GIF"),
    "image/webp": ("webp", "WebP"),
    "text/plain": ("text", "Plain Text"),
}
LOGIN_PAGE = (
    "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Slack</title></head>"
    "<body><h1>Sign in to Test</h1><form action='/signin' method='post'><input name='email'></form></body></html>"
)


def file_object(
    ctx: Context, *, file_id: str, name: str, mimetype: str, size: int, user: str, title: str | None = None
) -> dict[str, Any]:
    """A Slack file object (§3.4) whose URLs point at this fake."""
    base, team = ctx.base_url(), ctx.settings.workspace.team_id
    filetype, pretty = _FILETYPES.get(mimetype, ("binary", "Binary"))
    now = int(time.time())
    return {
        "id": file_id,
        "created": now,
        "timestamp": now,
        "name": name,
        "title": title or name,
        "mimetype": mimetype,
        "filetype": filetype,
        "pretty_type": pretty,
        "user": user,
        "user_team": team,
        "editable": False,
        "size": size,
        "mode": "hosted",
        "is_external": False,
        "external_type": "",
        "is_public": False,
        "public_url_shared": False,
        "display_as_bot": False,
        "username": "",
        "url_private": f"{base}/files-pri/{team}-{file_id}/{quote(name)}",
        "url_private_download": f"{base}/files-pri/{team}-{file_id}/download/{quote(name)}",
        "permalink": f"{base}/files/{user}/{file_id}/{quote(name)}",
        "permalink_public": f"{base}/files-pub/{team}-{file_id}-{secrets.token_hex(5)}/{quote(name)}",
        "has_rich_preview": False,
        "file_access": "visible",
    }


def get_upload_url(ctx: Context, p: Params) -> Answer:
    filename = required(p, "filename")
    try:
        length = int(required(p, "length"))
    except ValueError:
        raise SlackError("invalid_arguments") from None
    if length > ctx.settings.max_upload_bytes:
        raise SlackError("file_upload_size_restricted")
    file_id = ctx.state.next_id("F")
    key = secrets.token_urlsafe(16)
    ctx.state.pending[file_id] = PendingUpload(file_id, filename, length, key, p.get("alt_txt"))
    return {"upload_url": f"{ctx.base_url()}/upload/v1/{key}", "file_id": file_id}


def complete_upload(ctx: Context, p: Params) -> Answer:
    items = json_param(p, "files")
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) and i.get("id") for i in items):
        raise SlackError("invalid_arguments")
    channel_ref = p.get("channel_id") or (p.get("channels") or "").split(",")[0]
    channel = channel_for_write(ctx, channel_ref) if channel_ref else None
    thread_ts = p.get("thread_ts") or None
    pending = [ctx.state.pending.get(str(i["id"])) for i in items]
    if any(up is None or up.data is None for up in pending):
        raise SlackError("file_not_found")
    me = ctx.settings.workspace.bot_user_id
    objects = []
    for item, up in zip(items, pending, strict=True):
        assert up is not None and up.data is not None
        obj = file_object(
            ctx, file_id=up.file_id, name=up.filename, mimetype=_guess(up.filename), size=len(up.data), user=me
        )
        obj["title"] = item.get("title") or up.filename
        del ctx.state.pending[up.file_id]
        ctx.state.files[up.file_id] = StoredFile(obj, up.data)
        objects.append(obj)
    message_ts = None
    if channel is not None:
        message_ts = ctx.state.next_ts()
        share = {"ts": message_ts, "channel_name": channel.name, "team_id": ctx.settings.workspace.team_id}
        share.update({"share_user_id": me, "reply_users": [], "reply_users_count": 0, "reply_count": 0})
        if thread_ts:
            share["thread_ts"] = thread_ts
        for obj in objects:
            obj["channels"] = [channel.id]
            obj["shares"] = {"private" if channel.is_private else "public": {channel.id: [share]}}
        fields = {"text": p.get("initial_comment") or "", "files": copy.deepcopy(objects), "upload": True}
        message = bot_message(ctx, {**fields, "display_as_bot": False}, ts=message_ts, thread_ts=thread_ts)
        ctx.state.add(channel.id, message)
    for obj, up in zip(objects, pending, strict=True):
        assert up is not None and up.data is not None
        ctx.state.uploads.append(
            Upload(
                file_id=obj["id"],
                filename=up.filename,
                title=obj["title"],
                data=up.data,
                channel_id=channel.id if channel else None,
                thread_ts=thread_ts,
                initial_comment=p.get("initial_comment"),
                alt_txt=up.alt_txt,
                message_ts=message_ts,
            )
        )
    # Slack answers with id and title only; the SDK copies files[0] to `file`.
    return {"files": [{"id": o["id"], "title": o["title"]} for o in objects]}


def files_info(ctx: Context, p: Params) -> Answer:
    stored = ctx.state.files.get(required(p, "file"))
    if stored is None:
        raise SlackError("file_not_found")
    return {"file": copy.deepcopy(stored.file), "comments": [], "response_metadata": {"next_cursor": ""}}


METHODS = {
    "files.getUploadURLExternal": ("files:write", get_upload_url),
    "files.completeUploadExternal": ("files:write", complete_upload),
    "files.info": ("files:read", files_info),
}


async def upload(ctx: Context, request: web.Request) -> web.Response:
    """The upload_url: raw bytes (what slack_sdk sends) or a multipart form; only 200 counts as success."""
    body = record_of(request).body
    up = next((u for u in ctx.state.pending.values() if u.upload_key == request.match_info["key"]), None)
    if up is None:
        return web.Response(status=404, text="Not Found", content_type="text/plain")
    if request.content_type == "multipart/form-data":
        body = next((data for _, filename, data in form_parts(request.headers["Content-Type"], body) if filename), b"")
    if len(body) > ctx.settings.max_upload_bytes:
        return web.Response(status=413, text="Request Entity Too Large", content_type="text/plain")
    up.data = body
    return web.Response(text=f"OK - {len(body)}", content_type="text/plain")


async def download(ctx: Context, request: web.Request) -> web.Response:
    """url_private(_download): bytes with the bot token and files:read, else a redirect to the login page."""
    file_id = request.match_info["team_file"].rpartition("-")[2]
    stored = ctx.state.files.get(file_id)
    if stored is None:
        return web.Response(status=404, text="<html><body>File not found</body></html>", content_type="text/html")
    if stored.redirect_to is not None:
        raise web.HTTPFound(stored.redirect_to)
    call = record_of(request)
    authorized = call.token == ctx.settings.bot_token and "files:read" in ctx.settings.scopes
    if not stored.public and not authorized:
        # Slack: no error status, just the sign-in page (text/html) — the classic missing files:read pitfall.
        raise web.HTTPFound(f"{ctx.base_url()}/?redir={quote(request.path_qs)}")
    headers = {"Content-Type": stored.file["mimetype"]}
    if "/download/" in request.path:
        headers["Content-Disposition"] = f'attachment; filename="{stored.file["name"]}"'
    return web.Response(body=stored.data, headers=headers)


async def login_page(request: web.Request) -> web.Response:
    return web.Response(text=LOGIN_PAGE, content_type="text/html")


def _guess(filename: str) -> str:
    extension = filename.rpartition(".")[2].lower()
    by_extension = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif"}
    by_extension |= {"webp": "image/webp", "txt": "text/plain"}
    return by_extension.get(extension, "application/octet-stream")
