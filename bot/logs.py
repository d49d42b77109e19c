"""Logging setup: text or JSON lines, and every configured secret scrubbed from every record."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

from bot.config import Settings

TURN_ID: ContextVar[str] = ContextVar("turn_id", default="")
SESSION_KEY: ContextVar[str] = ContextVar("session_key", default="")

_SECRET_FIELDS = ("gemini_api_key", "discord_token", "slack_bot_token", "slack_app_token", "slack_signing_secret")


def secrets_of(settings: Settings) -> tuple[str, ...]:
    values = []
    for name in _SECRET_FIELDS:
        secret = getattr(settings, name)
        if secret is not None and len(secret.get_secret_value()) >= 6:
            values.append(secret.get_secret_value())
    return tuple(values)


class RedactSecrets(logging.Filter):
    """Replaces secret values in the formatted message (and exception text) with [redacted]."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        for secret in self.secrets:
            message = message.replace(secret, "[redacted]")
            if record.exc_text:
                record.exc_text = record.exc_text.replace(secret, "[redacted]")
        record.msg, record.args = message, None
        return True


class TurnContext(logging.Filter):
    """Puts the current turn id and session key on every record (set by the dispatcher and the engine)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.turn_id = TURN_ID.get()
        record.session_key = SESSION_KEY.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("turn_id", "session_key"):
            if getattr(record, key, ""):
                entry[key] = getattr(record, key)
        if record.exc_info or record.exc_text:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TurnContext())
    handler.addFilter(RedactSecrets(secrets_of(settings)))
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)
