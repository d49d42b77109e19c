"""`bananabot chat`: a terminal session through the same engine the chat platforms use."""

from __future__ import annotations

import asyncio
import getpass
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from adapters.console.files import LocalImage
from adapters.console.responder import ConsoleResponder
from bot.dispatcher import dispatch
from bot.models import Invocation, ThreadRef, UserRef
from bot.services import Services
from commands import COMMANDS

HELP = """\
Type a prompt to create or edit the session's image. Also:
  /attach PATH      add a reference image to the next prompt
  /aspect 16:9      /size 2K      /model NAME     options for the next prompt
  /retry  /undo  /upscale [2K|4K]  /variations [N]  /quota  /reset  /help  /quit"""

# Console line -> (command, option name for the argument)
_SESSION_COMMANDS = {"retry": None, "undo": None, "upscale": "size", "variations": "count"}
_PLAIN_COMMANDS = ("quota", "reset")


@dataclass
class ChatState:
    """What the next prompt carries: attachments and one-shot options."""

    attachments: list[LocalImage] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)


def folder_for(session: str) -> str:
    """The session's folder name under the output folder: letters, digits, `-`, `_` and `.` only, so a name like
    `../x` or `/tmp/x` can't write anywhere else."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", session).strip("._") or "session"
    return cleaned[:80]


class ConsoleChat:
    """Reads lines, turns them into invocations, prints the replies."""

    def __init__(
        self,
        services: Services,
        *,
        session: str = "default",
        out_dir: Path | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.services = services
        name = getpass.getuser() or "console"
        self.user = UserRef("console", name, display_name=name, platform_admin=True)
        self.thread = ThreadRef("console", "local", "terminal", session)
        self.responder = ConsoleResponder(
            (out_dir or services.settings.output_dir) / folder_for(session), stdout=stdout, stderr=stderr
        )
        self.out = self.responder.stdout
        self.state = ChatState()

    async def handle(self, line: str) -> bool:
        """Handle one line; False means quit."""
        line = line.strip()
        if not line:
            return True
        if not line.startswith("/"):
            await self._run("imagine", text=line, options=self.state.options, images=tuple(self.state.attachments))
            self.state = ChatState()
            return True
        word, _, arg = line[1:].partition(" ")
        word, arg = word.lower(), arg.strip()
        if word in ("quit", "exit"):
            return False
        if word == "attach":
            self._attach(arg)
        elif word in ("aspect", "size", "model"):
            key = "aspect_ratio" if word == "aspect" else word
            self.state.options[key] = arg
            self._say(f"{word} set to {arg} for the next prompt." if arg else f"/{word} needs a value.")
        elif word in _SESSION_COMMANDS:
            option = _SESSION_COMMANDS[word]
            await self._run(word, options={option: arg} if option and arg else {})
        elif word in _PLAIN_COMMANDS:
            await self._run(word)
        elif word == "help":
            self._say(HELP)
        else:
            self._say(f"Unknown command /{word}. Type /help.")
        return True

    async def run(self, stdin: TextIO | None = None) -> None:
        source = stdin or sys.stdin
        while True:
            line = await asyncio.to_thread(source.readline)
            if not line or not await self.handle(line):
                return

    def _attach(self, arg: str) -> None:
        path = Path(arg).expanduser()
        if not arg or not path.is_file():
            self._say(f"error: no such file: {arg or '(none given)'}")
            return
        self.state.attachments.append(LocalImage(path))
        self._say(f"attached {path.name} ({len(self.state.attachments)} for the next prompt)")

    async def _run(
        self,
        command: str,
        *,
        text: str = "",
        options: dict[str, str] | None = None,
        images: tuple[LocalImage, ...] = (),
    ) -> None:
        invocation = Invocation(
            command=command,
            user=self.user,
            thread=self.thread,
            text=text,
            images=images,
            options=dict(options or {}),
            upload_limit=50 * 1024 * 1024,
        )
        await dispatch(invocation, self.responder, self.services, COMMANDS)

    def _say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()
