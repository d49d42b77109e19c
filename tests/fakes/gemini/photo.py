"""Photo-like pictures (gradients, shapes, texture, grain), and a cheap way to make copies byte-unique (blocking)."""

from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import Image, ImageChops, ImageDraw, ImageFilter


def render_photo(width: int, height: int, *, seed: int = 0, grain: float = 2.0) -> Image.Image:
    """An RGB picture that compresses like a photo, not like flat colour: `grain` drives the encoded size."""
    rng = random.Random(seed)
    w, h = width, height
    ramp = Image.linear_gradient("L")
    channels = (ramp.resize((w, h)), Image.radial_gradient("L").resize((w, h)), ramp.rotate(90).resize((w, h)))
    img = Image.merge("RGB", (channels[0], channels[1], ImageChops.invert(channels[2])))
    draw = ImageDraw.Draw(img)
    for _ in range(25):
        x, y, side = rng.randrange(w), rng.randrange(h), rng.randrange(max(2, w // 12), max(3, w // 3))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        if rng.random() < 0.5:
            draw.ellipse((x, y, x + side, y + side * rng.uniform(0.5, 1.5)), fill=colour)
        else:
            draw.polygon([(x + rng.randrange(-side, side), y + rng.randrange(-side, side)) for _ in range(5)], colour)
    img = img.filter(ImageFilter.GaussianBlur(max(1, w // 300)))
    texture = Image.effect_noise((max(1, w // 8), max(1, h // 8)), 60).resize((w, h), Image.Resampling.BICUBIC)
    img = Image.blend(img, Image.merge("RGB", (texture, texture, texture)), 0.25)
    if grain > 0:
        fine = Image.merge("RGB", [Image.effect_noise((w, h), grain) for _ in range(3)])
        img = ImageChops.add(img, fine, scale=1.0, offset=-128)
    return img


def encode(img: Image.Image, fmt: str, *, quality: int = 92, compress_level: int = 6) -> bytes:
    out = io.BytesIO()
    if fmt == "PNG":
        img.save(out, "PNG", compress_level=compress_level)
    else:
        img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def tag_unique(data: bytes, tag: str) -> bytes:
    """The same picture with a different sha256: a tEXt chunk before a PNG's IEND, a COM segment after JPEG's SOI."""
    text = tag.encode()
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82"):
        body = b"tEXt" + b"bench\x00" + text
        chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
        return data[:-12] + chunk + data[-12:]
    if data.startswith(b"\xff\xd8"):
        return data[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + data[2:]
    raise ValueError("tag_unique takes PNG or JPEG bytes")
