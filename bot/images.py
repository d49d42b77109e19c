"""Image checks and conversions: reference images going to Gemini, generated images going to chat."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, Literal

from PIL import Image, ImageFile

from bot.image_codec import (
    encode,
    flatten,
    header_orientation,
    icc_profile_for,
    looks_complete,
    open_image,
    shrink,
    to_output_mode,
    to_upright,
    webp_size,
)

log = logging.getLogger(__name__)

RejectReason = Literal["not_image", "unsupported", "too_large", "too_many_pixels", "corrupt", "unavailable"]

# Sizes are counted in binary units but written "KB"/"MB" (1 MB = 1024 * 1024 bytes), the way Discord states its
# 10 MiB upload limit, so that limit reads "10 MB" in messages.
# References are prepared two at a time: a small PNG can declare 49 megapixels and decode to ~200 MB, so letting
# every download slot decode at once could take gigabytes. Two keep both cores busy; most photos skip decoding.
_PREPARING: Final = ThreadPoolExecutor(max_workers=2, thread_name_prefix="image-prepare")

_KB: Final = 1024
_MB: Final = 1024 * _KB
_GB: Final = 1024 * _MB

_ACCEPTED: Final = "PNG, JPEG, WebP or GIF"
_LABELS: Final = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WebP",
    "image/gif": "GIF",
    "image/heic": "HEIC",
    "image/heif": "HEIF",
    "image/avif": "AVIF",
}
_KEEPABLE: Final = frozenset({"image/png", "image/jpeg", "image/webp"})  # Gemini takes these bytes as they are
_UNKNOWN_DECLARED: Final = frozenset({"", "application/octet-stream", "binary/octet-stream"})
# ISO BMFF major brands (bytes 8-12, after "ftyp") of HEIF stills and AVIF (which Gemini doesn't take: converted).
_HEIF_BRANDS: Final = {
    b"avif": "image/avif",
    b"avis": "image/avif",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"heim": "image/heic",
    b"heis": "image/heic",
    b"mif1": "image/heif",
    b"msf1": "image/heif",
    b"heif": "image/heif",
}
_OUTPUT_MAX_PIXELS: Final = 100_000_000  # generated images top out near 19 MP (12288×1536)
_JPEG_QUALITIES: Final[tuple[int, ...]] = (95, 90, 85, 80)
_WEBP_QUALITIES: Final[tuple[int, ...]] = (90, 85, 80)
_WEBP_MAX_SIDE: Final = 16383
_MIN_FIT_SIDE: Final = 64


class ImageRejected(Exception):
    """An image the bot will not use, with a sentence a chat user understands.

    Attributes:
        reason: Machine-readable cause: not_image, unsupported, too_large, too_many_pixels, corrupt or unavailable
            (the download failed).
        user_message: What to tell the user.
    """

    def __init__(self, reason: RejectReason, user_message: str) -> None:
        super().__init__(user_message)
        self.reason: RejectReason = reason
        self.user_message = user_message


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """A reference image ready for Gemini: PNG, JPEG or WebP, upright, no larger than asked."""

    data: bytes
    mime: str
    width: int
    height: int
    original_mime: str
    resized: bool


@dataclass(frozen=True, slots=True)
class FittedImage:
    """A generated image that fits the platform's upload limit; `note` explains any re-encoding to the user."""

    data: bytes
    mime: str
    width: int
    height: int
    reencoded: bool
    note: str


