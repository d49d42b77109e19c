"""Per-model checks of a parsed request (reference §3.2, §3.3, §3.5, §7); each failure is a realistic 400."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from .errors import BAD_IMAGE, ApiError, invalid, one_of, request_violation
from .models import ModelSpec
from .request import ImageRequest, InPart

INPUT_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"})
_THINKING_LEVELS = ("MINIMAL", "HIGH")


def check_request(req: ImageRequest, spec: ModelSpec, model: str) -> None:
    """Structure, generation config, MIME types and the reference-image cap, in the order Google reports them."""
    _check_structure(req)
    _check_generation(req, spec, model)
    _check_inputs(req, spec)


def _check_structure(req: ImageRequest) -> None:
    if not req.contents:
        raise request_violation("contents", "contents is not specified")
    for content in req.contents:
        if content.role not in ("user", "model"):
            raise invalid("Please use a valid role: user, model.")
        if not content.parts:
            raise request_violation(f"contents[{content.index}].parts", "contents.parts must not be empty.")
        for part in content.parts:
            where = f"contents[{content.index}].parts[{part.index}]"
            if not part.data_fields:
                raise request_violation(f"{where}.data", "required oneof field 'data' must have one initialized field")
            if len(part.data_fields) > 1:
                raise invalid(
                    f"Invalid value at '{where}' (oneof), oneof field 'data' is already set. "
                    f"Cannot set '{part.data_fields[1]}'"
                )
            if part.data is not None and not part.mime_type:
                raise request_violation(f"{where}.inline_data.mime_type", "mime_type is not specified")


def _check_generation(req: ImageRequest, spec: ModelSpec, model: str) -> None:
    if req.candidate_count is not None and req.candidate_count > 1:
        # Gemini 2.5 names the model, Gemini 3.x does not (reference §3.3).
        target = f"models/{model}" if spec.thinking == "none" else "this model"
        raise invalid(f"Multiple candidates is not enabled for {target}")
    unsupported = [m for m in req.modalities if m not in ("TEXT", "IMAGE")]
    if unsupported:
        raise invalid(f"Model does not support the requested response modalities: {unsupported[0].lower()}")
    if req.aspect_ratio is not None and req.aspect_ratio not in spec.aspect_ratios:
        raise request_violation(
            "generation_config.image_config.aspect_ratio", f"aspect_ratio must be one of {one_of(spec.aspect_ratios)}."
        )
    if req.image_size is not None and req.image_size not in spec.sizes:
        raise request_violation(
            "generation_config.image_config.image_size", f"image_size must be one of {one_of(spec.sizes)}."
        )
    _check_thinking(req, spec)


def _check_thinking(req: ImageRequest, spec: ModelSpec) -> None:
    level, budget = req.thinking_level, req.thinking_budget
    if spec.thinking == "none":
        if level is not None:
            raise invalid("Thinking level is not supported for this model.")
        if budget not in (None, 0):
            raise invalid("Thinking budget is not supported for this model.")
        return
    if level is not None and budget is not None:
        raise invalid("You can only set either thinking budget or thinking level, not both.")
    if level is not None and level not in _THINKING_LEVELS:
        raise request_violation(
            "generation_config.thinking_config.thinking_level",
            f"thinking_level must be one of {one_of(_THINKING_LEVELS)} for this model.",
        )
    if budget == 0 and spec.thinking == "always":
        raise invalid("Budget 0 is invalid. This model only works in thinking mode.")


def _check_inputs(req: ImageRequest, spec: ModelSpec) -> None:
    for content in req.contents:
        for part in content.parts:
            mime = (part.mime_type or "").lower()
            if (part.is_image and mime not in INPUT_IMAGE_TYPES) or mime.startswith(("audio/", "video/")):
                raise invalid(f"Unsupported MIME type: {part.mime_type}")
    last = req.last_user
    if last is None:
        return
    images = sum(1 for p in last.parts if p.is_image)
    if images > spec.max_reference_images:
        raise request_violation(
            f"contents[{last.index}].parts",
            f"at most {spec.max_reference_images} input images are supported for this model, got {images}.",
        )


def probe_images(req: ImageRequest) -> list[tuple[int, int] | None]:
    """Decode every inline image (blocking: run in a thread). Returns sizes in order, None where unknown (HEIC).

    Raises:
        ApiError: 400 "Unable to process input image…" for bytes that are not an image.
    """
    sizes: list[tuple[int, int] | None] = []
    for content in req.contents:
        for part in content.parts:
            if part.data is not None and part.is_image:
                sizes.append(_probe(part))
    return sizes


def _probe(part: InPart) -> tuple[int, int] | None:
    data = part.data or b""
    if (part.mime_type or "").lower() in ("image/heic", "image/heif"):
        if data[4:8] != b"ftyp":  # ISO-BMFF header; Pillow cannot decode HEIC without a plugin.
            raise ApiError(400, BAD_IMAGE)
        return None
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
            return img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ApiError(400, BAD_IMAGE) from None
