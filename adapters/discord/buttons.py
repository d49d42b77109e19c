"""Result buttons as persistent dynamic items: the custom_id carries the turn, so clicks work after restarts."""

from __future__ import annotations

from typing import Any, Protocol

import discord

from adapters.discord.translate import BUTTON_TEMPLATE
from bot.models import Button, Reply

_STYLES = {"retry": discord.ButtonStyle.primary, "undo": discord.ButtonStyle.secondary}


class ButtonHandler(Protocol):
    async def on_result_button(self, interaction: discord.Interaction[Any], action: str, turn_id: str) -> None: ...


class ResultButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=BUTTON_TEMPLATE):
    """Retry / Undo / Upscale 2K / Upscale 4K / Variations on a result message."""

    def __init__(self, action: str, turn_id: str, label: str = "") -> None:
        super().__init__(
            discord.ui.Button(
                label=label or action,
                style=_STYLES.get(action, discord.ButtonStyle.secondary),
                custom_id=Button(action, label, turn_id).custom_id,  # type: ignore[arg-type]
            )
        )
        self.action = action
        self.turn_id = turn_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: Any, /
    ) -> ResultButton:
        return cls(match["action"], match["turn"], getattr(item, "label", "") or "")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        handler: ButtonHandler = interaction.client  # the bananabot client implements it
        await handler.on_result_button(interaction, self.action, self.turn_id)


def view_for(reply: Reply) -> discord.ui.View | None:
    if not reply.buttons:
        return None
    view = discord.ui.View(timeout=None)
    for button in reply.buttons:
        view.add_item(ResultButton(button.action, button.turn_id, button.label))
    return view
