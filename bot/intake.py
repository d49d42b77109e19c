"""Attachments into reference images: count and declared size first, then download, sniff, bound and shrink."""

from __future__ import annotations

import asyncio

from bot.config import Settings
from bot.errors import UserError
from bot.images import ImageRejected, PreparedImage, check_declared, prepare_reference
from bot.models import ImageRef

MAX_PROMPT_CHARS = 8000


class InputRejectedError(UserError):
    """Input the bot refuses before spending anything; `user_message` says why."""


def check_prompt(text: str, *, images: int, required: bool = True) -> str:
    """The prompt, stripped (and without NUL characters, which Postgres text can't hold); refuse an empty one (with
    no images) or one too long to be a prompt."""
    prompt = text.replace("\x00", "").strip()
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputRejectedError(
            f"Your prompt is {len(prompt):,} characters; the limit is {MAX_PROMPT_CHARS:,}. Shorten it and try again."
        )
    if required and not prompt and not images:
        raise InputRejectedError("Tell me what to draw or change, e.g. “a red fox in the snow, watercolour”.")
    if required and not prompt:
        return "Use these images as the reference and make something new with them."
    return prompt


def check_attachments(refs: tuple[ImageRef, ...], settings: Settings, *, max_count: int, carried: int = 0) -> None:
    """What can be refused before a byte is downloaded: how many images, and each one's declared type and size.

    Raises:
        InputRejectedError: saying which attachment and why.
    """
    if len(refs) + carried > max_count:
        if not carried:
            raise InputRejectedError(f"That's {len(refs)} images; this model takes at most {max_count} per message.")
        raise InputRejectedError(
            f"That's {len(refs)} images, and this thread's last image goes along to the new model: it takes at most "
            f"{max_count} in all, so send at most {max(max_count - carried, 0)} with this message."
        )
    try:
        for ref in refs:
            check_declared(
                filename=ref.filename,
                declared_mime=ref.declared_mime,
                size=ref.declared_size,
                max_bytes=settings.max_attachment_bytes,
            )
    except ImageRejected as exc:
        raise InputRejectedError(exc.user_message) from exc


async def read_references(
    refs: tuple[ImageRef, ...], settings: Settings, *, max_count: int, slots: asyncio.Semaphore, carried: int = 0
) -> list[PreparedImage]:
    """Check every attachment before downloading any, then prepare them one at a time (bounded memory).
    `carried`: images the turn sends besides these (the thread's last image, when the model changes).

    Each image is downloaded and checked holding one of the process's `slots`. A burst of edits otherwise fetches
    every attachment at once: hundreds of streams of reads ready on the event loop together, and a /quota asked
    meanwhile waits behind all of them (bench section 2). The others wait their turn for a slot, costing nothing.
    """
    check_attachments(refs, settings, max_count=max_count, carried=carried)
    try:
        prepared = []
        for ref in refs:
            async with slots:
                data = await ref.read(settings.max_attachment_bytes)
                prepared.append(
                    await prepare_reference(
                        data,
                        filename=ref.filename,
                        max_bytes=settings.max_attachment_bytes,
                        max_pixels=settings.max_image_pixels,
                        max_side=settings.reference_max_side,
                    )
                )
                del data
        return prepared
    except ImageRejected as exc:
        raise InputRejectedError(exc.user_message) from exc
