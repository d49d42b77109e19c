"""What a command is: a name, options adapters can render, and a platform-neutral handler."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.models import Invocation, Reply

if TYPE_CHECKING:
    from bot.services import Services

Handler = Callable[[Invocation, "Services"], Awaitable[Reply | list[Reply]]]
_NAME = re.compile(r"^[-_a-z0-9]{1,32}$")


@dataclass(frozen=True, slots=True)
class Option:
    """A command option; `choices` lets Discord show a picker and the console validate."""

    name: str
    description: str
    choices: tuple[str, ...] = ()
    required: bool = False


@dataclass(frozen=True, slots=True)
class Command:
    """A platform-neutral command.

    Attributes:
        name: 1-32 chars of [-_a-z0-9] (Discord's rule, the strictest).
        description: At most 100 characters.
        handler: `(Invocation, Services) -> Reply | list[Reply]`.
        session: True when it runs a turn in the thread's session (queued, one at a time per thread).
        admin: True when only admins may run it.
        options: Options for adapters to render.
    """

    name: str
    description: str
    handler: Handler
    session: bool = False
    admin: bool = False
    options: tuple[Option, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"bad command name {self.name!r}")
        if not 1 <= len(self.description) <= 100:
            raise ValueError(f"description of {self.name} must be 1-100 characters")
