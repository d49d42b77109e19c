"""Slack text and ids into neutral values: mentions stripped, `--ar 16:9` style flags, user refs."""

from __future__ import annotations

import re

from bot.models import UserRef

DM_THREAD = "im"  # a DM channel is one session of its own
_FLAG = re.compile(r"(?:^|\s)--(ar|aspect|size|model)\s+(\S+)", re.IGNORECASE)
_FLAG_NAMES = {"ar": "aspect_ratio", "aspect": "aspect_ratio", "size": "size", "model": "model"}


def strip_mention(text: str, bot_user_id: str | None) -> str:
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text)
    return text.strip()


_MARKUP = re.compile(r"<([^<>]*)>")


def plain_text(text: str) -> str:
    """Slack's message markup as the words people saw: `<@U1|ann>` → @ann, `<#C1|design>` → #design,
    `<https://x|label>` → label, `<!here>` → @here, and `&amp; &lt; &gt;` → `& < >` (Slack escapes those three)."""

    def shown(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith(("@", "#")):
            return target[0] + (label or target[1:])
        if target.startswith("!"):
            return label or "@" + target[1:].split("^")[0]
        return label or target

    return _MARKUP.sub(shown, text).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def slack_escaped(text: str, *, asker: str | None = None) -> str:
    """Text for a Slack message: `& < >` escaped, so a prompt quoted in a caption stays words (`<!channel>` or
    `<@U…>` typed in a prompt pings nobody). Only the mention of `asker`, which the bot writes to attribute the
    turn to whoever asked, stays a mention."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace(f"&lt;@{asker}&gt;", f"<@{asker}>") if asker else escaped


def parse_flags(text: str) -> tuple[str, dict[str, str]]:
    """`a fox --ar 16:9 --size 2K` -> ("a fox", {"aspect_ratio": "16:9", "size": "2K"})."""
    options = {_FLAG_NAMES[m.group(1).lower()]: m.group(2) for m in _FLAG.finditer(text)}
    return _FLAG.sub(" ", text).strip(), options


_USER = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")


def parse_admin(text: str) -> dict[str, str]:
    """`grant <@U123|ann> 5` -> {"action": "grant", "user": "slack:U123", "amount": "5"}; missing words are left out."""
    words = text.split()
    options: dict[str, str] = {}
    if words:
        options["action"] = words[0].lower()
    if len(words) > 1:
        mention = _USER.fullmatch(words[1])
        options["user"] = f"slack:{mention.group(1)}" if mention else words[1]
    if len(words) > 2:
        options["amount"] = words[2]
    return options


def user_ref(user_id: str, team_id: str) -> UserRef:
    # Slack renders <@U…> as the member's name in messages, so captions attribute turns without users.info.
    return UserRef("slack", user_id, display_name=f"<@{user_id}>", workspace_id=team_id)
