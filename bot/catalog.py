"""The Gemini image models the bot knows: sizes, aspect ratios, limits and prices, in one table."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from bot.errors import UserError

SIZES: Final = ("512", "1K", "2K", "4K")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What one image model accepts and what it costs.

    Attributes:
        id: The model id sent in the URL (Developer API).
        nickname: The name people know it by.
        pixels: (size, aspect ratio) -> (width, height) of the image the model returns.
        max_references: Reference images the bot allows per request.
        thinking: "none", "optional" (level can be set) or "always".
        price_per_image: size -> USD per output image (Standard tier).
        image_tokens: size -> output tokens per image.
        input_usd_per_mtok / text_usd_per_mtok / image_usd_per_mtok: token prices per million.
        aliases: other spellings accepted from users and config.
    """

    id: str
    nickname: str
    pixels: MappingProxyType[tuple[str, str], tuple[int, int]]
    max_references: int
    thinking: str
    price_per_image: MappingProxyType[str, float]
    image_tokens: MappingProxyType[str, int]
    input_usd_per_mtok: float
    text_usd_per_mtok: float
    image_usd_per_mtok: float
    aliases: tuple[str, ...] = field(default=())

    @property
    def sizes(self) -> tuple[str, ...]:
        return tuple(s for s in SIZES if any(k[0] == s for k in self.pixels))

    @property
    def aspect_ratios(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for _, ratio in self.pixels:
            seen.setdefault(ratio, None)
        return tuple(seen)

    @property
    def default_size(self) -> str:
        return "1K"

    def dimensions(self, size: str, aspect_ratio: str) -> tuple[int, int]:
        return self.pixels[(size, aspect_ratio)]

    def usd_per_image(self, size: str) -> float:
        return self.price_per_image[size]


def _table(
    sizes: tuple[str, ...], rows: dict[str, tuple[tuple[int, int], ...]]
) -> dict[tuple[str, str], tuple[int, int]]:
    return {(size, ratio): dims[i] for ratio, dims in rows.items() for i, size in enumerate(sizes)}


_FLASH_25_PIXELS = _table(
    ("1K",),
    {
        "1:1": ((1024, 1024),),
        "2:3": ((832, 1248),),
        "3:2": ((1248, 832),),
        "3:4": ((864, 1184),),
        "4:3": ((1184, 864),),
        "4:5": ((896, 1152),),
        "5:4": ((1152, 896),),
        "9:16": ((768, 1344),),
        "16:9": ((1344, 768),),
        "21:9": ((1536, 672),),
    },
)

_G3_ROWS: dict[str, tuple[tuple[int, int], ...]] = {
    # ratio: 512, 1K, 2K, 4K
    "1:1": ((512, 512), (1024, 1024), (2048, 2048), (4096, 4096)),
    "2:3": ((424, 632), (848, 1264), (1696, 2528), (3392, 5056)),
    "3:2": ((632, 424), (1264, 848), (2528, 1696), (5056, 3392)),
    "3:4": ((448, 600), (896, 1200), (1792, 2400), (3584, 4800)),
    "4:3": ((600, 448), (1200, 896), (2400, 1792), (4800, 3584)),
    "4:5": ((464, 576), (928, 1152), (1856, 2304), (3712, 4608)),
    "5:4": ((576, 464), (1152, 928), (2304, 1856), (4608, 3712)),
    "9:16": ((384, 688), (768, 1376), (1536, 2752), (3072, 5504)),
    "16:9": ((688, 384), (1376, 768), (2752, 1536), (5504, 3072)),
    # Google's page prints 792x168 for 512 @ 21:9, a typo for 792x336.
    "21:9": ((792, 336), (1584, 672), (3168, 1344), (6336, 2688)),
}
_FLASH_31_EXTRA_ROWS: dict[str, tuple[tuple[int, int], ...]] = {
    "1:4": ((256, 1024), (512, 2048), (1024, 4096), (2048, 8192)),
    "4:1": ((1024, 256), (2048, 512), (4096, 1024), (8192, 2048)),
    "1:8": ((192, 1536), (384, 3072), (768, 6144), (1536, 12288)),
    "8:1": ((1536, 192), (3072, 384), (6144, 768), (12288, 1536)),
}

_FLASH_31_PIXELS = _table(SIZES, {**_G3_ROWS, **_FLASH_31_EXTRA_ROWS})
_PRO_PIXELS = _table(("1K", "2K", "4K"), {ratio: dims[1:] for ratio, dims in _G3_ROWS.items()})

FLASH_31: Final = ModelSpec(
    id="gemini-3.1-flash-image-preview",
    nickname="Nano Banana 2",
    pixels=MappingProxyType(_FLASH_31_PIXELS),
    max_references=14,
    thinking="optional",
    price_per_image=MappingProxyType({"512": 0.045, "1K": 0.067, "2K": 0.101, "4K": 0.151}),
    image_tokens=MappingProxyType({"512": 747, "1K": 1120, "2K": 1680, "4K": 2520}),
    input_usd_per_mtok=0.50,
    text_usd_per_mtok=3.0,
    image_usd_per_mtok=60.0,
    aliases=("gemini-3.1-flash-image", "nano-banana-2", "flash"),
)
PRO_3: Final = ModelSpec(
    id="gemini-3-pro-image-preview",
    nickname="Nano Banana Pro",
    pixels=MappingProxyType(_PRO_PIXELS),
    max_references=14,
    thinking="always",
    price_per_image=MappingProxyType({"1K": 0.134, "2K": 0.134, "4K": 0.24}),
    image_tokens=MappingProxyType({"1K": 1120, "2K": 1120, "4K": 2000}),
    input_usd_per_mtok=2.0,
    text_usd_per_mtok=12.0,
    image_usd_per_mtok=120.0,
    aliases=("gemini-3-pro-image", "nano-banana-pro-preview", "nano-banana-pro", "pro"),
)
FLASH_25: Final = ModelSpec(
    id="gemini-2.5-flash-image",
    nickname="Nano Banana",
    pixels=MappingProxyType(_FLASH_25_PIXELS),
    max_references=3,
    thinking="none",
    price_per_image=MappingProxyType({"1K": 0.039}),
    image_tokens=MappingProxyType({"1K": 1290}),
    input_usd_per_mtok=0.30,
    text_usd_per_mtok=2.5,
    image_usd_per_mtok=30.0,
    aliases=("gemini-2.5-flash-image-preview", "nano-banana", "flash-2.5"),
)

MODELS: Final[tuple[ModelSpec, ...]] = (FLASH_31, PRO_3, FLASH_25)
DEFAULT_MODEL: Final = FLASH_31.id


class UnknownModelError(UserError):
    """A model name that is not in the table."""


def lookup(name: str) -> ModelSpec:
    """Find a model by id, `models/` path, nickname or alias (case-insensitive)."""
    wanted = name.strip().lower().removeprefix("models/")
    for spec in MODELS:
        if wanted in (spec.id, spec.nickname.lower(), *spec.aliases):
            return spec
    known = ", ".join(spec.id for spec in MODELS)
    raise UnknownModelError(f"I don't know the model “{name}”. Choose one of: {known}.")
