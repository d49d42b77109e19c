"""A successful generation: pick size and aspect ratio, render off the event loop, lay out and sign the parts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .jsonbytes import Base64Text
from .models import ModelSpec
from .render import Picture, render_png
from .request import ImageRequest
from .responses import Outcome, caption, image_part, thinking_tokens, thought_text
from .signatures import SignatureBook


async def generate(
    req: ImageRequest,
    spec: ModelSpec,
    *,
    model: str,
    book: SignatureBook,
    input_sizes: list[tuple[int, int] | None],
    noise: bool,
    render: Callable[[Picture], bytes | Base64Text] = render_png,
) -> Outcome:
    size = req.image_size or spec.default_size
    aspect = req.aspect_ratio or _aspect_from_inputs(input_sizes, spec)
    thoughts = spec.thinking != "none" and req.include_thoughts
    pictures: list[tuple[Picture, bool]] = []
    if thoughts and spec.thought_image and req.wants_image:
        # Interim drafts are not billed; the fake draws them at 1K to stay cheap.
        w, h = spec.dimensions(spec.default_size, aspect)
        draft = Picture(w, h, req.prompt, req.turn, model, spec.default_size, aspect, label="thought draft")
        pictures.append((draft, True))
    if req.wants_image:
        w, h = spec.dimensions(size, aspect)
        pictures.append((Picture(w, h, req.prompt, req.turn, model, size, aspect, noise=noise), False))
    images = await asyncio.to_thread(_render_parts, pictures, render)

    parts: list[dict[str, Any]] = []
    if thoughts:
        parts.append({"text": thought_text(req, aspect), "thought": True})
    parts += [p for p in images if p.get("thought")]
    if req.wants_text or not req.wants_image:
        parts.append({"text": caption(req)})
    parts += [p for p in images if not p.get("thought")]
    book.sign(parts, spec)
    return Outcome(
        parts=parts,
        image_tokens=spec.image_tokens[size] if req.wants_image else 0,
        thinking_tokens=thinking_tokens(req, spec),
    )


def _aspect_from_inputs(input_sizes: list[tuple[int, int] | None], spec: ModelSpec) -> str:
    """Without aspectRatio, an edit keeps the shape of the last input image, else 1:1 (IMG)."""
    known = [s for s in input_sizes if s is not None]
    if not known:
        return "1:1"
    w, h = known[-1]
    return spec.nearest_aspect_ratio(w, h)


def _render_parts(
    pictures: list[tuple[Picture, bool]], render: Callable[[Picture], bytes | Base64Text]
) -> list[dict[str, Any]]:
    return [image_part(render(picture), thought=thought) for picture, thought in pictures]
