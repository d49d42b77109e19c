"""Calls that got no answer to show: typed errors, whether to retry, and what to tell the user."""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar


class GeminiError(Exception):
    """Base of every failed call; `user_message` is safe to show in chat (no key, no payload).

    Attributes:
        status: HTTP status, or 0 when no HTTP answer came.
        detail: Gemini's own message (for logs), with any API key redacted.
        retryable: Whether another attempt may succeed.
        retry_after: Seconds Gemini asked us to wait (RetryInfo), if any.
        attempts: Attempts made before giving up (set by the client).
        unanswered: Attempts whose whole request went out and got no answer in time (set by the client): Gemini
            may still have made, and billed, an image for each.
    """

    retryable: ClassVar[bool] = False
    user_text: ClassVar[str] = "Gemini failed; nothing was charged. Please try again."

    def __init__(self, detail: str = "", *, status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(detail or self.user_text)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        self.attempts = 0
        self.unanswered = 0

    @property
    def user_message(self) -> str:
        return self.user_text


class RateLimitedError(GeminiError):
    retryable = True
    user_text = "Gemini is rate-limiting the bot right now; nothing was charged. Try again in a minute."


class DailyQuotaError(GeminiError):
    user_text = "The bot's Gemini quota is used up for today; nothing was charged. An admin can raise it."


class OverloadedError(GeminiError):
    retryable = True
    user_text = "Gemini is overloaded right now; nothing was charged. Try again shortly."


class ServerFailedError(GeminiError):
    retryable = True
    user_text = "Gemini had an internal error; nothing was charged. Please try again."


class TimedOutError(GeminiError):
    retryable = True
    user_text = "Gemini didn't answer in time; nothing was charged. Please try again."


class UnreachableError(GeminiError):
    retryable = True
    user_text = "I couldn't reach Gemini; nothing was charged. Please try again shortly."


class RedirectedError(GeminiError):
    user_text = (
        "Gemini's address answered with a redirect, which the bot doesn't follow; nothing was charged. "
        "An admin needs to check GEMINI_BASE_URL and any proxy."
    )


class KeyInvalidError(GeminiError):
    user_text = "The bot's Gemini API key was refused; nothing was charged. An admin needs to fix the configuration."


class PermissionDeniedError(GeminiError):
    user_text = "Gemini refused the bot's credentials; nothing was charged. An admin needs to fix the configuration."


class ModelNotFoundError(GeminiError):
    user_text = "Gemini says this model doesn't exist for the bot's key; nothing was charged. Try another model."


class BadImageError(GeminiError):
    user_text = "Gemini couldn't read one of the images; nothing was charged. Use PNG, JPEG or WebP."


class SignatureRejectedError(GeminiError):
    user_text = "Gemini refused the conversation history; nothing was charged. Start a new session with /reset."


class BadRequestError(GeminiError):
    user_text = "Gemini refused the request as invalid; nothing was charged."

    @property
    def user_message(self) -> str:
        return (
            f"Gemini refused the request: {_clip(self.detail)} Nothing was charged." if self.detail else self.user_text
        )


class MalformedResponseError(GeminiError):
    retryable = True
    user_text = "Gemini sent an answer I couldn't read; nothing was charged. Please try again."


_SHOWN = 300  # characters of an error's message kept (logs, and the user's reply for a bad request)
_RETRY_IN = re.compile(r"retry in ([0-9.]+)\s*s", re.IGNORECASE)
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)s\s*$")


def classify(status: int, body: bytes, *, secret: str = "") -> GeminiError:
    """Turn a non-200 answer into the error it means (§8 of the Gemini reference)."""
    error = _error_object(body)
    # All of it masked before it is clipped: a clip first could cut a copy of the key in two, leaving a fragment
    # redact can't see (and each masked copy is shorter than the key, so any window would shift).
    raw = str(error.get("message") or body.decode("utf-8", "replace"))
    message = redact(raw, secret)[:_SHOWN]
    code = str(error.get("status") or "")
    details = [d for d in error.get("details") or () if isinstance(d, dict)]
    reasons = {str(d.get("reason", "")) for d in details}
    if 300 <= status < 400:  # never followed: the key would go with it
        return RedirectedError(f"HTTP {status}: a redirect, not followed", status=status)
    if status == 429:
        quota_ids = [
            str(v.get("quotaId", ""))
            for d in details
            if str(d.get("@type", "")).endswith("QuotaFailure")
            for v in d.get("violations") or ()
            if isinstance(v, dict)
        ]
        # Per-minute limits come back as several violations at once; any PerDay one (or a limit of 0) is final.
        if any("PerDay" in q for q in quota_ids) or "limit: 0" in message:
            return DailyQuotaError(message, status=status)
        return RateLimitedError(message, status=status, retry_after=_retry_delay(details, message))
    if status in (500, 502):
        return ServerFailedError(message, status=status)
    if status == 503:
        return OverloadedError(message, status=status)
    if status in (408, 504):
        return TimedOutError(message, status=status)
    if status == 404:
        return ModelNotFoundError(message, status=status)
    if status in (401, 403):
        return PermissionDeniedError(message, status=status)
    if status == 400:
        if "API_KEY_INVALID" in reasons or "API key not valid" in message:
            return KeyInvalidError(message, status=status)
        if "thought_signature" in message or "thought signature" in message.lower():
            return SignatureRejectedError(message, status=status)
        if "input image" in message.lower() or "Unsupported MIME type" in message:
            return BadImageError(message, status=status)
        if code == "FAILED_PRECONDITION":
            return PermissionDeniedError(message, status=status)
        return BadRequestError(message, status=status)
    if 500 <= status < 600:
        return ServerFailedError(message, status=status)
    return BadRequestError(message, status=status)


def redact(text: str, secret: str) -> str:
    return text.replace(secret, "[redacted]") if secret else text


def _error_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    if isinstance(parsed, list) and parsed:  # streamed errors come as a one-element array
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else {}


def _retry_delay(details: list[dict[str, Any]], message: str) -> float | None:
    for detail in details:
        if str(detail.get("@type", "")).endswith("RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    match = _RETRY_IN.search(message)
    return float(match.group(1)) if match else None


def _clip(text: str, limit: int = 300) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
