"""/imagine — start the thread's session, or continue it: a prompt, reference images and options."""

from __future__ import annotations

from bot.catalog import MODELS, SIZES, lookup
from bot.command import Command, Option
from bot.engine import TurnPlan, run_turns
from bot.intake import check_prompt, read_references
from bot.models import Invocation, Reply
from bot.services import Services
from bot.sessions import final_image_refs
from bot.targets import aspect_option, before_upscale, session_of, size_option, target_turn


async def run(inv: Invocation, services: Services) -> list[Reply]:
    check_prompt(inv.text, images=len(inv.images))  # refuse bad input before a session exists
    session = await session_of(inv, services, create=True)
    has_history = inv.option("turn") is not None or session.head_turn_id is not None
    parent = await target_turn(inv, services, session) if has_history else None
    made = await before_upscale(parent, services) if parent else None  # an upscale is for keeping, not the new size
    spec = lookup(inv.option("model") or (made.model if made else services.settings.model))
    size = size_option(inv.option("size")) or (made.image_size if made else None)
    aspect = aspect_option(inv.option("aspect_ratio")) or (parent.aspect_ratio if parent else None)
    if parent is not None and parent.model != spec.id:
        # What the old model did may not exist on the new one; inherited options give way, asked-for ones don't.
        if size not in spec.sizes and not inv.option("size"):
            size = None
        if aspect not in spec.aspect_ratios and not inv.option("aspect_ratio"):
            aspect = None
    prompt = check_prompt(inv.text, images=len(inv.images))
    switched = parent is not None and parent.model != spec.id and parent.status == "done"
    carried = len(final_image_refs(parent.response_json)) if parent is not None and switched else 0
    references = await read_references(
        inv.images,
        services.settings,
        max_count=spec.max_references,
        slots=services.download_slots,
        carried=carried,  # the engine sends the thread's last image along to the new model
    )
    plan = TurnPlan(
        kind="edit" if parent else "imagine",
        prompt=prompt,
        parent=parent,
        model=spec.id,
        aspect_ratio=aspect,
        image_size=size,
        references=tuple((image.data, image.mime) for image in references),
    )
    return await run_turns(inv, services, session, [plan])


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
