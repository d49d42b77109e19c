"""REST: channels, messages, reactions, typing and threads, all as the bot (`Authorization: Bot …`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .hub import Hub
from .messages import HAS_THREAD, THREAD_CREATED, edit_message, new_message
from .payloads import channel_payload, thread_payload
from .state import PUBLIC_THREAD, Channel
from .wire import CALL, UPLOADS, DiscordError, RecordedCall, UploadedFile, json_response

SEND_MESSAGES, ADD_REACTIONS, ATTACH_FILES, READ_HISTORY = 1 << 11, 1 << 6, 1 << 15, 1 << 16
CREATE_PUBLIC_THREADS, SEND_IN_THREADS = 1 << 35, 1 << 38


def _call(request: web.Request) -> tuple[RecordedCall, dict[int, UploadedFile]]:
    return request[CALL], request[UPLOADS]


def _no_content() -> web.Response:
    return web.Response(status=204)


class ChannelRoutes:
    """`/channels/...` for the bot user."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.state = hub.state

    def routes(self) -> list[web.RouteDef]:
        base = "/channels/{channel_id}"
        msg = base + "/messages/{message_id}"
        return [
            web.get(base, self.get_channel),
            web.patch(base, self.edit_channel),
            web.get(base + "/messages", self.history),
            web.post(base + "/messages", self.send),
            web.get(msg, self.get_message),
            web.patch(msg, self.edit),
            web.delete(msg, self.delete),
            web.put(msg + "/reactions/{emoji}/@me", self.react),
            web.delete(msg + "/reactions/{emoji}/@me", self.unreact),
            web.post(base + "/typing", self.typing),
            web.post(base + "/threads", self.thread_without_message),
            web.post(msg + "/threads", self.thread_from_message),
            web.put(base + "/thread-members/@me", self.join_thread),
            web.delete(base + "/thread-members/@me", self.leave_thread),
        ]

    def _channel(self, request: web.Request, *needed: int) -> Channel:
        channel = self.state.channel(request.match_info["channel_id"])
        granted = self.state.permissions(channel.guild_id, self.state.bot.id)
        if any(not granted & p for p in needed):
            raise DiscordError(403, 50013, "Missing Permissions")
        return channel

    async def get_channel(self, request: web.Request) -> web.Response:
        return json_response(channel_payload(self._channel(request)))

    async def edit_channel(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        body = _call(request)[0].json or {}
        for key in ("name", "topic", "rate_limit_per_user"):
            if key in body:
                setattr(channel, key, body[key])
        for key in ("archived", "locked", "auto_archive_duration"):
            if key in body and channel.is_thread:
                setattr(channel, key, body[key])
        event = "THREAD_UPDATE" if channel.is_thread else "CHANNEL_UPDATE"
        await self.hub.emit(event, channel_payload(channel), intent=1)
        return json_response(channel_payload(channel))

    async def history(self, request: web.Request) -> web.Response:
        channel = self._channel(request, READ_HISTORY)
        newest_first = list(reversed(self.state.messages.get(channel.id, {}).values()))
        limit = int(request.query.get("limit", "50"))
        if "before" in request.query:
            newest_first = [m for m in newest_first if int(m["id"]) < int(request.query["before"])]
        if "after" in request.query:
            newest_first = [m for m in newest_first if int(m["id"]) > int(request.query["after"])]
        return json_response(newest_first[:limit])

    async def send(self, request: web.Request) -> web.Response:
        call, uploads = _call(request)
        channel = self._channel(request, SEND_IN_THREADS if self._is_thread(request) else SEND_MESSAGES)
        if uploads:
            self._channel(request, ATTACH_FILES)
        self._unarchive(channel)
        message = new_message(
            self.state,
            channel_id=channel.id,
            author=self.state.bot,
            body=call.json,
            uploads=uploads,
            base_url=self.hub.base_url,
            limit=self.state.upload_limit(channel.id),
        )
        await self.hub.publish(message)
        return json_response(message)

    async def get_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request, READ_HISTORY)
        return json_response(self.state.message(channel.id, request.match_info["message_id"]))

    async def edit(self, request: web.Request) -> web.Response:
        call, uploads = _call(request)
        channel = self._channel(request)
        message = self.state.message(channel.id, request.match_info["message_id"])
        if message["author"]["id"] != self.state.bot.id:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        limit = self.state.upload_limit(channel.id)
        edit_message(self.state, message, call.json, uploads, base_url=self.hub.base_url, limit=limit)
        await self.hub.publish_update(message)
        return json_response(message)

    async def delete(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self.state.message(channel.id, request.match_info["message_id"])
        await self.hub.publish_delete(channel.id, message["id"])
        return _no_content()

    async def react(self, request: web.Request) -> web.Response:
        channel = self._channel(request, ADD_REACTIONS)
        message = self.state.message(channel.id, request.match_info["message_id"])
        emoji = request.match_info["emoji"]  # aiohttp has already url-decoded it
        reactions: list[dict[str, Any]] = message.setdefault("reactions", [])
        found = next((r for r in reactions if r["emoji"]["name"] == emoji), None)
        if found is None:
            found = {"emoji": {"id": None, "name": emoji}, "count": 0, "me": False, "burst_colors": []}
            found["count_details"] = {"burst": 0, "normal": 0}
            reactions.append(found)
        if not found["me"]:
            found["me"] = True
            found["count"] += 1
            found["count_details"]["normal"] += 1
            data = {
                "user_id": self.state.bot.id,
                "channel_id": channel.id,
                "message_id": message["id"],
                "guild_id": channel.guild_id,
                "emoji": found["emoji"],
                "burst": False,
                "type": 0,
            }
            await self.hub.emit("MESSAGE_REACTION_ADD", data, intent=1 << 10)
        return _no_content()

    async def unreact(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self.state.message(channel.id, request.match_info["message_id"])
        emoji = request.match_info["emoji"]
        for reaction in message.get("reactions", []):
            if reaction["emoji"]["name"] == emoji and reaction["me"]:
                reaction["me"] = False
                reaction["count"] -= 1
        message["reactions"] = [r for r in message.get("reactions", []) if r["count"] > 0]
        return _no_content()

    async def typing(self, request: web.Request) -> web.Response:
        self._channel(request, SEND_MESSAGES)
        return _no_content()

    async def thread_without_message(self, request: web.Request) -> web.Response:
        parent = self._channel(request, CREATE_PUBLIC_THREADS)
        self._not_a_thread(parent)
        thread = await self.hub.create_thread(parent, _call(request)[0].json or {}, owner_id=self.state.bot.id)
        if thread.type == PUBLIC_THREAD:
            await self._thread_notice(parent, thread)
        return json_response(thread_payload(thread, newly_created=True), status=201)

    async def _thread_notice(self, parent: Channel, thread: Channel) -> None:
        # Discord posts a "started a thread" system message (type 18) in the parent channel for public threads.
        notice = new_message(
            self.state,
            channel_id=parent.id,
            author=self.state.bot,
            body={"content": thread.name},
            uploads={},
            base_url=self.hub.base_url,
            limit=0,
            extra={"type": THREAD_CREATED},
        )
        notice["message_reference"] = {"type": 0, "channel_id": thread.id, "guild_id": parent.guild_id}
        await self.hub.publish(notice)

    async def thread_from_message(self, request: web.Request) -> web.Response:
        parent = self._channel(request, CREATE_PUBLIC_THREADS)
        self._not_a_thread(parent)
        message = self.state.message(parent.id, request.match_info["message_id"])
        if message["id"] in self.state.channels:
            raise DiscordError(400, 160004, "A thread has already been created for this message")
        body = _call(request)[0].json or {}
        thread = await self.hub.create_thread(parent, body, owner_id=self.state.bot.id, message_id=message["id"])
        message["flags"] |= HAS_THREAD
        message["thread"] = thread_payload(thread)
        await self.hub.publish_update(message)
        return json_response(thread_payload(thread, newly_created=True), status=201)

    async def join_thread(self, request: web.Request) -> web.Response:
        thread = self._channel(request)
        thread.member_ids.add(self.state.bot.id)
        return _no_content()

    async def leave_thread(self, request: web.Request) -> web.Response:
        self._channel(request).member_ids.discard(self.state.bot.id)
        return _no_content()

    def _is_thread(self, request: web.Request) -> bool:
        return self.state.channel(request.match_info["channel_id"]).is_thread

    @staticmethod
    def _not_a_thread(channel: Channel) -> None:
        if channel.is_thread:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")

    @staticmethod
    def _unarchive(channel: Channel) -> None:
        if channel.is_thread and channel.archived:
            if channel.locked:
                raise DiscordError(400, 50083, "Thread is archived")
            channel.archived = False  # sending to an archived, unlocked thread unarchives it
