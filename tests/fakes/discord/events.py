"""What simulated users do: INTERACTION_CREATE payloads (slash commands, button clicks) and their messages (§4)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from .hub import FakeInteraction, Hub
from .messages import attachment_object, new_message
from .payloads import channel_payload, member_payload, user_payload
from .wire import UploadedFile

Upload = UploadedFile | tuple[str, str, bytes]
SUB_COMMAND, STRING, INTEGER, BOOLEAN, USER, NUMBER, ATTACHMENT = 1, 3, 4, 5, 6, 10, 11
_PY_TYPES: dict[int, type | tuple[type, ...]] = {
    STRING: str,
    USER: str,
    INTEGER: int,
    BOOLEAN: bool,
    NUMBER: (int, float),
    ATTACHMENT: tuple,
}


def as_upload(upload: Upload) -> UploadedFile:
    return upload if isinstance(upload, UploadedFile) else UploadedFile(*upload)


def interaction(
    hub: Hub, *, type_: int, channel_id: str, user_id: str, data: dict[str, Any], message: dict[str, Any] | None = None
) -> FakeInteraction:
    """A real-shaped interaction (`attachment_size_limit` included: discord.py requires it), registered with the hub."""
    state = hub.state
    channel = state.channel(channel_id)
    guild = state.guild(channel.guild_id)
    member = state.member(guild.id, user_id)
    permissions = str(state.permissions(guild.id, user_id))
    payload: dict[str, Any] = {
        "id": state.ids.next(),
        "application_id": state.application_id,
        "type": type_,
        "token": "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96),
        "version": 1,
        "data": data,
        "guild_id": guild.id,
        "guild": {"id": guild.id, "locale": "en-US", "features": list(guild.features)},
        "channel_id": channel.id,
        "channel": {**channel_payload(channel), "permissions": permissions},
        "member": {**member_payload(state, member), "permissions": permissions},
        "app_permissions": str(state.permissions(guild.id, state.bot.id)),
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "entitlement_sku_ids": [],
        "authorizing_integration_owners": {"0": guild.id},
        "context": 0,
        "attachment_size_limit": guild.upload_limit,
    }
    if message is not None:
        payload["message"] = message
    record = FakeInteraction(
        id=payload["id"],
        token=payload["token"],
        type=type_,
        guild_id=guild.id,
        channel_id=channel.id,
        user_id=user_id,
        payload=payload,
        dispatched_at=hub.now(),
    )
    hub.interactions[record.id] = record
    return record


def command_data(
    hub: Hub,
    command: dict[str, Any],
    options: Mapping[str, Any],
    attachments: Sequence[Upload],
) -> dict[str, Any]:
    """`data` of a slash command: typed options from the registered schema, uploads in `resolved.attachments`.

    A subcommand is given as `{"grant": {"user": id, "credits": 5}}`; a user option as the user's id.
    """
    resolved: dict[str, Any] = {}
    sent = _options(hub, command, command.get("options") or [], options, attachments, resolved)
    data: dict[str, Any] = {"id": command["id"], "name": command["name"], "type": 1, "options": sent}
    if resolved:
        data["resolved"] = resolved
    if "guild_id" in command:
        data["guild_id"] = command["guild_id"]
    return data


def _options(
    hub: Hub,
    command: dict[str, Any],
    schema_list: list[dict[str, Any]],
    options: Mapping[str, Any],
    attachments: Sequence[Upload],
    resolved: dict[str, Any],
) -> list[dict[str, Any]]:
    schema = {o["name"]: o for o in schema_list}
    subcommands = [name for name in options if schema.get(name, {}).get("type") == SUB_COMMAND]
    if subcommands:
        name = subcommands[0]
        inner = _options(hub, command, schema[name].get("options") or [], options[name], attachments, resolved)
        return [{"name": name, "type": SUB_COMMAND, "options": inner}]
    values = dict(options)
    free = [name for name, o in schema.items() if o["type"] == ATTACHMENT and name not in values]
    if len(attachments) > len(free):
        raise ValueError(f"fake-discord: {len(attachments)} attachments but free attachment options are {free}")
    values.update(zip(free, attachments, strict=False))
    sent = []
    for name, value in values.items():
        option = schema.get(name)
        if option is None:
            raise ValueError(f"fake-discord: /{command['name']} has no option {name!r} (has {sorted(schema)})")
        _check_value(option, value)
        if option["type"] == ATTACHMENT:
            folder = f"ephemeral-attachments/{hub.state.application_id}"
            found = attachment_object(hub.state, hub.base_url, folder, as_upload(value), ephemeral=True)
            resolved.setdefault("attachments", {})[found["id"]] = found
            value = found["id"]
        elif option["type"] == USER:
            resolved.setdefault("users", {})[value] = user_payload(hub.state.user(value))
            if "guild_id" in command:
                member = hub.state.member(command["guild_id"], value)
                resolved.setdefault("members", {})[value] = member_payload(hub.state, member, with_user=False)
        sent.append({"name": name, "type": option["type"], "value": value})
    missing = [n for n, o in schema.items() if o.get("required") and n not in values]
    if missing:
        raise ValueError(f"fake-discord: Discord won't send /{command['name']} without required options {missing}")
    return sent


def _check_value(option: dict[str, Any], value: Any) -> None:
    # The Discord client enforces these before anything is sent, so a test asking otherwise is a test bug.
    kind = option["type"]
    expected = _PY_TYPES.get(kind)
    if expected is None:
        raise NotImplementedError(f"fake-discord: option type {kind} is not simulated")
    if isinstance(value, bool) != (kind == BOOLEAN) or not isinstance(value, expected):
        raise ValueError(f"fake-discord: option {option['name']!r} (type {kind}) can't be {value!r}")
    choices = [c["value"] for c in option.get("choices") or []]
    if choices and value not in choices:
        raise ValueError(f"fake-discord: {value!r} is not a choice of {option['name']!r}: {choices}")
    if isinstance(value, str) and not option.get("min_length", 0) <= len(value) <= option.get("max_length", 6000):
        raise ValueError(f"fake-discord: {option['name']!r} length out of range")
    if kind in (INTEGER, NUMBER) and not option.get("min_value", value) <= value <= option.get("max_value", value):
        raise ValueError(f"fake-discord: {option['name']!r} value out of range")


def has_button(message: dict[str, Any], custom_id: str) -> bool:
    stack = list(message.get("components", []))
    while stack:
        component = stack.pop()
        if component.get("custom_id") == custom_id:
            return True
        stack.extend(component.get("components", []))
    return False


def user_message(
    hub: Hub,
    *,
    channel_id: str,
    user_id: str,
    content: str,
    attachments: Sequence[Upload],
    message_reference: str | None,
) -> dict[str, Any]:
    state = hub.state
    channel = state.channel(channel_id)
    state.member(channel.guild_id, user_id)
    body: dict[str, Any] = {"content": content}
    if message_reference is not None:
        body["message_reference"] = {"message_id": message_reference, "channel_id": channel_id}
    return new_message(
        state,
        channel_id=channel_id,
        author=state.user(user_id),
        body=body,
        uploads={i: as_upload(a) for i, a in enumerate(attachments)},
        base_url=hub.base_url,
        limit=state.upload_limit(channel_id),
    )
