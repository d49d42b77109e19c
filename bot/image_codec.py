"""Pillow plumbing for bot.images: lazy opening, upright decoding, mode normalising, resizing and encoding (sync)."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import IO, Final

from PIL import ExifTags, GifImagePlugin, Image, ImageFile, ImageOps, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

_Opener = Callable[[IO[bytes]], ImageFile.ImageFile]

# The plugin classes are used directly rather than Image.open(): it would only try the sniffed format, and its
# decompression-bomb check reads the process-wide Image.MAX_IMAGE_PIXELS; callers check their own pixel limit.
_OPENERS: Final[dict[str, _Opener]] = {
    "image/png": PngImagePlugin.PngImageFile,
    "image/jpeg": JpegImagePlugin.JpegImageFile,
    "image/gif": GifImagePlugin.GifImageFile,
}
if WebPImagePlugin.SUPPORTED:
    _OPENERS["image/webp"] = WebPImagePlugin.WebPImageFile
try:  # Pillow 11.3+ with its libavif: AVIF photos (browsers save them) are read and sent on as PNG or JPEG
    from PIL import AvifImagePlugin

    if AvifImagePlugin.SUPPORTED:
        _OPENERS["image/avif"] = AvifImagePlugin.AvifImageFile
except ImportError:  # pragma: no cover - older Pillow: AVIF is refused by name
    pass

_GREY_MODES: Final = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"})
_RGB_MODES: Final = frozenset({"RGB", "RGBA", "RGBX", "RGBa", "P", "PA"})


def open_image(data: bytes, mime: str) -> ImageFile.ImageFile | None:
    """Parse the header only (no pixels decoded yet); None when no decoder for this type is installed."""
    opener = _OPENERS.get(mime)
    if opener is None and mime in ("image/heic", "image/heif"):
        # HEIC needs a plugin such as pillow-heif (register_heif_opener()); use it if the process registered one.
        registered = Image.OPEN.get("HEIF")
        if registered is not None:
            return registered[0](io.BytesIO(data), "")
    return opener(io.BytesIO(data)) if opener is not None else None


def webp_size(data: bytes) -> tuple[int, int] | None:
    """Canvas size from a WebP header (simple lossy, lossless or extended), or None if it isn't there."""
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def header_orientation(image: ImageFile.ImageFile) -> int:
    """The EXIF orientation from the header alone (1 = upright; damaged EXIF counts as upright)."""
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:
        return 1


def looks_complete(data: bytes, mime: str) -> bool:
    """Cheap truncation check without decoding: PNG ends with IEND, JPEG with EOI, WebP matches its RIFF size."""
    if mime == "image/png":
        return data[-8:-4] == b"IEND"
    if mime == "image/jpeg":
        return data.rstrip(b"\x00").endswith(b"\xff\xd9")
    if mime == "image/webp":
        return len(data) >= 12 and int.from_bytes(data[4:8], "little") + 8 <= len(data)
    return False


def to_upright(image: ImageFile.ImageFile, *, max_side: int | None) -> tuple[Image.Image, bool]:
    """Decode the first frame and apply the EXIF orientation; returns (image, whether it was rotated or flipped)."""
    if max_side is not None and isinstance(image, JpegImagePlugin.JpegImageFile) and max(image.size) > max_side:
        # JPEG decodes at 1/2, 1/4 or 1/8 scale directly: far less memory and time for a picture shrunk anyway.
        scale = max_side / max(image.size)
        image.draft(None, (math.ceil(image.width * scale), math.ceil(image.height * scale)))
    image.load()
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # damaged EXIF is not a damaged picture
        orientation = 1
    if orientation in range(2, 9):
        return ImageOps.exif_transpose(image), True
    return image, False


def to_output_mode(image: Image.Image) -> Image.Image:
    """RGB, L, or RGBA when some pixel is actually transparent."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        # 16-bit grey: scale to 8 bits, since a plain convert("L") clips everything above 255 to white.
        return image.convert("I").point(lambda value: value / 256).convert("L")
    if image.has_transparency_data:
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")  # no copy of what is RGBA already
        return rgba if rgba.getchannel("A").getextrema()[0] != 255 else rgba.convert("RGB")
    return image if image.mode in ("RGB", "L") else image.convert("RGB")


def flatten(image: Image.Image) -> Image.Image:
    """RGBA onto white (for JPEG, which has no alpha); other modes unchanged."""
    if image.mode != "RGBA":
        return image
    background = Image.new("RGB", image.size, "white")
    background.paste(image, mask=image.getchannel("A"))
    return background


def shrink(image: Image.Image, scale: float) -> Image.Image:
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # reducing_gap: a cheap box reduction first, then LANCZOS; visually the same, much faster on big images.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def icc_profile_for(source: Image.Image, out_mode: str) -> bytes | None:
    """The source's colour profile if it still describes out_mode (a CMYK profile must not travel to RGB)."""
    icc = source.info.get("icc_profile")
    family, out_family = _family(source.mode), _family(out_mode)
    return icc if isinstance(icc, bytes) and icc and family is not None and family == out_family else None


def encode(image: Image.Image, fmt: str, *, quality: int, icc: bytes | None) -> bytes:
    """PNG, JPEG or WEBP bytes; metadata (EXIF, XMP, text) is dropped, the colour profile kept when given."""
    buffer = io.BytesIO()
    # icc_profile is always passed: PNG would otherwise copy image.info's profile, which may not fit the mode.
    image.save(buffer, format=fmt, quality=quality, icc_profile=icc)
    return buffer.getvalue()


def _family(mode: str) -> str | None:
    if mode in _GREY_MODES:
        return "grey"
    return "rgb" if mode in _RGB_MODES else None
