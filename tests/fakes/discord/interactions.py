"""Interaction callbacks and the interaction webhook (follow-ups, `@original`), with Discord's deadlines (§7)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .hub import FakeInteraction, Hub, InteractionResponse, ResponseKind
from .messages import EPHEMERAL, LOADING, edit_message, new_message
from .payloads import user_payload
from .wire import CALL, UPLOADS, DiscordError, RecordedCall, UploadedFile, invalid_form, json_response, unknown

# The server appends the record to `interaction.responses` with its status once the answer is known.
RESPONSE_RECORD: web.RequestKey[tuple[FakeInteraction, InteractionResponse]] = web.RequestKey("fake_discord_response")
COMMAND, COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 2, 3, 4, 5
MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE, CHOICES, MODAL = 4, 5, 6, 7, 8, 9
_ALLOWED = {
    COMMAND: {MESSAGE, DEFERRED_MESSAGE, MODAL},
    COMPONENT: {MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE, MODAL},
    AUTOCOMPLETE: {CHOICES},
    MODAL_SUBMIT: {MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE},
}


class InteractionRoutes:
    """`POST /interactions/{id}/{token}/callback` and `/webhooks/{app}/{token}[/messages/{id|@original}]`.

    These authenticate by the token in the path; discord.py sends no Authorization header here.
    """

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.state = hub.state

    def routes(self) -> list[web.RouteDef]:
        hook = "/webhooks/{application_id}/{token}"
        return [
            web.post("/interactions/{interaction_id}/{token}/callback", self.callback),
            web.post(hook, self.followup),
            web.get(hook + "/messages/{message_id}", self.get),
            web.patch(hook + "/messages/{message_id}", self.edit),
            web.delete(hook + "/messages/{message_id}", self.delete),
        ]

    async def callback(self, request: web.Request) -> web.Response:
        call: RecordedCall = request[CALL]
        found = self.hub.interactions.get(request.match_info["interaction_id"])
        if found is None or found.token != request.match_info["token"]:
            raise unknown("interaction")
        interaction = found
        body = call.json if isinstance(call.json, dict) else {}
        record = self._record(interaction, "callback", request, type_=body.get("type"))
        if interaction.acknowledged:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        if record.elapsed > self.hub.ack_deadline:  # the token died at the 3 s mark
            raise unknown("interaction")
        callback_type = body.get("type")
        if callback_type not in _ALLOWED.get(interaction.type, set()):
            raise invalid_form("type", "INTERACTION_CALLBACK_TYPE_INVALID", "Invalid interaction callback type")
        message = await self._answer(interaction, int(callback_type), body.get("data") or {}, request[UPLOADS])
        interaction.callback_type = callback_type
        interaction.acknowledged_at = self.hub.now()
        record.message_id = interaction.original_message_id
        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        return json_response(self._callback_response(interaction, int(callback_type), message))

    async def _answer(
        self, interaction: FakeInteraction, callback_type: int, data: dict[str, Any], uploads: dict[int, UploadedFile]
    ) -> dict[str, Any] | None:
        if callback_type in (MESSAGE, DEFERRED_MESSAGE):
            flags = int(data.get("flags") or 0)
            body = {"content": ""} if callback_type == DEFERRED_MESSAGE else data
            message = self._new(interaction, body, uploads, allow_empty=callback_type == DEFERRED_MESSAGE)
            if callback_type == DEFERRED_MESSAGE:
                message["flags"] = LOADING | (flags & EPHEMERAL)
                interaction.loading = True
            interaction.original_message_id = message["id"]
            await self.hub.publish(message)
            return message
        if callback_type in (DEFERRED_UPDATE, UPDATE):
            clicked = interaction.payload["message"]
            interaction.original_message_id = clicked["id"]
            if callback_type == UPDATE:
                stored = self.state.message(interaction.channel_id, clicked["id"])
                limit = interaction.payload["attachment_size_limit"]
                edit_message(self.state, stored, data, uploads, base_url=self.hub.base_url, limit=limit)
                await self.hub.publish_update(stored)
                return stored
        return None

    def _callback_response(
        self, interaction: FakeInteraction, callback_type: int, message: dict[str, Any] | None
    ) -> dict[str, Any]:
        about: dict[str, Any] = {"id": interaction.id, "type": interaction.type}
        if message is not None:
            about["response_message_id"] = message["id"]
            about["response_message_loading"] = bool(message["flags"] & LOADING)
            about["response_message_ephemeral"] = bool(message["flags"] & EPHEMERAL)
        resource: dict[str, Any] = {"type": callback_type}
        if message is not None and callback_type in (MESSAGE, UPDATE):
            resource["message"] = message
        return {"interaction": about, "resource": resource}

    async def followup(self, request: web.Request) -> web.Response:
        call: RecordedCall = request[CALL]
        interaction = self._by_token(request)
        record = self._record(interaction, "followup", request)
        if not interaction.acknowledged:
            raise unknown("webhook")
        body = call.json if isinstance(call.json, dict) else {}
        if interaction.loading and interaction.original_message_id is not None:
            # The first follow-up after a type-5 defer replaces the "thinking…" message (§6.5).
            message = await self._edit(interaction, interaction.original_message_id, body, request[UPLOADS])
        else:
            message = self._new(interaction, body, request[UPLOADS])
            interaction.followup_ids.append(message["id"])
            await self.hub.publish(message)
        record.message_id = message["id"]
        if request.query.get("wait", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        return json_response(message)

    async def get(self, request: web.Request) -> web.Response:
        interaction = self._by_token(request)
        message_id = self._message_id(interaction, request)
        self._record(interaction, "get", request).message_id = message_id
        return json_response(self.state.message(interaction.channel_id, message_id))

    async def edit(self, request: web.Request) -> web.Response:
        call: RecordedCall = request[CALL]
        interaction = self._by_token(request)
        message_id = self._message_id(interaction, request)
        self._record(interaction, "edit", request).message_id = message_id
        body = call.json if isinstance(call.json, dict) else {}
        return json_response(await self._edit(interaction, message_id, body, request[UPLOADS]))

    async def delete(self, request: web.Request) -> web.Response:
        interaction = self._by_token(request)
        message_id = self._message_id(interaction, request)
        self._record(interaction, "delete", request).message_id = message_id
        self.state.message(interaction.channel_id, message_id)
        await self.hub.publish_delete(interaction.channel_id, message_id)
        return web.Response(status=204)

    async def _edit(
        self, interaction: FakeInteraction, message_id: str, body: dict[str, Any], uploads: dict[int, UploadedFile]
    ) -> dict[str, Any]:
        message = self.state.message(interaction.channel_id, message_id)
        limit = interaction.payload["attachment_size_limit"]
        edit_message(self.state, message, body, uploads, base_url=self.hub.base_url, limit=limit)
        if message_id == interaction.original_message_id:
            interaction.loading = False
        await self.hub.publish_update(message)
        return message

    def _new(
        self,
        interaction: FakeInteraction,
        body: dict[str, Any],
        uploads: dict[int, UploadedFile],
        *,
        allow_empty: bool = False,
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "id": interaction.id,
            "type": interaction.type,
            "user": user_payload(self.state.user(interaction.user_id)),
            "authorizing_integration_owners": {"0": interaction.guild_id},
        }
        if interaction.type == COMPONENT:
            metadata["interacted_message_id"] = interaction.payload["message"]["id"]
        extra = {
            "webhook_id": self.state.application_id,
            "application_id": self.state.application_id,
            "interaction_metadata": metadata,
        }
        return new_message(
            self.state,
            channel_id=interaction.channel_id,
            author=self.state.bot,
            body=body,
            uploads=uploads,
            base_url=self.hub.base_url,
            limit=interaction.payload["attachment_size_limit"],
            extra=extra,
            allow_empty=allow_empty,
        )

    def _by_token(self, request: web.Request) -> FakeInteraction:
        if request.match_info["application_id"] != self.state.application_id:
            raise unknown("webhook")
        token = request.match_info["token"]
        interaction = next((i for i in self.hub.interactions.values() if i.token == token), None)
        if interaction is None:
            raise unknown("webhook")
        if self.hub.now() - interaction.dispatched_at > self.hub.token_ttl:
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        return interaction

    def _message_id(self, interaction: FakeInteraction, request: web.Request) -> str:
        wanted = request.match_info["message_id"]
        if wanted == "@original":
            if interaction.original_message_id is None:
                raise unknown("message")
            return interaction.original_message_id
        if wanted != interaction.original_message_id and wanted not in interaction.followup_ids:
            raise unknown("message")
        return wanted

    def _record(
        self, interaction: FakeInteraction, kind: ResponseKind, request: web.Request, *, type_: Any = None
    ) -> InteractionResponse:
        call: RecordedCall = request[CALL]
        record = InteractionResponse(
            kind=kind,
            elapsed=self.hub.now() - interaction.dispatched_at,
            status=0,
            type=type_ if isinstance(type_, int) else None,
            body=call.json,
            files=list(call.files),
        )
        request[RESPONSE_RECORD] = (interaction, record)
        return record
