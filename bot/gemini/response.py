"""Read a generateContent answer into one typed outcome."""

from __future__ import annotations

from typing import Any

from bot.catalog import ModelSpec
from bot.gemini import lift
from bot.gemini.errors import MalformedResponseError
from bot.gemini.outcomes import (
    FILTER_REASONS,
    Filtered,
    ImagesDelivered,
    Outcome,
    PromptBlocked,
    TextOnly,
    Unfinished,
    Usage,
)
from bot.gemini.parts import Content

_TEXT_ONLY_REASONS = frozenset({"STOP", "NO_IMAGE", "FINISH_REASON_UNSPECIFIED", ""})


def parse_response(raw: bytes, *, spec: ModelSpec, size: str, attempts: int) -> Outcome:
    """Parse a 200 body; call it off the event loop (it base64-decodes whole images).

    Raises:
        MalformedResponseError: the body is not a GenerateContentResponse.
    """
    try:
        body = lift.loads(raw)  # json.loads, with images left in `raw` as memoryviews
        if not isinstance(body, dict):
            raise TypeError("not an object")
        return _outcome(body, spec=spec, size=size, attempts=attempts)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError) as exc:
        raise MalformedResponseError(f"unreadable response: {type(exc).__name__}", status=200) from exc


def _outcome(body: dict[str, Any], *, spec: ModelSpec, size: str, attempts: int) -> Outcome:
    model = str(body.get("modelVersion") or spec.id)
    response_id = str(body.get("responseId") or "")
    usage_wire = body.get("usageMetadata")
    feedback = body.get("promptFeedback") or {}
    candidates = body.get("candidates") or []
    if not candidates:
        usage = Usage.from_wire(usage_wire, spec=spec, size=size, images=0)
        reason = str(feedback.get("blockReason") or "")
        if reason:
            return PromptBlocked(model, usage, None, response_id, attempts, reason=reason)
        return Unfinished(model, usage, None, response_id, attempts, finish_reason="NO_CANDIDATES")
    candidate = candidates[0]
    content_wire = candidate.get("content")
    content = Content.from_wire(content_wire) if isinstance(content_wire, dict) else None
    finish = str(candidate.get("finishReason") or "").upper()
    images = content.images if content else ()
    usage = Usage.from_wire(usage_wire, spec=spec, size=size, images=len(images))
    text = content.text if content else ""
    # Always look for image parts: STOP alone is not success, and an image is success whatever the reason says.
    if images:
        return ImagesDelivered(model, usage, content, response_id, attempts)
    if finish in FILTER_REASONS:
        message = str(candidate.get("finishMessage") or "")
        return Filtered(model, usage, content, response_id, attempts, finish_reason=finish, finish_message=message)
    if finish in _TEXT_ONLY_REASONS and (text or finish in ("NO_IMAGE", "STOP")):  # STOP, no parts: said nothing
        return TextOnly(model, usage, content, response_id, attempts, text=text, finish_reason=finish or "STOP")
    return Unfinished(model, usage, content, response_id, attempts, finish_reason=finish or "NO_IMAGE", text=text)
