"""/imagine — start the thread's session, or continue it: a prompt, reference images and options."""

from __future__ import annotations

from dataclasses import replace

from bot.catalog import MODELS, SIZES, lookup
from bot.command import Command, Option
from bot.engine import TurnPlan, check_plan, run_turns
from bot.errors import UserError
from bot.intake import check_attachments, check_prompt, read_references
from bot.models import Invocation, Reply
from bot.services import Services
from bot.sessions import final_image_refs
from bot.targets import (
    aspect_option,
    before_upscale,
    session_of,
    size_option,
    target_turn,
)


async def run(inv: Invocation, services: Services) -> list[Reply]:
    check_prompt(inv.text, images=len(inv.images))  # refuse bad input before a session exists
    session = await session_of(inv, services, create=True)
    has_history = inv.option("turn") is not None or session.head_turn_id is not None
    parent = await target_turn(inv, services, session) if has_history else None
    made = await before_upscale(parent, services) if parent else None  # an upscale is for keeping, not the new size
    spec = lookup(inv.option("model") or (made.model if made else services.settings.model))
    size = size_option(inv.option("size")) or (made.image_size if made else None)
    if parent and made is not parent and size is not None and size not in spec.sizes and not inv.option("model"):
        spec = lookup(parent.model)  # a size asked for that only the upscale's model makes: go on with that one
    aspect = aspect_option(inv.option("aspect_ratio")) or (parent.aspect_ratio if parent else None)
    if parent is not None and parent.model != spec.id:
        # What the old model did may not exist on the new one; inherited options give way, asked-for ones don't.
        if size not in spec.sizes and not inv.option("size"):
            size = None
        if aspect not in spec.aspect_ratios and not inv.option("aspect_ratio"):
            aspect = None
    prompt = check_prompt(inv.text, images=len(inv.images))
    plan = TurnPlan(
        kind="edit" if parent else "imagine",
        prompt=prompt,
        parent=parent,
        model=spec.id,
        aspect_ratio=aspect,
        image_size=size,
    )
    check_plan(plan)  # options the model lacks are refused before anything is downloaded
    switched = parent is not None and parent.model != spec.id and parent.status == "done"
    carried = len(final_image_refs(parent.response_json)) if parent is not None and switched else 0
    references = await read_references(
        inv.images,
        services.settings,
        max_count=spec.max_references,
        slots=services.download_slots,
        carried=carried,  # the engine sends the thread's last image along to the new model
    )
    plan = replace(plan, references=tuple((image.data, image.mime) for image in references))
    return await run_turns(inv, services, session, [plan])


def refusal_before_start(inv: Invocation, services: Services) -> str | None:
    """Why a request that would open a new session can't run, found before a thread or message is made for it:
    the prompt, the options against the model, the attachments' count and declared types and sizes. None when it
    may go ahead (what the downloads hold is checked by the turn itself)."""
    try:
        prompt = check_prompt(inv.text, images=len(inv.images))
        spec = lookup(inv.option("model") or services.settings.model)
        plan = TurnPlan(
            kind="imagine",
            prompt=prompt,
            parent=None,
            model=spec.id,
            aspect_ratio=aspect_option(inv.option("aspect_ratio")),
            image_size=size_option(inv.option("size")),
        )
        check_plan(plan)
        check_attachments(inv.images, services.settings, max_count=spec.max_references)
    except UserError as exc:
        return exc.user_message
    return None


COMMAND = Command(
    name="imagine",
    description="Create an image from a prompt (and reference images), or keep editing this thread's image.",
    handler=run,
    session=True,
    options=(
        Option("prompt", "What to draw or change", required=True),
        Option("aspect_ratio", "Aspect ratio, e.g. 16:9", choices=MODELS[0].aspect_ratios),
        Option("size", "Image size", choices=SIZES),
        Option("model", "Gemini image model", choices=tuple(spec.id for spec in MODELS)),
    ),
)
