"""What a generateContent call ended in, as types, each with the sentence a chat user sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.catalog import ModelSpec
from bot.gemini.parts import Content, Part


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens Gemini reported for one call and the estimated USD cost from the price table."""

    prompt_tokens: int = 0
    candidate_tokens: int = 0
    thought_tokens: int = 0
    total_tokens: int = 0
    image_tokens: int = 0
    cost_usd: float = 0.0

    @classmethod
    def from_wire(cls, wire: dict[str, Any] | None, *, spec: ModelSpec, size: str, images: int) -> Usage:
        wire = wire or {}
        prompt = int(wire.get("promptTokenCount", 0) or 0)
        candidates = int(wire.get("candidatesTokenCount", 0) or 0)
        thoughts = int(wire.get("thoughtsTokenCount", 0) or 0)
        total = int(wire.get("totalTokenCount", 0) or 0) or prompt + candidates + thoughts
        image_tokens = sum(
            int(d.get("tokenCount", 0) or 0)
            for d in wire.get("candidatesTokensDetails") or ()
            if str(d.get("modality", "")).upper() == "IMAGE"
        )
        if not image_tokens and images:
            image_tokens = images * spec.image_tokens.get(size, 0)
        image_tokens = min(image_tokens, candidates) if candidates else image_tokens
        text_tokens = max(candidates - image_tokens, 0) + thoughts
        cost = (
            prompt * spec.input_usd_per_mtok
            + image_tokens * spec.image_usd_per_mtok
            + text_tokens * spec.text_usd_per_mtok
        ) / 1_000_000
        return cls(prompt, candidates, thoughts, total, image_tokens, round(cost, 6))


@dataclass(frozen=True, slots=True)
class Outcome:
    """Base of every answer Gemini gave with HTTP 200.

    Attributes:
        model: The model id that answered.
        usage: Tokens and cost of the call.
        content: The model's content exactly as received (None when there was none), to store and send back.
        response_id: Gemini's responseId, for logs.
        attempts: How many HTTP attempts the call took.
        unanswered: Earlier attempts whose whole request went out and got no answer in time (Gemini may have
            billed an image for each).
    """

    model: str
    usage: Usage
    content: Content | None
    response_id: str
    attempts: int
    unanswered: int = field(default=0, kw_only=True)

    @property
    def delivered(self) -> bool:
        return False

    @property
    def user_message(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class ImagesDelivered(Outcome):
    """At least one final image: post them, with the model's text as a caption."""

    @property
    def images(self) -> tuple[Part, ...]:
        return self.content.images if self.content else ()

    @property
    def text(self) -> str:
        return self.content.text if self.content else ""

    @property
    def delivered(self) -> bool:
        return True

    @property
    def user_message(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class TextOnly(Outcome):
    """The model answered in words and drew nothing (finish STOP or NO_IMAGE)."""

    text: str
    finish_reason: str

    @property
    def user_message(self) -> str:
        said = f": “{_clip(self.text, 600)}”" if self.text else "."
        return (
            f"Gemini replied without an image{said} Nothing was charged. "
            "Try rephrasing, or ask explicitly for an image."
        )


@dataclass(frozen=True, slots=True)
class PromptBlocked(Outcome):
    """`promptFeedback.blockReason`: the prompt or a reference image was refused before generation."""

    reason: str

    @property
    def user_message(self) -> str:
        return (
            f"Your prompt or reference image was blocked by Gemini (reason: {self.reason}). "
            "Nothing was charged; edit it and try again."
        )


_FILTERED = {
    "IMAGE_SAFETY": "The image was blocked by Google's safety filter. Nothing was charged; try rephrasing the request.",
    "IMAGE_PROHIBITED_CONTENT": (
        "Gemini refused this as prohibited content. Nothing was charged; please change the prompt."
    ),
    "IMAGE_RECITATION": (
        "The result looked too close to existing material and was withheld. "
        "Nothing was charged; try a more original description."
    ),
    "RECITATION": (
        "The result looked too close to existing material and was withheld. "
        "Nothing was charged; try a more original description."
    ),
}
FILTER_REASONS = frozenset({*_FILTERED, "SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"})


@dataclass(frozen=True, slots=True)
class Filtered(Outcome):
    """A safety, prohibited-content or recitation filter withheld the result (never retried)."""

    finish_reason: str
    finish_message: str

    @property
    def user_message(self) -> str:
        return _FILTERED.get(
            self.finish_reason,
            f"Your request was blocked by Gemini's safety filter (reason: {self.finish_reason}). Nothing was charged.",
        )


@dataclass(frozen=True, slots=True)
class Unfinished(Outcome):
    """Generation stopped without an image for another reason (IMAGE_OTHER, MAX_TOKENS, OTHER, unknown)."""

    finish_reason: str
    text: str = ""

    @property
    def user_message(self) -> str:
        if self.finish_reason == "MAX_TOKENS":
            return (
                "The answer was cut off before an image was produced. Nothing was charged; "
                "try a shorter or simpler request."
            )
        if self.finish_reason == "IMAGE_OTHER":
            return "Image generation stopped without a result. Nothing was charged; please try again."
        return f"Gemini could not finish this request (reason: {self.finish_reason}). Nothing was charged; try again."


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
