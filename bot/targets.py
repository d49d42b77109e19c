"""What a session command acts on: the thread's session, the turn a button or reply names, and its options."""

from __future__ import annotations

import re

from bot.engine import out_image
from bot.errors import UserError
from bot.images import ImageRejected
from bot.models import Invocation, OutImage
from bot.services import Services
from bot.sessions import final_image_refs
from bot.store.base import SessionRow, TurnRow

_RATIO = re.compile(r"^\s*(\d{1,2})\s*[:x×/]\s*(\d{1,2})\s*$", re.IGNORECASE)


async def session_of(inv: Invocation, services: Services, *, create: bool) -> SessionRow:
    if inv.thread is None:
        raise UserError("This works inside an image session thread.")
    if create:
        return await services.store.get_or_create_session(
            thread_key=inv.thread.key, user_key=inv.user.key, now=services.now()
        )
    session = await services.store.active_session(inv.thread.key)
    if session is None:
        raise UserError("There's no image session in this thread. Start one with /imagine.")
    return session


async def target_turn(inv: Invocation, services: Services, session: SessionRow) -> TurnRow:
    """The turn named by the `turn` option (a button or a reply), else the session head.

    A turn from another session (another thread, or a session that was reset) is refused: a session can only be
    driven from its own thread.
    """
    turn_id = inv.option("turn") or session.head_turn_id
    if turn_id is None:
        raise UserError("There's no image in this session yet. Describe one to start.")
    turn = await services.store.get_turn(turn_id)
    if turn is None or turn.session_id != session.id:
        raise UserError("That image belongs to another session (it was reset or lives in another thread).")
    if turn.status != "done":
        raise UserError("That turn has no image to work from.")
    return turn


async def parent_of(turn: TurnRow, services: Services) -> TurnRow | None:
    return await services.store.get_turn(turn.parent_id) if turn.parent_id else None


async def before_upscale(turn: TurnRow, services: Services) -> TurnRow:
    """The image an upscale (or another take of one) was made from, else the turn itself: edits after an upscale
    go on with the model and size the image had before it, not at 4K's price."""
    seen = 0
    while turn.kind == "upscale" and turn.parent_id and seen < 8:  # 2K then 4K is two; a cycle can't happen
        parent = await parent_of(turn, services)
        if parent is None:
            break
        turn, seen = parent, seen + 1
    return turn


def take_kind(turn: TurnRow, kind: str) -> str:
    """Another take (retry, variation) of an upscale is an upscale too: edits after it go back to the size before."""
    return "upscale" if turn.kind == "upscale" else kind


def size_option(value: str | None) -> str | None:
    if value is None:
        return None
    cleaned = value.strip().upper().removesuffix("PX")
    return {"0.5K": "512", "1024": "1K", "2048": "2K", "4096": "4K"}.get(cleaned, cleaned)


def aspect_option(value: str | None) -> str | None:
    if value is None:
        return None
    match = _RATIO.match(value)
    if not match:
        raise UserError(f"“{value}” isn't an aspect ratio; write it like 16:9.")
    return f"{int(match.group(1))}:{int(match.group(2))}"


async def images_of(turn: TurnRow, services: Services, *, upload_limit: int) -> tuple[OutImage, ...]:
    """The images a turn delivered, ready to post again (e.g. after undo)."""
    images = []
    for index, ref in enumerate(final_image_refs(turn.response_json), start=1):
        blob = await services.store.get_blob(ref)
        if blob is None:
            raise UserError("This session's history lost an image, so I can't show it. Start over with /reset.")
        try:
            images.append((await out_image(blob[0], blob[1], turn.id, index, upload_limit))[0])
        except ImageRejected as exc:
            raise UserError(f"I can't post that image here: {exc.user_message}") from exc
    return tuple(images)
