"""An image request, checked against the model table before anything is sent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.catalog import ModelSpec, lookup
from bot.errors import UserError
from bot.gemini.body import StreamedBody
from bot.gemini.parts import Content, b64encode


class UnsupportedOptionError(UserError):
    """A combination the chosen model can't do; `user_message` says so in chat words."""


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """One generateContent call for an image model.

    Attributes:
        model: Model id or alias from the catalog.
        contents: The history to send, oldest first, ending with the new user turn.
        aspect_ratio: "W:H", or None to let the model choose (matches the input image, else 1:1).
        image_size: "512", "1K", "2K" or "4K"; None means the model default (1K).
        include_thoughts: Ask Gemini 3 models to return their thought parts.
        thinking_level: "minimal" or "high" (Gemini 3.1 Flash Image only).
        image_only: Ask for `["IMAGE"]` only, suppressing text.
        system_instruction: Optional system text.
    """

    model: str
    contents: tuple[Content, ...]
    aspect_ratio: str | None = None
    image_size: str | None = None
    include_thoughts: bool = False
    thinking_level: str | None = None
    image_only: bool = False
    system_instruction: str | None = None

    @property
    def spec(self) -> ModelSpec:
        return lookup(self.model)

    @property
    def size(self) -> str:
        return self.image_size or self.spec.default_size

    def validate(self) -> ModelSpec:
        """Refuse what the model can't do, before a request (and a credit) is spent."""
        spec = self.spec
        name = f"{spec.nickname} ({spec.id})"
        if not self.contents or self.contents[-1].role != "user":
            raise UnsupportedOptionError("There is nothing to send: the request has no new message.")
        if self.image_size is not None and self.image_size not in spec.sizes:
            raise UnsupportedOptionError(f"{name} can't make {self.image_size} images; choose {_choices(spec.sizes)}.")
        if self.aspect_ratio is not None and self.aspect_ratio not in spec.aspect_ratios:
            raise UnsupportedOptionError(
                f"{name} doesn't do aspect ratio {self.aspect_ratio}; choose {_choices(spec.aspect_ratios)}."
            )
        references = len(self.contents[-1].images)
        if references > spec.max_references:
            raise UnsupportedOptionError(
                f"{name} takes at most {spec.max_references} reference images; this message has {references}."
            )
        if self.thinking_level is not None and (spec.thinking != "optional" or self.thinking_level not in _LEVELS):
            raise UnsupportedOptionError(f"{name} doesn't let me set the thinking level to {self.thinking_level}.")
        return spec

    def to_wire(self, inline: Callable[[bytes], str] = b64encode) -> dict[str, Any]:
        spec = self.spec
        image_config: dict[str, str] = {}
        if self.aspect_ratio:
            image_config["aspectRatio"] = self.aspect_ratio
        if self.image_size:
            image_config["imageSize"] = self.image_size
        generation: dict[str, Any] = {"responseModalities": ["IMAGE"] if self.image_only else ["TEXT", "IMAGE"]}
        if image_config:
            generation["imageConfig"] = image_config
        thinking: dict[str, Any] = {}
        if self.include_thoughts and spec.thinking != "none":
            thinking["includeThoughts"] = True
        if self.thinking_level and spec.thinking == "optional":
            thinking["thinkingLevel"] = self.thinking_level
        if thinking:
            generation["thinkingConfig"] = thinking
        body: dict[str, Any] = {"contents": [c.to_wire(inline) for c in self.contents], "generationConfig": generation}
        if self.system_instruction:
            body["systemInstruction"] = {"parts": [{"text": self.system_instruction}]}
        return body

    def body(self) -> StreamedBody:
        """The JSON body, its images encoded as it is sent."""
        return StreamedBody(self.to_wire)


_LEVELS = ("minimal", "high")


def _choices(values: tuple[str, ...]) -> str:
    return ", ".join(values[:-1]) + f" or {values[-1]}" if len(values) > 1 else values[0]
