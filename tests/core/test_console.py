"""`bananabot chat` as a user runs it: a real process, stdin lines, images saved and printed, fake Gemini behind."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

from PIL import Image

from adapters.console.chat import ConsoleChat
from bot.catalog import FLASH_31
from tests.core.conftest import png_bytes
from tests.fakes.gemini import FakeGemini


async def chat(fake: FakeGemini, tmp_path: Path, lines: list[str], *args: str) -> tuple[int, str, str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BANANABOT_", "GEMINI_", "DISCORD_", "SLACK_"))},
        "GEMINI_API_KEY": fake.api_key,
        "GEMINI_BASE_URL": fake.base_url,
        "BANANABOT_DATABASE_URL": f"sqlite:///{tmp_path / 'chat.db'}",
        "BANANABOT_OUTPUT_DIR": str(tmp_path / "out"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "chat",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(process.communicate("\n".join(lines).encode() + b"\n"), timeout=120)
    return process.returncode or 0, out.decode(), err.decode()


def images_in(output: str) -> list[Path]:
    return [Path(line.removeprefix("image: ")) for line in output.splitlines() if line.startswith("image: ")]


async def test_a_whole_console_session(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    reference = tmp_path / "ref.png"
    reference.write_bytes(png_bytes(300, 200))
    script = [
        "a red fox in the snow",
        f"/attach {reference}",
        "/aspect 3:2",
        "make it night time, with this moon",
        "/undo",
        "/retry",
        "/upscale 4K",
        "/variations 2",
        "/quota",
    ]
    code, out, err = await chat(fake_gemini, tmp_path, script)

    assert code == 0, err
    paths = images_in(out)
    # imagine, edit, undo (re-shows the first), retry, upscale, 2 variations
    assert len(paths) == 7, out
    sizes = [Image.open(p).size for p in paths]
    assert sizes[0] == FLASH_31.dimensions("1K", "1:1")
    assert sizes[1] == FLASH_31.dimensions("1K", "3:2")
    assert sizes[2] == sizes[0]  # undo shows the previous image again
    assert sizes[3] == FLASH_31.dimensions("1K", "1:1")  # retry of the first prompt
    assert sizes[4] == FLASH_31.dimensions("4K", "1:1")
    assert paths[2] == paths[0] and len(set(paths)) == 6  # undo re-posts the first turn's image itself
    assert "Today: 41 of 50 credits left" in out or "credits left" in out
    edit = fake_gemini.requests[1].body["contents"][-1]["parts"]
    assert any("inlineData" in p for p in edit) and edit[-1]["text"] == "make it night time, with this moon"
    assert all(r.status == 200 for r in fake_gemini.requests)


async def test_the_session_survives_a_restart_of_the_console(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    await chat(fake_gemini, tmp_path, ["a snowman"], "--session", "winter")
    code, out, err = await chat(fake_gemini, tmp_path, ["give him a hat"], "--session", "winter")

    assert code == 0, err
    assert len(images_in(out)) == 1
    last = fake_gemini.requests[-1]
    assert last.status == 200 and len(last.body["contents"]) == 3


async def test_without_a_key_chat_says_what_to_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "BANANABOT_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    _, err = await process.communicate()
    assert process.returncode == 2
    assert b"GEMINI_API_KEY" in err


async def test_a_session_name_cannot_write_outside_the_output_folder(make_services, tmp_path: Path) -> None:
    services = await make_services()
    out_dir = tmp_path / "out"
    chat = ConsoleChat(services, session="../../escaped", out_dir=out_dir, stdout=io.StringIO(), stderr=io.StringIO())
    await chat.handle("a red fox")

    assert chat.responder.saved
    assert all(out_dir.resolve() in path.resolve().parents for path in chat.responder.saved)


async def test_an_attachment_deleted_after_attach_is_refused_by_name(make_services, tmp_path: Path) -> None:
    services = await make_services()
    ref = tmp_path / "ref.png"
    ref.write_bytes(png_bytes(100, 100))
    stdout = io.StringIO()
    chat = ConsoleChat(services, out_dir=tmp_path / "out", stdout=stdout, stderr=io.StringIO())
    await chat.handle(f"/attach {ref}")
    ref.unlink()
    await chat.handle("use this")

    assert "I can't read “ref.png” any more" in stdout.getvalue()
    assert "Something went wrong" not in stdout.getvalue()
