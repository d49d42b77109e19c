"""Core fixtures: real services (SQLite in tmp_path, the real Gemini client) against the fake Gemini."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.config import Settings
from bot.dispatcher import dispatch
from bot.models import ImageRef, Invocation, Reply, ThreadRef, UserRef
from bot.services import Services, build_services
from commands import COMMANDS
from tests.fakes.chat import RecordingResponder
from tests.fakes.gemini import FakeGemini

NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ALICE = UserRef("console", "alice", display_name="Alice")
BOB = UserRef("console", "bob", display_name="Bob")
THREAD = ThreadRef("console", "local", "terminal", "t1")


class Clock:
    def __init__(self, now: datetime = NOON) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_settings(fake: FakeGemini, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "gemini_api_key": fake.api_key,
        "gemini_base_url": fake.base_url,
        "database_url": f"sqlite:///{tmp_path / 'bananabot.db'}",
        "output_dir": tmp_path / "out",
        "gemini_max_attempts": 2,
        "gemini_deadline_seconds": 20,
        "user_daily_credits": 50,
        "user_monthly_credits": 500,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make_services(fake_gemini: FakeGemini, tmp_path: Path, clock: Clock):
    opened: list[Services] = []

    async def factory(**overrides: Any) -> Services:
        services = await build_services(make_settings(fake_gemini, tmp_path, **overrides), clock=clock)
        opened.append(services)
        return services

    yield factory
    for services in opened:  # closing twice is harmless; an unclosed store keeps its thread (and pytest) alive
        await services.close(drain_timeout=5)


@pytest.fixture
async def services(make_services) -> AsyncIterator[Services]:
    built = await make_services()
    yield built
    await built.close()


@pytest.fixture
def responder() -> RecordingResponder:
    return RecordingResponder()


Run = Callable[..., Any]


@pytest.fixture
def run(services: Services, responder: RecordingResponder) -> Run:
    async def go(
        command: str,
        text: str = "",
        *,
        user: UserRef = ALICE,
        thread: ThreadRef | None = THREAD,
        images: tuple[ImageRef, ...] = (),
        on: Services | None = None,
        to: RecordingResponder | None = None,
        opts: dict[str, str] | None = None,
        **options: str,
    ) -> list[Reply]:
        inv = Invocation(command, user, thread, text, images, {**options, **(opts or {})})
        return await dispatch(inv, to or responder, on or services, COMMANDS)

    return go


def png_bytes(width: int = 64, height: int = 64, colour: tuple[int, int, int] = (10, 200, 90)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def size_of(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def die_after(db: str, body: str) -> None:
    """A separate process opens the store at `db`, runs `body` (async code that sees `store`, `now` = NOON, and
    `owner`, its own owner id) and is killed with SIGKILL: whatever it left behind stays as a crash leaves it."""
    lines = "".join(f"    {line}\n" for line in textwrap.dedent(body).strip().splitlines())
    script = (
        "import asyncio, os, signal\n"
        "from datetime import datetime, timedelta, UTC\n"
        "from bot.store import open_store\nfrom bot.store.base import Limits, TurnRow\n"
        "from bot.quotas import instance_owner\n"
        "async def main():\n"
        f"    store = open_store({db!r}); await store.open()\n"
        "    now, owner = datetime(2026, 11, 21, 12, tzinfo=UTC), instance_owner()\n"
        f"{lines}"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "asyncio.run(main())\n"
    )
    killed = subprocess.run([sys.executable, "-c", script], check=False, cwd=os.getcwd(), timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed
