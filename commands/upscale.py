"""/upscale — re-render the current image at 2K or 4K, same picture, more detail."""

from __future__ import annotations

from bot.catalog import FLASH_31, SIZES, lookup
from bot.command import Command, Option
from bot.engine import TurnPlan, run_turns
from bot.errors import UserError
from bot.models import Invocation, Reply
from bot.services import Services
from bot.targets import session_of, size_option, target_turn

INSTRUCTION = (
    "Re-render this exact image at a higher resolution. Keep the composition, subjects, colours, style and any "
    "text identical; only add fine detail and sharpness."
)


async def run(inv: Invocation, services: Services) -> list[Reply]:
    size = size_option(inv.option("size")) or "4K"
    if size not in ("2K", "4K"):
        raise UserError("Upscale goes to 2K or 4K.")
    session = await session_of(inv, services, create=False)
    turn = await target_turn(inv, services, session)
    current = turn.image_size or "1K"
    if SIZES.index(current) >= SIZES.index(size):
        raise UserError(f"That image is already {current}; upscale only goes to a larger size.")
    spec = lookup(turn.model)
    # Nano Banana (2.5) only draws 1K: its image goes to Nano Banana 2 as a reference instead.
    model = spec if size in spec.sizes else FLASH_31
    aspect = turn.aspect_ratio if turn.aspect_ratio in model.aspect_ratios else None
    plan = TurnPlan(
        kind="upscale",
        prompt=turn.prompt,  # the user's words stay the turn's; the model is sent the instruction
        instruction=INSTRUCTION,
        parent=turn,
        model=model.id,
        aspect_ratio=aspect,
        image_size=size,
        caption=f"{turn.prompt} (upscaled to {size})",
    )
    return await run_turns(inv, services, session, [plan])


COMMAND = Command(
    name="upscale",
    description="Re-render the current image at 2K or 4K.",
    handler=run,
    session=True,
    options=(Option("size", "Target size", choices=("2K", "4K")),),
)
