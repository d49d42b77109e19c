"""GenerateContentResponse bodies (reference §5): parts, finish reasons, usageMetadata, stream chunks."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

import pybase64

from .faults import IMAGE_BLOCKS, Fault
from .jsonbytes import Base64Text
from .models import ModelSpec
from .request import ImageRequest


@dataclass(slots=True)
class Outcome:
    """One generation: response parts (thought parts first) plus what usageMetadata needs."""

    parts: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = "STOP"
    finish_message: str | None = None
    block_reason: str | None = None
    image_tokens: int = 0
    thinking_tokens: int = 0


def text_tokens(text: str) -> int:
    return len(text) // 4 + 1


def thinking_tokens(req: ImageRequest, spec: ModelSpec) -> int:
    """Billed whether or not thoughts are returned (IMG); deterministic per prompt."""
    if spec.thinking == "none":
        return 0
    seed = hashlib.sha256(req.prompt.encode()).digest()[1]
    if spec.thinking == "always" or req.thinking_level == "HIGH":
        return 200 + seed * 3
    return 40 + seed // 2


def thought_text(req: ImageRequest, aspect_ratio: str) -> str:
    subject = req.prompt[:80] or "the image"
    return (
        f"**Planning the composition**\n\nI'm laying out {subject!r} as a {aspect_ratio} picture for turn {req.turn}."
    )


def caption(req: ImageRequest) -> str:
    return f"Here is your image for turn {req.turn}: {req.prompt[:120]}"


def image_part(png: bytes | Base64Text, *, thought: bool = False) -> dict[str, Any]:
    data = png if isinstance(png, Base64Text) else Base64Text(pybase64.b64encode(png).decode("ascii"))
    part: dict[str, Any] = {"inlineData": {"mimeType": "image/png", "data": data}}
    if thought:
        part["thought"] = True
    return part


def content_outcome(fault: Fault, req: ImageRequest, spec: ModelSpec) -> Outcome:
    """A generation replaced by a content-level fault (no image; text where the real API gives text)."""
    thinking = thinking_tokens(req, spec)
    if fault is Fault.BLOCKED_PROMPT:
        return Outcome(finish_reason=None, block_reason="PROHIBITED_CONTENT")
    if fault in IMAGE_BLOCKS:
        return Outcome(finish_reason=fault.name, finish_message=IMAGE_BLOCKS[fault], thinking_tokens=thinking)
    text = (
        f"I can't produce an image for that, but here is a description instead: {req.prompt[:120]}"
        if fault is Fault.NO_IMAGE
        else f"Sure! Imagine {req.prompt[:120]} (turn {req.turn})."
    )
    reason = "NO_IMAGE" if fault is Fault.NO_IMAGE else "STOP"
    return Outcome(parts=[{"text": text}], finish_reason=reason, thinking_tokens=thinking)


def usage_metadata(req: ImageRequest, spec: ModelSpec, outcome: Outcome) -> dict[str, Any]:
    """total = prompt + candidates + thoughts; thought parts are billed as thoughts, input images as IMAGE."""
    prompt_text = sum(text_tokens(t) for t in req.system_texts)
    prompt_images = 0
    for content in req.contents:
        for part in content.parts:
            if part.thought:
                continue
            if part.text is not None:
                prompt_text += text_tokens(part.text)
            elif part.is_image:
                prompt_images += spec.input_image_tokens
    prompt = prompt_text + prompt_images
    usage: dict[str, Any] = {"promptTokenCount": prompt}
    details = [{"modality": "TEXT", "tokenCount": prompt_text}]
    if prompt_images:
        details.append({"modality": "IMAGE", "tokenCount": prompt_images})
    if outcome.block_reason:
        usage |= {"totalTokenCount": prompt, "promptTokensDetails": details}
        return usage
    answer_text = sum(text_tokens(p["text"]) for p in outcome.parts if "text" in p and not p.get("thought"))
    candidates = outcome.image_tokens + answer_text
    usage["candidatesTokenCount"] = candidates
    usage["totalTokenCount"] = prompt + candidates + outcome.thinking_tokens
    usage["promptTokensDetails"] = details
    if outcome.image_tokens:
        usage["candidatesTokensDetails"] = [{"modality": "IMAGE", "tokenCount": outcome.image_tokens}]
    elif answer_text:
        usage["candidatesTokensDetails"] = [{"modality": "TEXT", "tokenCount": answer_text}]
    if outcome.thinking_tokens:
        usage["thoughtsTokenCount"] = outcome.thinking_tokens
    return usage


def response_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(15)).decode("ascii").rstrip("=")


def body(outcome: Outcome, usage: dict[str, Any], *, model: str, rid: str, parts: list[dict[str, Any]] | None = None,
         final: bool = True) -> dict[str, Any]:  # fmt: skip
    """One response object; `parts` and `final` let the stream split an outcome into chunks."""
    result: dict[str, Any] = {}
    if outcome.block_reason:
        result["promptFeedback"] = {"blockReason": outcome.block_reason}
    else:
        shown = outcome.parts if parts is None else parts
        content: dict[str, Any] = {"parts": shown, "role": "model"} if shown else {"role": "model"}
        candidate: dict[str, Any] = {"content": content}
        if final:
            candidate["finishReason"] = outcome.finish_reason
            if outcome.finish_message:
                candidate["finishMessage"] = outcome.finish_message
        candidate["index"] = 0
        result["candidates"] = [candidate]
    if final:
        result["usageMetadata"] = usage
    else:
        result["usageMetadata"] = {k: v for k, v in usage.items() if k.startswith("prompt")} | {
            "totalTokenCount": usage["promptTokenCount"]
        }
    result["modelVersion"] = model
    result["responseId"] = rid
    return result


def stream_chunks(outcome: Outcome, usage: dict[str, Any], *, model: str, rid: str) -> list[dict[str, Any]]:
    """Thoughts, then text, then images with finishReason: each chunk a full response object (§5.6)."""
    groups: list[list[dict[str, Any]]] = []
    for part in outcome.parts:
        if groups and _kind(groups[-1][-1]) == _kind(part):
            groups[-1].append(part)
        else:
            groups.append([part])
    if len(groups) <= 1:
        return [body(outcome, usage, model=model, rid=rid)]
    chunks = [body(outcome, usage, model=model, rid=rid, parts=g, final=False) for g in groups[:-1]]
    return [*chunks, body(outcome, usage, model=model, rid=rid, parts=groups[-1])]


def _kind(part: dict[str, Any]) -> str:
    return "thought" if part.get("thought") else ("image" if "inlineData" in part else "text")
