"""/retry — run the same request again from the same starting point, for a different take."""

from __future__ import annotations

from bot.command import Command
from bot.engine import TurnPlan, run_turns
from bot.models import Invocation, Reply
from bot.services import Services
from bot.targets import parent_of, session_of, take_kind, target_turn


async def run(inv: Invocation, services: Services) -> list[Reply]:
    session = await session_of(inv, services, create=False)
    turn = await target_turn(inv, services, session)
    plan = TurnPlan(
        kind=take_kind(turn, "retry"),
        prompt=turn.prompt,
        parent=await parent_of(turn, services),
        model=turn.model,
        aspect_ratio=turn.aspect_ratio,
        image_size=turn.image_size,
        request_json=turn.request_json,
    )
    return await run_turns(inv, services, session, [plan])


COMMAND = Command(
    name="retry",
    description="Make the current image again from the same request, for another take.",
    handler=run,
    session=True,
)
