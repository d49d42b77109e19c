"""Platform-neutral values that cross the adapter boundary: who asked, where, what, and what to answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, Protocol

Platform = Literal["discord", "slack", "console"]
EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ThreadRef:
    """Where a session lives.

    Attributes:
        platform: Which adapter.
        workspace_id: Discord guild id, Slack team id ("" for DMs and the console).
        channel_id: The parent channel.
        thread_id: Discord thread channel id; Slack root message ts (never a reply ts).
    """

    platform: Platform
    workspace_id: str
    channel_id: str
    thread_id: str

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.workspace_id}:{self.channel_id}:{self.thread_id}"


@dataclass(frozen=True, slots=True)
class UserRef:
    """Who asked. Discord and Slack user ids are unique across servers/workspaces, so the key needs no workspace."""

    platform: Platform
    user_id: str
    display_name: str = ""
    workspace_id: str = ""
    roles: tuple[str, ...] = ()
    platform_admin: bool = False  # the console's operator; chat platforms rely on BANANABOT_ADMINS

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.user_id}"

    @property
    def mention(self) -> str:
        return self.display_name or self.user_id


class ImageRef(Protocol):
    """An attachment the user sent, not downloaded yet: the core checks type and size before `read()`."""

    @property
    def filename(self) -> str: ...

    @property
    def declared_mime(self) -> str | None: ...

    @property
    def declared_size(self) -> int | None: ...

    async def read(self, max_bytes: int) -> bytes:
        """Download at most `max_bytes`; raise `bot.images.ImageRejected` past it."""
        ...


@dataclass(frozen=True, slots=True)
class Invocation:
    """One request from a user, already translated from the platform payload.

    Attributes:
        command: Command name ("imagine", "retry", ...).
        user: Who asked.
        thread: The session's thread (None for commands outside one, e.g. /quota in a channel).
        text: The prompt or the command's argument text.
        images: Attachments, lazily readable.
        options: Named options (aspect_ratio, size, model, count, turn, target, ...).
        event_id: Platform event id, when the platform may redeliver it.
        upload_limit: Largest file the platform accepts here; bigger results are re-encoded to fit.
    """

    command: str
    user: UserRef
    thread: ThreadRef | None = None
    text: str = ""
    images: tuple[ImageRef, ...] = ()
    options: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    event_id: str | None = None
    upload_limit: int = 25 * 1024 * 1024

    def option(self, name: str) -> str | None:
        value = self.options.get(name)
        return value.strip() if value and value.strip() else None


ButtonAction = Literal["retry", "undo", "upscale_2k", "upscale_4k", "variations"]
_BUTTON_COMMANDS: dict[str, tuple[str, dict[str, str]]] = {
    "retry": ("retry", {}),
    "undo": ("undo", {}),
    "upscale_2k": ("upscale", {"size": "2K"}),
    "upscale_4k": ("upscale", {"size": "4K"}),
    "variations": ("variations", {}),
}


@dataclass(frozen=True, slots=True)
class Button:
    """A result button; `turn_id` makes it work after restarts (platforms store it in custom_id / value)."""

    action: ButtonAction
    label: str
    turn_id: str

    @property
    def custom_id(self) -> str:
        return f"bb:{self.action}:{self.turn_id}"

    @staticmethod
    def parse(custom_id: str) -> tuple[str, str] | None:
        """("retry", turn_id) from a custom id, or None if it isn't ours."""
        prefix, _, rest = custom_id.partition(":")
        action, _, turn_id = rest.partition(":")
        return (action, turn_id) if prefix == "bb" and action and turn_id else None

    @staticmethod
    def command_for(custom_id: str) -> tuple[str, dict[str, str]] | None:
        """The command and options a click runs (the turn included), or None for a button that isn't ours."""
        parsed = Button.parse(custom_id)
        if parsed is None or parsed[0] not in _BUTTON_COMMANDS:
            return None
        command, options = _BUTTON_COMMANDS[parsed[0]]
        return command, {**options, "turn": parsed[1]}


@dataclass(frozen=True, slots=True)
class OutImage:
    """An image to post."""

    data: bytes
    mime: str
    filename: str
    width: int = 0
    height: int = 0


@dataclass(frozen=True, slots=True)
class Reply:
    """What the bot answers; adapters honour what their platform can (ephemeral, buttons)."""

    text: str = ""
    images: tuple[OutImage, ...] = ()
    buttons: tuple[Button, ...] = ()
    ephemeral: bool = False
    error: bool = False
    receipts: tuple[str, ...] = ()  # turns charged once this reply is posted (the core settles them)


ProgressKind = Literal["queued", "started", "finished", "failed"]


@dataclass(frozen=True, slots=True)
class Progress:
    """A turn's progress: queued (with how many are ahead), started, finished or failed."""

    kind: ProgressKind
    position: int = 0
    elapsed: float = 0.0
    detail: str = ""
