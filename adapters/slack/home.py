"""App Home: the user's remaining quota and their recent sessions."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.models import UserRef
from bot.services import Services


async def publish_home(client: AsyncWebClient, services: Services, user: UserRef) -> None:
    summary = await services.ledger.summary(user, services.now())
    sessions = await services.store.recent_sessions(user.key, limit=5)
    lines = []
    for session in sessions:
        _, _, channel, thread = session.thread_key.split(":", 3)
        state = "ended" if session.ended_at else "active"
        lines.append(f"• <#{channel}> {session.created_at:%d %b %H:%M} UTC ({state}) — thread {thread}")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "🍌 bananabot"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
        {"type": "divider"},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*Recent sessions*\n" + ("\n".join(lines) or "None yet.")},
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": "Mention me with a prompt (and images) to start."}],
        },
    ]
    await client.views_publish(user_id=user.user_id, view={"type": "home", "blocks": blocks})
