"""Pure translation rules of the adapters: flags, mentions, access lists, invite URLs, button ids."""

from __future__ import annotations

import base64

import pytest

from adapters.discord import PERMISSIONS, application_id_from_token, invite_url
from adapters.discord.access import refusal
from adapters.discord.translate import thread_name
from adapters.slack.translate import parse_flags, strip_mention
from bot.config import Settings
from bot.models import Button


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize(
    ("text", "prompt", "options"),
    [
        ("a fox --ar 16:9 --size 2K", "a fox", {"aspect_ratio": "16:9", "size": "2K"}),
        ("--model pro a castle", "a castle", {"model": "pro"}),
        ("no flags here -- really", "no flags here -- really", {}),
        ("a cat --AR 1:1", "a cat", {"aspect_ratio": "1:1"}),
    ],
)
def test_slack_flags(text, prompt, options) -> None:
    assert parse_flags(text) == (prompt, options)


def test_slack_mentions_of_the_bot_only_are_stripped() -> None:
    assert strip_mention("<@UBOT> make it <@UOTHER> blue", "UBOT") == "make it <@UOTHER> blue"
    assert strip_mention("<@UBOT|bananabot> hi", "UBOT") == "hi"


def test_discord_access_lists() -> None:
    open_ = settings()
    assert refusal(open_, guild_id=1, channel_id=2, role_ids=()) is None
    assert "DMs" in (refusal(open_, guild_id=None, channel_id=None, role_ids=()) or "")
    assert refusal(settings(discord_allow_dms=True), guild_id=None, channel_id=None, role_ids=()) is None
    assert refusal(settings(discord_allowed_guilds="1"), guild_id=9, channel_id=2, role_ids=()) is not None
    assert refusal(settings(discord_allowed_channels="2,3"), guild_id=1, channel_id=3, role_ids=()) is None
    assert refusal(settings(discord_allowed_channels="2"), guild_id=1, channel_id=4, role_ids=()) is not None
    roles = settings(discord_allowed_roles="77")
    assert refusal(roles, guild_id=1, channel_id=2, role_ids=("5", "77")) is None
    assert "roles" in (refusal(roles, guild_id=1, channel_id=2, role_ids=("5",)) or "")


def test_discord_invite_url_from_the_token() -> None:
    token = base64.b64encode(b"123456789012345678").decode().rstrip("=") + ".GhIjKl.secret-part"
    app_id = application_id_from_token(token)
    assert app_id == "123456789012345678"
    url = invite_url(app_id)
    assert "client_id=123456789012345678" in url and "applications.commands" in url
    assert f"permissions={PERMISSIONS}" in url and "secret-part" not in url
    assert application_id_from_token("not a token") is None


def test_button_ids_round_trip_and_foreign_ids_are_ignored() -> None:
    turn = "0123456789abcdef0123456789abcdef"
    button = Button("upscale_4k", "Upscale 4K", turn)
    assert Button.command_for(button.custom_id) == ("upscale", {"size": "4K", "turn": turn})
    assert len(button.custom_id) <= 100  # Discord's custom_id limit
    assert Button.command_for("bb:delete_everything:" + turn) is None
    assert Button.command_for("someone-elses-button") is None


def test_thread_names_fit_discord() -> None:
    assert thread_name("  a\n red   fox ") == "a red fox"
    assert len(thread_name("x" * 500)) <= 100
    assert thread_name("") == "image session"
