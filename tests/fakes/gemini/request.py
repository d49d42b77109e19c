"""A typed view of a normalized GenerateContentRequest: just what the fake needs to decide and render."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class InPart:
    index: int
    data_fields: tuple[str, ...]  # which oneof `data` members are set (text, inlineData, fileData, ...)
    text: str | None = None
    mime_type: str | None = None
    data: bytes | None = None  # inlineData bytes; None for fileData
    thought: bool = False
    signature: bytes | None = None

    @property
    def is_image(self) -> bool:
        return (self.mime_type or "").lower().startswith("image/")

    @property
    def kind(self) -> str:
        """How Google names the part in signature errors ("Image part", "Text part")."""
        if self.text is not None:
            return "Text"
        if self.is_image:
            return "Image"
        return "Function call" if "functionCall" in self.data_fields else "Data"


@dataclass(frozen=True, slots=True)
class InContent:
    index: int
    role: str
    parts: tuple[InPart, ...]


@dataclass(frozen=True, slots=True)
class ImageRequest:
    contents: tuple[InContent, ...]
    system_texts: tuple[str, ...]
    modalities: tuple[str, ...]
    aspect_ratio: str | None
    image_size: str | None
    candidate_count: int | None
    include_thoughts: bool
    thinking_level: str | None
    thinking_budget: int | None

    @property
    def last_user(self) -> InContent | None:
        users = [c for c in self.contents if c.role == "user"]
        return users[-1] if users else None

    @property
    def prompt(self) -> str:
        last = self.last_user
        return " ".join(p.text for p in last.parts if p.text) if last else ""

    @property
    def turn(self) -> int:
        return sum(1 for c in self.contents if c.role == "user")

    @property
    def wants_text(self) -> bool:
        return "TEXT" in self.modalities

    @property
    def wants_image(self) -> bool:
        return "IMAGE" in self.modalities


_DATA_FIELDS = (
    "text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult",
    "toolCall", "toolResponse",
)  # fmt: skip


def to_request(body: dict[str, Any]) -> ImageRequest:
    """Build the typed view from `wire.normalize_request` output (camelCase keys, bytes already decoded)."""
    generation = body.get("generationConfig", {})
    thinking = generation.get("thinkingConfig", {})
    image = generation.get("imageConfig", {})
    modalities = tuple(m for m in generation.get("responseModalities", ()) if m != "MODALITY_UNSPECIFIED")
    level = thinking.get("thinkingLevel")
    system = body.get("systemInstruction", {})
    return ImageRequest(
        contents=tuple(_content(i, c) for i, c in enumerate(body.get("contents", []))),
        system_texts=tuple(p["text"] for p in system.get("parts", []) if "text" in p),
        modalities=modalities or ("TEXT", "IMAGE"),
        aspect_ratio=image.get("aspectRatio"),
        image_size=image.get("imageSize"),
        candidate_count=generation.get("candidateCount"),
        include_thoughts=bool(thinking.get("includeThoughts", False)),
        thinking_level=None if level in (None, "THINKING_LEVEL_UNSPECIFIED") else level,
        thinking_budget=thinking.get("thinkingBudget"),
    )


def _content(index: int, content: dict[str, Any]) -> InContent:
    parts = tuple(_part(j, p) for j, p in enumerate(content.get("parts", [])))
    return InContent(index=index, role=content.get("role") or "user", parts=parts)


def _part(index: int, part: dict[str, Any]) -> InPart:
    blob = part.get("inlineData") or part.get("fileData") or {}
    return InPart(
        index=index,
        data_fields=tuple(f for f in _DATA_FIELDS if f in part),
        text=part.get("text"),
        mime_type=blob.get("mimeType"),
        data=part["inlineData"].get("data", b"") if "inlineData" in part else None,
        thought=bool(part.get("thought", False)),
        signature=part.get("thoughtSignature"),
    )
