"""Real PNGs at the exact pixel size, showing what was asked (blocking: call from a worker thread)."""

from __future__ import annotations

import colorsys
import hashlib
import io
import os
import textwrap
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont, features

_INK = (28, 28, 36)
_SAMPLE = "the quick brown fox jumps over a lazy dog 0123456789"


@dataclass(frozen=True, slots=True)
class Picture:
    """What to draw: the caption lines are the point, so a person opening the PNG sees what happened."""

    width: int
    height: int
    prompt: str
    turn: int
    model: str
    size: str
    aspect_ratio: str
    label: str = ""
    noise: bool = False


def render_png(picture: Picture) -> bytes:
    """Palette images compress fast even at 12288×1536; noise mode is RGB random data so the PNG is big."""
    w, h = picture.width, picture.height
    background, accent = _colours(picture.prompt)
    if picture.noise:
        img = Image.frombytes("RGB", (w, h), os.urandom(w * h * 3))
        ink: int | tuple[int, int, int] = _INK
        paper: int | tuple[int, int, int] = (255, 255, 255)
    else:
        img = Image.new("P", (w, h), 0)
        img.putpalette([*background, *_INK, *accent, 255, 255, 255])
        ink, paper = 1, 3
    draw = ImageDraw.Draw(img)
    band = max(2, h // 12)
    if not picture.noise:
        draw.rectangle((0, 0, w - 1, band), fill=2)
        draw.rectangle((0, h - band, w - 1, h - 1), fill=2)
    font_size = max(8, min(120, w // 24, (h - 2 * band) // 7))
    font = _font(font_size)
    margin = max(2, font_size // 2)
    columns = max(8, int((w - 2 * margin) / (font.getlength(_SAMPLE) / len(_SAMPLE))))
    header = [f"turn {picture.turn}" + (f" · {picture.label}" if picture.label else "")]
    footer = textwrap.wrap(f"{picture.model} · {picture.size} · {picture.aspect_ratio} · {w}x{h}", columns)
    step = int(font_size * 1.25)
    room = max(1, (h - 2 * band - 2 * margin) // step)
    prompt = textwrap.wrap(picture.prompt or "(no prompt)", columns)
    space = max(0, room - len(header) - len(footer))
    if len(prompt) > space:
        prompt = [*prompt[: space - 1], prompt[space - 1][: columns - 1] + "…"] if space else []
    lines = [*header, *prompt, *footer][:room]
    top = band + margin
    if picture.noise:
        draw.rectangle((0, top - margin // 2, w - 1, top + step * len(lines)), fill=paper)
    for i, line in enumerate(lines):
        draw.text((margin, top + i * step), line, fill=ink, font=font)
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=0 if picture.noise else 1)
    return out.getvalue()


def _colours(prompt: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    hue = hashlib.sha256(prompt.encode()).digest()[0] / 255
    light = colorsys.hls_to_rgb(hue, 0.93, 0.6)
    strong = colorsys.hls_to_rgb(hue, 0.45, 0.7)
    return (_rgb(light), _rgb(strong))


def _rgb(c: tuple[float, float, float]) -> tuple[int, int, int]:
    return (round(c[0] * 255), round(c[1] * 255), round(c[2] * 255))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if features.check("freetype2"):
        return ImageFont.load_default(size=size)
    return ImageFont.load_default()
