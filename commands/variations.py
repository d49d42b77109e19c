"""/variations — N alternatives of the current image's request, side by side (sibling turns)."""

from __future__ import annotations

from bot.command import Command, Option
from bot.engine import TurnPlan, run_turns
from bot.errors import UserError
from bot.models import Invocation, Reply
from bot.services import Services
from bot.targets import parent_of, session_of, take_kind, target_turn

DEFAULT_COUNT = 2


async def run(inv: Invocation, services: Services) -> list[Reply]:
    top = services.settings.max_variations
    raw = inv.option("count") or str(min(DEFAULT_COUNT, top))  # the button sends no count
    if not raw.isdigit() or not 1 <= int(raw) <= top:
        raise UserError(f"Variations takes a number from 1 to {top}.")
    session = await session_of(inv, services, create=False)
    turn = await target_turn(inv, services, session)
    parent = await parent_of(turn, services)
    plan = TurnPlan(
        kind=take_kind(turn, "variation"),
        prompt=turn.prompt,
        parent=parent,
        model=turn.model,
        aspect_ratio=turn.aspect_ratio,
        image_size=turn.image_size,
        request_json=turn.request_json,
    )
    return await run_turns(inv, services, session, [plan] * int(raw))


COMMAND = Command(
    name="variations",
    description="Make alternative versions of the current image.",
    handler=run,
    session=True,
    options=(Option("count", "How many to make"),),
)
