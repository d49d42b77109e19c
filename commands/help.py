"""/help — what the bot does and how to drive it."""

from __future__ import annotations

from bot.catalog import MODELS
from bot.command import Command
from bot.models import Invocation, Reply
from bot.services import Services

TEXT = """\
I make and edit images with Google's Gemini image models ("Nano Banana").
• /imagine <prompt> (+ images, aspect ratio, size, model) starts a session in a thread.
• In the thread, just keep talking: every message (with or without images) edits the latest image.
  Reply to an earlier result to branch from it.
• Buttons under each image: Retry, Undo, Upscale 2K/4K, Variations.
• /quota shows your credits; /reset ends the thread's session.
Models: {models}."""


async def run(inv: Invocation, services: Services) -> Reply:
    models = "; ".join(f"{spec.nickname} = {spec.id} ({', '.join(spec.sizes)})" for spec in MODELS)
    return Reply(text=TEXT.format(models=models), ephemeral=True)


COMMAND = Command(name="help", description="How to use the image bot.", handler=run)
