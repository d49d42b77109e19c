"""/undo — step the session back to the image the current one was made from; the next edit builds on that one."""

from __future__ import annotations

from bot.command import Command
from bot.engine import TurnDone, TurnPlan, buttons_for
from bot.errors import UserError
from bot.models import Invocation, Reply
from bot.services import Services
from bot.targets import images_of, parent_of, session_of, target_turn


async def run(inv: Invocation, services: Services) -> Reply:
    session = await session_of(inv, services, create=False)
    turn = await target_turn(inv, services, session)
    parent = await parent_of(turn, services)
    if parent is None:
        raise UserError("That's the first image of this session; there's nothing to undo. Use /reset to start over.")
    images = await images_of(parent, services, upload_limit=inv.upload_limit)
    await services.store.set_head(session.id, parent.id)
    plan = TurnPlan(
        kind=parent.kind, prompt=parent.prompt, parent=None, model=parent.model, image_size=parent.image_size
    )
    return Reply(
        text=f"Undone by {inv.user.mention}. Back to “{parent.prompt[:200]}”; the next edit starts from here.",
        images=images,
        buttons=buttons_for(TurnDone(parent.id, plan)),
    )


COMMAND = Command(name="undo", description="Go back to the image this one was made from.", handler=run, session=True)
