"""/quota — credits left today and this month, when they reset, and budget left."""

from __future__ import annotations

from bot.command import Command
from bot.models import Invocation, Reply
from bot.services import Services


async def run(inv: Invocation, services: Services) -> Reply:
    return Reply(text=await services.ledger.summary(inv.user, services.now()), ephemeral=True)


COMMAND = Command(name="quota", description="Show your remaining image credits.", handler=run)
