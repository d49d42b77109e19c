"""The console adapter: `bananabot chat`, the smallest adapter, proving the adapter contract."""

from __future__ import annotations

from pathlib import Path

from bot.config import Settings
from bot.services import Services


class ConsoleAdapter:
    """Registered for `bananabot chat`; `bananabot run` never starts it (it needs a terminal)."""

    name = "console"
    required: tuple[str, ...] = ()

    def configured(self, settings: Settings) -> bool:
        return False

    def doctor(self, settings: Settings) -> list[str]:
        return [f"console: `bananabot chat` saves images under {settings.output_dir.resolve()}"]

    async def run(self, services: Services) -> None:
        await self.chat(services, session="default", out_dir=None)

    async def chat(self, services: Services, *, session: str, out_dir: Path | None) -> None:
        from adapters.console.chat import ConsoleChat

        await ConsoleChat(services, session=session, out_dir=out_dir).run()


ADAPTER = ConsoleAdapter()
