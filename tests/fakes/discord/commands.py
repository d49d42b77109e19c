"""REST: application commands (bulk overwrite, list, create), validated like Discord does on sync."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from .hub import Hub
from .wire import CALL, DiscordError, RecordedCall, invalid_form, json_response

_NAME = re.compile(r"^[-_\w]{1,32}$")
_CHAT_INPUT = 1


class CommandRoutes:
    """`/applications/{app}/commands` and `/applications/{app}/guilds/{guild}/commands`."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.state = hub.state

    def routes(self) -> list[web.RouteDef]:
        plain = "/applications/{application_id}/commands"
        guild = "/applications/{application_id}/guilds/{guild_id}/commands"
        return [
            *(web.get(p, self.list) for p in (plain, guild)),
            *(web.put(p, self.overwrite) for p in (plain, guild)),
            *(web.post(p, self.upsert) for p in (plain, guild)),
            *(web.delete(p + "/{command_id}", self.delete) for p in (plain, guild)),
        ]

    def _scope(self, request: web.Request) -> str | None:
        if request.match_info["application_id"] != self.state.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        guild_id = request.match_info.get("guild_id")
        if guild_id is not None:
            self.state.guild(guild_id)
        return guild_id

    def _store(self, guild_id: str | None, commands: list[dict[str, Any]]) -> None:
        if guild_id is None:
            self.state.global_commands = commands
        else:
            self.state.guild_commands[guild_id] = commands

    async def list(self, request: web.Request) -> web.Response:
        return json_response(self.state.commands(self._scope(request)))

    async def overwrite(self, request: web.Request) -> web.Response:
        guild_id = self._scope(request)
        body = request[CALL].json
        if not isinstance(body, list):
            raise invalid_form("_root", "MODEL_TYPE_CONVERT", "Only iterables may be used in a ListType")
        old = {(c["name"], c.get("type", 1)): c for c in self.state.commands(guild_id)}
        commands = []
        for index, raw in enumerate(body):
            _validate(raw, f"{index}")
            previous = old.get((raw["name"], raw.get("type", _CHAT_INPUT)))
            commands.append(self._materialize(raw, guild_id, previous))
        names = [(c["name"], c["type"]) for c in commands]
        if len(set(names)) != len(names):
            raise DiscordError(400, 50035, "Invalid Form Body", errors={"_errors": [_duplicate()]})
        self._store(guild_id, commands)
        return json_response(commands)

    async def upsert(self, request: web.Request) -> web.Response:
        guild_id = self._scope(request)
        call: RecordedCall = request[CALL]
        raw = call.json or {}
        _validate(raw, "")
        existing = self.state.commands(guild_id)
        previous = next((c for c in existing if (c["name"], c["type"]) == (raw["name"], raw.get("type", 1))), None)
        command = self._materialize(raw, guild_id, previous)
        self._store(guild_id, [c for c in existing if c is not previous] + [command])
        return json_response(command, status=200 if previous else 201)

    async def delete(self, request: web.Request) -> web.Response:
        guild_id = self._scope(request)
        existing = self.state.commands(guild_id)
        kept = [c for c in existing if c["id"] != request.match_info["command_id"]]
        if len(kept) == len(existing):
            raise DiscordError(404, 10063, "Unknown application command")
        self._store(guild_id, kept)
        return web.Response(status=204)

    def _materialize(
        self, raw: dict[str, Any], guild_id: str | None, previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        command = {
            "type": _CHAT_INPUT,
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "nsfw": False,
            **raw,
            "id": previous["id"] if previous else self.state.ids.next(),
            "application_id": self.state.application_id,
            "version": self.state.ids.next(),
        }
        if command["default_member_permissions"] is not None:  # sent as int or str, always answered as str
            command["default_member_permissions"] = str(int(command["default_member_permissions"]))
        if guild_id is not None:
            command["guild_id"] = guild_id
        else:
            command.setdefault("contexts", None)
            command.setdefault("integration_types", [0])
        return command


def _validate(command: Any, where: str) -> None:
    if not isinstance(command, dict) or "name" not in command:
        raise _form(where, "name", "BASE_TYPE_REQUIRED", "This field is required")
    name = command["name"]
    if command.get("type", _CHAT_INPUT) == _CHAT_INPUT:
        if not isinstance(name, str) or not _NAME.match(name) or name != name.lower():
            raise _form(where, "name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        if not 1 <= len(command.get("description") or "") <= 100:
            raise _form(where, "description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    _validate_options(command.get("options") or [], f"{where}.options" if where else "options")


def _validate_options(options: list[dict[str, Any]], where: str) -> None:
    if len(options) > 25:
        raise invalid_form(where, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    seen_optional = False
    for i, option in enumerate(options):
        if not _NAME.match(option.get("name", "")) or option["name"] != option["name"].lower():
            raise invalid_form(f"{where}.{i}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        if not 1 <= len(option.get("description") or "") <= 100:
            raise invalid_form(f"{where}.{i}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100.")
        if len(option.get("choices") or []) > 25:
            raise invalid_form(f"{where}.{i}.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        if option.get("type") in (1, 2):
            _validate_options(option.get("options") or [], f"{where}.{i}.options")
        elif option.get("required"):
            if seen_optional:
                raise invalid_form(
                    f"{where}.{i}", "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID", "Required options must be first"
                )
        else:
            seen_optional = True


def _form(where: str, key: str, code: str, message: str) -> DiscordError:
    return invalid_form(f"{where}.{key}" if where else key, code, message)


def _duplicate() -> dict[str, str]:
    return {"code": "APPLICATION_COMMANDS_DUPLICATE_NAME", "message": "Application command names must be unique"}
