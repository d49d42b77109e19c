"""/reset — end this thread's session; the next message starts a fresh one."""

from __future__ import annotations

from bot.command import Command
from bot.models import Invocation, Reply
from bot.services import Services
from bot.targets import session_of


async def run(inv: Invocation, services: Services) -> Reply:
    session = await session_of(inv, services, create=False)
    await services.store.end_session(session.id, now=services.now())
    return Reply(text=f"Session ended by {inv.user.mention}. The next prompt here starts from scratch.")


COMMAND = Command(name="reset", description="End this thread's image session.", handler=run, session=True)
