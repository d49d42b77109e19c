"""Contents and parts exactly as Gemini sends them, thought signatures kept as their raw bytes."""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pybase64

Role = Literal["user", "model"]


_URL_SAFE = str.maketrans("-_", "+/")


def b64decode_any(value: str | bytes | memoryview) -> bytes:
    """Decode standard or URL-safe base64, padded or not (proto3 JSON accepts all four); text or its ASCII bytes.

    Images are megabytes of base64: the common case (standard, padded) goes to pybase64's SIMD decoder (~45×
    faster than binascii, which held the GIL ~6 ms per 2 MB image), with no intermediate copy. What it refuses
    takes the general path below, which accepts a superset with identical results (tests/gemini/test_parts.py).
    """
    try:
        return pybase64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        pass
    if not isinstance(value, str):
        try:
            value = bytes(value).decode("ascii")
        except UnicodeDecodeError as exc:
            raise ValueError("invalid base64") from exc
    if "-" in value or "_" in value:
        value = value.translate(_URL_SAFE)
    if len(value) % 4:
        value = value.strip()
        value += "=" * (-len(value) % 4)
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except ValueError as exc:  # binascii.Error, or a non-ASCII character
        raise ValueError("invalid base64") from exc


def b64_length(size: int) -> int:
    """Length of the padded base64 text of `size` bytes."""
    return 4 * -(-size // 3)


def b64encode(data: bytes | memoryview) -> str:
    return pybase64.b64encode(data).decode("ascii")


def _field(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    return obj[camel] if camel in obj else obj.get(snake)


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a content: text or an inline image, maybe a thought, maybe signed.

    Attributes:
        text: Text of a text part.
        mime_type: MIME type of an inline image.
        data: Decoded image bytes of an inline image.
        thought: True for the model's thinking (interim text or draft images).
        signature: Decoded `thoughtSignature` bytes, sent back unchanged on the next turn.
    """

    text: str | None = None
    mime_type: str | None = None
    data: bytes | None = None
    thought: bool = False
    signature: bytes | None = None

    @property
    def is_image(self) -> bool:
        return self.data is not None

    @classmethod
    def image(cls, data: bytes, mime_type: str) -> Part:
        return cls(mime_type=mime_type, data=data)

    def to_wire(self, inline: Callable[[bytes], str] = b64encode) -> dict[str, Any]:
        """The JSON object; `inline` turns image bytes into the `data` text (base64 unless streaming)."""
        wire: dict[str, Any] = {}
        if self.data is not None:
            wire["inlineData"] = {
                "mimeType": self.mime_type or "application/octet-stream",
                "data": inline(self.data),
            }
        else:
            wire["text"] = self.text or ""
        if self.thought:
            wire["thought"] = True
        if self.signature is not None:
            wire["thoughtSignature"] = b64encode(self.signature)
        return wire

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> Part:
        inline = _field(wire, "inlineData", "inline_data")
        signature = _field(wire, "thoughtSignature", "thought_signature")
        decoded_sig = b64decode_any(signature) if isinstance(signature, str) and signature else None
        thought = bool(wire.get("thought", False))
        if isinstance(inline, Mapping):
            data = inline.get("data")  # text, or a memoryview of the answer's bytes (see lift.py)
            return cls(
                mime_type=str(_field(inline, "mimeType", "mime_type") or "application/octet-stream"),
                data=b64decode_any(data if isinstance(data, bytes | memoryview) else str(data or "")),
                thought=thought,
                signature=decoded_sig,
            )
        return cls(text=str(wire.get("text") or ""), thought=thought, signature=decoded_sig)


@dataclass(frozen=True, slots=True)
class Content:
    """A turn of the conversation: who spoke and their parts, in order."""

    role: Role
    parts: tuple[Part, ...]

    @classmethod
    def user(cls, text: str, images: tuple[tuple[bytes, str], ...] = ()) -> Content:
        """A user turn: reference images first, then the instruction (Google's samples use this order)."""
        parts = tuple(Part.image(data, mime) for data, mime in images)
        return cls(role="user", parts=(*parts, Part(text=text)) if text else parts)

    @property
    def images(self) -> tuple[Part, ...]:
        """Non-thought images: what the model delivered (thought images are drafts)."""
        return tuple(p for p in self.parts if p.is_image and not p.thought)

    @property
    def text(self) -> str:
        """Non-thought text, joined."""
        return "\n".join(p.text for p in self.parts if p.text and not p.thought and not p.is_image).strip()

    def to_wire(self, inline: Callable[[bytes], str] = b64encode) -> dict[str, Any]:
        return {"role": self.role, "parts": [p.to_wire(inline) for p in self.parts]}

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any], *, default_role: Role = "model") -> Content:
        role = wire.get("role") or default_role
        if role not in ("user", "model"):
            raise ValueError(f"unknown role {role!r}")
        parts = wire.get("parts") or []
        return cls(role=role, parts=tuple(Part.from_wire(p) for p in parts if isinstance(p, Mapping)))

    def to_json(self) -> str:
        """Serialize for storage; `from_json` gives back an equal Content, signatures byte-exact."""
        return json.dumps(self.to_wire(), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> Content:
        return cls.from_wire(json.loads(raw))