def sniff_mime(data: bytes) -> str | None:
    """The image type the bytes themselves announce (magic numbers), or None; declared types are never trusted."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return _HEIF_BRANDS.get(bytes(data[8:12]))
    return None


def check_declared(*, filename: str, declared_mime: str | None, size: int | None, max_bytes: int) -> None:
    """Refuse an attachment from its metadata alone, before downloading it; unknown type or size passes.

    Raises:
        ImageRejected: The declared size is over max_bytes, or the declared type is not an image type.
    """
    if size is not None and size > max_bytes:
        raise _too_large(filename, size, max_bytes)
    mime = (declared_mime or "").split(";", 1)[0].strip().lower()
    if mime not in _UNKNOWN_DECLARED and not mime.startswith("image/"):
        raise _not_image(filename)


async def prepare_reference(
    data: bytes, *, filename: str, max_bytes: int, max_pixels: int, max_side: int
) -> PreparedImage:
    """Check downloaded bytes and turn them into an image Gemini accepts.

    Pixel dimensions are checked from the header before anything is decoded. The original bytes are kept when
    they are PNG/JPEG/WebP and need no rotation or resize; otherwise the image is re-encoded (PNG with alpha,
    JPEG otherwise). GIFs become their first frame.

    Raises:
        ImageRejected: Too many bytes or pixels, not an image, or damaged.
    """
    if len(data) > max_bytes:
        raise _too_large(filename, len(data), max_bytes)
    mime = sniff_mime(data)
    if mime is None:
        raise _not_image(filename)
    job = functools.partial(_prepare, data, mime, filename, max_pixels, max_side)
    return await asyncio.get_running_loop().run_in_executor(_PREPARING, job)


async def fit_upload(data: bytes, mime: str, *, limit_bytes: int) -> FittedImage:
    """Return the image unchanged if it fits limit_bytes, else re-encode (and if need be shrink) it until it does.

    `mime` is what the caller was told; the bytes decide, and FittedImage.mime is what they really are.

    Raises:
        ImageRejected: The bytes are not a readable image, or even a tiny version would not fit.
    """
    return await asyncio.to_thread(_fit, data, mime, limit_bytes)


def aspect_ratio_of(width: int, height: int, choices: Sequence[str]) -> str:
    """The "W:H" choice closest to width:height, compared in log space so 2:1 and 1:2 are equally far from 1:1."""
    if width <= 0 or height <= 0 or not choices:
        raise ValueError(f"need a positive size and choices, got {width}x{height} and {choices!r}")
    target = math.log(width / height)
    return min(choices, key=lambda choice: abs(math.log(_ratio(choice)) - target))


def human_bytes(n: int) -> str:
    """A size for people: "820 bytes", "820 KB", "1.4 MB", "10 MB" (binary units, see _MB)."""
    if n < _KB:
        return f"{n} byte{'' if n == 1 else 's'}"
    if round(n / _KB) < _KB:
        return f"{round(n / _KB)} KB"
    if n < _GB:
        return f"{_one_decimal(n / _MB)} MB"
    return f"{_one_decimal(n / _GB)} GB"


def _prepare(data: bytes, mime: str, filename: str, max_pixels: int, max_side: int) -> PreparedImage:
    with _open_checked(data, mime, filename, max_pixels) as src:
        try:
            return _prepare_opened(src, data, mime, max_side)
        except Exception as exc:  # whatever a damaged file makes Pillow raise
            raise _corrupt(filename, mime) from exc


_RESAMPLED: Final = frozenset({"RGB", "RGBA", "L", "LA"})  # modes LANCZOS resizes as they are


def _prepare_opened(src: ImageFile.ImageFile, data: bytes, mime: str, max_side: int) -> PreparedImage:
    resized = max(src.size) > max_side
    animated = mime != "image/gif" and int(getattr(src, "n_frames", 1)) > 1
    if mime in _KEEPABLE and not (resized or animated) and header_orientation(src) == 1 and looks_complete(data, mime):
        # Sent as it came: no need to decode a 1.4 MB photo (~30 ms) just to pass its bytes on. A file damaged
        # inside but complete in shape reaches Gemini, whose 400 becomes a specific refund ("couldn't read").
        return PreparedImage(data, mime, src.width, src.height, original_mime=mime, resized=False)
    image, rotated = to_upright(src, max_side=max_side)
    if mime in _KEEPABLE and not (rotated or resized or animated):
        return PreparedImage(data, mime, src.width, src.height, original_mime=mime, resized=False)
    if max(image.size) > max_side and image.mode in _RESAMPLED and "transparency" not in image.info:
        # First: a mode change of the full size is another copy. Not with a colour key (tRNS) for transparency:
        # resampled edge pixels would no longer match the key and come out opaque.
        image = shrink(image, max_side / max(image.size))
    out = to_output_mode(image)
    if max(out.size) > max_side:
        out = shrink(out, max_side / max(out.size))
    fmt, out_mime = ("PNG", "image/png") if out.mode == "RGBA" else ("JPEG", "image/jpeg")
    encoded = encode(out, fmt, quality=90, icc=icc_profile_for(src, out.mode))
    return PreparedImage(encoded, out_mime, out.width, out.height, original_mime=mime, resized=resized)


def _fit(data: bytes, mime: str, limit_bytes: int) -> FittedImage:
    real_mime = sniff_mime(data)
    if real_mime is None:
        raise ImageRejected("not_image", "The generated file isn't an image I can send.")
    with _open_checked(data, real_mime, "generated image", _OUTPUT_MAX_PIXELS) as src:
        if len(data) <= limit_bytes:
            return FittedImage(data, real_mime, src.width, src.height, reencoded=False, note="")
        try:
            upright, _ = to_upright(src, max_side=None)
            image = to_output_mode(upright)
        except Exception as exc:
            raise ImageRejected("corrupt", "The generated image is damaged, so I can't send it.") from exc
        icc = icc_profile_for(src, image.mode)
    if image.mode == "RGBA" and max(image.size) <= _WEBP_MAX_SIDE:
        fmt, label, out_mime, qualities = "WEBP", "WebP", "image/webp", _WEBP_QUALITIES  # WebP keeps the alpha
    else:
        fmt, label, out_mime, qualities = "JPEG", "JPEG", "image/jpeg", _JPEG_QUALITIES
        image = flatten(image)
    current = image
    for quality in qualities:
        encoded = encode(current, fmt, quality=quality, icc=icc)
        if len(encoded) <= limit_bytes:
            break
    scale = 1.0
    while len(encoded) > limit_bytes:
        # JPEG/WebP size grows roughly with the pixel count: aim a little under the limit, shrinking at least 15 %.
        scale *= min(0.85, 0.95 * math.sqrt(max(limit_bytes, 0) / len(encoded)))
        if max(image.size) * scale < _MIN_FIT_SIDE:
            raise ImageRejected("too_large", f"The image can't be made small enough for the {_limit(limit_bytes)}.")
        current = shrink(image, scale)
        encoded = encode(current, fmt, quality=qualities[-1], icc=icc)
    shrunk = "" if current is image else f"Shrunk to {current.width}×{current.height} and re-encoded"
    note = f"{shrunk or 'Re-encoded'} as {label} ({human_bytes(len(encoded))}) to fit the {_limit(limit_bytes)}."
    log.info("fit_upload: %d bytes %s (said %s) -> %d bytes %s", len(data), real_mime, mime, len(encoded), out_mime)
    return FittedImage(encoded, out_mime, current.width, current.height, reencoded=True, note=note)


def _open_checked(data: bytes, mime: str, filename: str, max_pixels: int) -> ImageFile.ImageFile:
    # WebP allocates its whole canvas when opened, so its header is checked first.
    if mime == "image/webp" and (size := webp_size(data)) is not None and size[0] * size[1] > max_pixels:
        raise _too_many_pixels(filename, size, max_pixels)
    try:
        image = open_image(data, mime)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels(filename, None, max_pixels) from exc
    except Exception as exc:
        raise _corrupt(filename, mime) from exc
    if image is None:
        label = _LABELS.get(mime, "image")
        raise ImageRejected(
            "unsupported", f"{_quote(filename)} is a {label} photo, which I can't read. Send {_ACCEPTED}."
        )
    if image.width * image.height > max_pixels:
        image.close()
        raise _too_many_pixels(filename, image.size, max_pixels)
    return image


def _too_large(filename: str, size: int, limit: int) -> ImageRejected:
    if human_bytes(size) == human_bytes(limit):
        return ImageRejected("too_large", f"{_quote(filename)} is just over the {human_bytes(limit)} limit.")
    return ImageRejected("too_large", f"{_quote(filename)} is {human_bytes(size)}; the limit is {human_bytes(limit)}.")


def _too_many_pixels(filename: str, size: tuple[int, int] | None, limit: int) -> ImageRejected:
    megapixels = _one_decimal(limit / 1_000_000)
    what = f"is {size[0]}×{size[1]} pixels" if size else "has too many pixels"
    return ImageRejected("too_many_pixels", f"{_quote(filename)} {what}; the limit is {megapixels} megapixels.")


def _not_image(filename: str) -> ImageRejected:
    return ImageRejected("not_image", f"{_quote(filename)} isn't an image I can read. Send {_ACCEPTED}.")


def _corrupt(filename: str, mime: str) -> ImageRejected:
    label = f"a {_LABELS[mime]}" if mime in _LABELS else "an image"
    return ImageRejected("corrupt", f"{_quote(filename)} looks like {label} but is damaged or truncated.")


def _quote(filename: str) -> str:
    name = " ".join(filename.split()) or "image"
    return f"“{name[:57]}…”" if len(name) > 60 else f"“{name}”"


def _limit(limit_bytes: int) -> str:
    return f"{human_bytes(limit_bytes)} upload limit"


def _ratio(choice: str) -> float:
    width, _, height = choice.partition(":")
    return int(width) / int(height)


def _one_decimal(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")
