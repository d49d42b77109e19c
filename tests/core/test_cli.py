"""The `bananabot` command line: doctor, migrate, quota admin, and the upload-limit re-encode."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import io
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import cli as bot_cli
from bot.catalog import FLASH_31
from bot.gemini import Content, ImageRequest
from bot.maintenance import reclaim_once
from bot.services import build_services
from tests.core.conftest import ALICE, NOON, make_settings
from tests.fakes.gemini import FakeGemini


async def cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BANANABOT_", "GEMINI_", "DISCORD_", "SLACK_"))}
    base["BANANABOT_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**base, **(env or {})},
        cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_doctor_reports_config_and_database_without_secrets(tmp_path: Path, fake_gemini: FakeGemini) -> None:
    secret = "AIza-super-secret-doctor-key"
    code, out, err = await cli(
        tmp_path, "doctor", env={"GEMINI_API_KEY": secret, "GEMINI_BASE_URL": fake_gemini.base_url}
    )
    assert code == 0, out + err
    assert "GEMINI_API_KEY: set" in out and "reachable, schema version" in out
    assert secret not in out + err


async def test_doctor_fails_when_the_key_is_missing(tmp_path: Path) -> None:
    code, out, _ = await cli(tmp_path, "doctor")
    assert code == 1 and "GEMINI_API_KEY: MISSING" in out


async def test_migrate_then_quota_admin_from_the_command_line(tmp_path: Path) -> None:
    code, out, _ = await cli(tmp_path, "migrate")
    assert code == 0 and "schema version" in out
    assert (await cli(tmp_path, "quota", "grant", ALICE.key, "7"))[0] == 0
    assert (await cli(tmp_path, "quota", "block", ALICE.key))[0] == 0
    code, out, _ = await cli(tmp_path, "quota", "show", ALICE.key)
    assert code == 0 and "blocked" in out
    code, _, err = await cli(tmp_path, "quota", "grant", ALICE.key, "lots")
    assert code == 1 and "whole number" in err


async def test_a_bad_setting_is_one_clear_line_naming_its_variable(tmp_path: Path) -> None:
    code, _, err = await cli(tmp_path, "doctor", env={"BANANABOT_USER_DAILY_CREDITS": "many"})
    assert code == 2 and err.startswith("bananabot: configuration error: BANANABOT_USER_DAILY_CREDITS: ")
    code, _, err = await cli(tmp_path, "doctor", env={"BANANABOT_MODEL": "nano-potato"})
    assert code == 2 and err.strip().splitlines() == [
        "bananabot: configuration error: BANANABOT_MODEL: Value error, I don't know the model “nano-potato”. "
        "Choose one of: gemini-3.1-flash-image-preview, gemini-3-pro-image-preview, gemini-2.5-flash-image."
    ]


async def test_a_database_that_cannot_be_opened_is_one_line_without_its_password(tmp_path: Path) -> None:
    settings = {"GEMINI_API_KEY": "k", "DISCORD_TOKEN": "x"}
    for url, why in [
        ("postgresql://ann:hunter2@127.0.0.1:9/db", "ConnectionRefusedError"),
        ("mysql://ann:hunter2@127.0.0.1/db", "unsupported store URL scheme 'mysql'"),
    ]:
        for command in ("run", "migrate", "chat"):
            code, out, err = await cli(tmp_path, command, env={**settings, "BANANABOT_DATABASE_URL": url})
            assert code == 2, (command, err)
            [line] = err.strip().splitlines()
            assert line.startswith(f"bananabot: can't open the database {url.replace('hunter2', '***')}: ")
            assert why in line and "hunter2" not in out + err


async def test_a_secret_with_a_line_break_inside_is_refused_without_being_shown(tmp_path: Path) -> None:
    code, out, err = await cli(tmp_path, "doctor", env={"DISCORD_TOKEN": "MTA-secret-half\nsecond-half"})
    assert code == 2 and "control character" in err
    assert "secret-half" not in out + err


async def test_a_secret_read_with_a_trailing_newline_is_trimmed(make_services, fake_gemini: FakeGemini) -> None:
    services = await make_services(gemini_api_key=f"{fake_gemini.api_key}\n", slack_signing_secret=" sign \r\n")
    signing = services.settings.slack_signing_secret
    assert signing is not None and signing.get_secret_value() == "sign"
    request = ImageRequest(FLASH_31.id, (Content.user("a cat"),))
    assert (await services.gemini.generate(request)).delivered
    assert fake_gemini.requests[0].headers["x-goog-api-key"] == fake_gemini.api_key  # what reached the server


async def test_an_output_over_the_upload_limit_is_reencoded_and_the_reply_says_so(
    services, fake_gemini, responder
) -> None:
    from bot.dispatcher import dispatch
    from bot.models import Invocation
    from commands import COMMANDS
    from tests.core.conftest import THREAD, size_of

    fake_gemini.noise = True  # a 2K noise PNG is ~12 MB
    inv = Invocation("imagine", ALICE, THREAD, "static", options={"size": "2K"}, upload_limit=10 * 1024 * 1024)
    [reply] = await dispatch(inv, responder, services, COMMANDS)

    assert not reply.error, reply.text
    assert len(reply.images[0].data) <= 10 * 1024 * 1024
    assert reply.images[0].mime == "image/jpeg" and size_of(reply.images[0].data) == (2048, 2048)
    assert "Re-encoded as JPEG" in reply.text
    assert (await services.store.usage(ALICE.key, now=NOON)).day_credits == 2


async def test_doctor_masks_passwords_in_endpoint_urls(tmp_path: Path, fake_gemini: FakeGemini) -> None:
    env = {
        "GEMINI_API_KEY": "AIza-doctor",
        "GEMINI_BASE_URL": "http://apiuser:hunter2PASSWORD@127.0.0.1:1/v1beta",
        "DISCORD_TOKEN": "MTIz.discord.token",
        "DISCORD_API_URL": "https://u:discordProxyPW@gateway.example/api/v10",
    }
    _, out, err = await cli(tmp_path, "doctor", env=env)

    assert "GEMINI_BASE_URL: http://apiuser:***@127.0.0.1:1/v1beta" in out
    assert "REST https://u:***@gateway.example/api/v10" in out
    assert "hunter2PASSWORD" not in out + err and "discordProxyPW" not in out + err


async def test_a_health_port_already_taken_is_one_line_naming_its_variable(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))  # the bot binds every interface too
        taken.listen()
        port = taken.getsockname()[1]
        env = {"GEMINI_API_KEY": "AIza-x", "DISCORD_TOKEN": "MTIz.x.y", "BANANABOT_HTTP_PORT": str(port)}
        code, _, err = await cli(tmp_path, "run", env=env)

    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"bananabot: can't serve health checks on BANANABOT_HTTP_PORT={port}: ")
    assert last.endswith("address already in use")
    assert "Traceback" not in err


async def test_quota_refuses_a_user_key_without_its_platform(tmp_path: Path) -> None:
    code, _, err = await cli(tmp_path, "quota", "block", "alice")
    assert code == 1 and "“alice” isn't a user key: write platform:id" in err


async def test_a_reservation_ttl_the_heartbeat_cannot_keep_up_with_is_refused(tmp_path: Path) -> None:
    env = {"BANANABOT_RESERVATION_TTL_SECONDS": "60", "BANANABOT_MAINTENANCE_SECONDS": "60"}
    code, _, err = await cli(tmp_path, "doctor", env=env)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "BANANABOT_RESERVATION_TTL_SECONDS (60) must be at least twice BANANABOT_MAINTENANCE_SECONDS (60)" in err


async def test_a_chat_turn_longer_than_the_reservation_ttl_keeps_its_holds(
    fake_gemini: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `bananabot chat` beats the same heartbeat as `run`: a `run` replica on the same database must not reclaim it.
    settings = make_settings(fake_gemini, tmp_path, reservation_ttl_seconds=5, maintenance_seconds=1)
    fake_gemini.latency = 7.0
    monkeypatch.setattr(sys, "stdin", io.StringIO("a red fox in the snow\n"))
    chat = asyncio.create_task(bot_cli._chat(settings, argparse.Namespace(session="default", out=tmp_path / "out")))
    other = await build_services(settings)
    try:
        await asyncio.sleep(6)  # past the TTL, while the model still works
        reclaimed = await reclaim_once(other)
        assert await chat == 0
        usage = await other.store.usage(f"console:{getpass.getuser() or 'console'}", now=datetime.now(UTC))
    finally:
        await other.close()
    assert reclaimed == 0
    assert list((tmp_path / "out" / "default").glob("*.png")) and usage.day_credits == 1
