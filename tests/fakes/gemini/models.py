"""The fake's own model table (reference §1, §4, §7, §9), kept independent of bot/ on purpose."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Thinking = Literal["none", "optional", "always"]

_FLASH_25_1K = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}

# 3 Pro and 3.1 Flash share 1K/2K/4K pixels for the ten common ratios; 2K and 4K are exact multiples of 1K.
_GEMINI_3_1K = {
    "1:1": (1024, 1024),
    "2:3": (848, 1264),
    "3:2": (1264, 848),
    "3:4": (896, 1200),
    "4:3": (1200, 896),
    "4:5": (928, 1152),
    "5:4": (1152, 928),
    "9:16": (768, 1376),
    "16:9": (1376, 768),
    "21:9": (1584, 672),
}
_FLASH_31_EXTRA_1K = {"1:4": (512, 2048), "4:1": (2048, 512), "1:8": (384, 3072), "8:1": (3072, 384)}

# 3.1 Flash "512" is not exactly half of 1K for every ratio (IMG table). 21:9 is published as 792×168, an obvious
# typo for 792×336 (the ratio must stay ≈ 21:9), so the fake renders 792×336.
_FLASH_31_512 = {
    "1:1": (512, 512),
    "1:4": (256, 1024),
    "1:8": (192, 1536),
    "2:3": (424, 632),
    "3:2": (632, 424),
    "3:4": (448, 600),
    "4:1": (1024, 256),
    "4:3": (600, 448),
    "4:5": (464, 576),
    "5:4": (576, 464),
    "8:1": (1536, 192),
    "9:16": (384, 688),
    "16:9": (688, 384),
    "21:9": (792, 336),
}


def _scaled(table: Mapping[str, tuple[int, int]], factor: int) -> dict[str, tuple[int, int]]:
    return {ratio: (w * factor, h * factor) for ratio, (w, h) in table.items()}


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What one image model accepts and produces.

    Attributes:
        id: canonical model id, used for signatures and `modelVersion` of canonical calls.
        pixels: image size ("512", "1K", ...) → aspect ratio → (width, height).
        image_tokens: image size → output tokens per image (PRICE table, §9).
        thinking: "none" (2.5), "optional" (3.1 Flash: minimal/high), "always" (3 Pro).
        signed: whether responses carry thought signatures and requests are checked for them.
        max_reference_images: inline images accepted in the last user turn.
        input_image_tokens: prompt tokens per input image.
        thought_image: whether includeThoughts also returns an interim (unsigned) thought image.
        signature_error_suffix: text appended to the missing-signature 400 (observed on 3.1 Flash, §6.2).
    """

    id: str
    pixels: Mapping[str, Mapping[str, tuple[int, int]]]
    image_tokens: Mapping[str, int]
    thinking: Thinking
    signed: bool
    max_reference_images: int
    input_image_tokens: int = 258
    thought_image: bool = False
    signature_error_suffix: str = ""
    default_size: str = "1K"
    aspect_ratios: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "aspect_ratios", tuple(self.pixels[self.default_size]))

    @property
    def sizes(self) -> tuple[str, ...]:
        return tuple(self.pixels)

    def dimensions(self, size: str, aspect_ratio: str) -> tuple[int, int]:
        return self.pixels[size][aspect_ratio]

    def nearest_aspect_ratio(self, width: int, height: int) -> str:
        """The supported ratio closest (in log space) to an input image's shape."""
        target = math.log(width / height)

        def distance(ratio: str) -> float:
            w, h = ratio.split(":")
            return abs(math.log(int(w) / int(h)) - target)

        return min(self.aspect_ratios, key=distance)


FLASH_25 = ModelSpec(
    id="gemini-2.5-flash-image",
    pixels={"1K": _FLASH_25_1K},
    image_tokens={"1K": 1290},
    thinking="none",
    signed=False,
    max_reference_images=3,
)

PRO_3 = ModelSpec(
    id="gemini-3-pro-image-preview",
    pixels={size: _scaled(_GEMINI_3_1K, factor) for size, factor in (("1K", 1), ("2K", 2), ("4K", 4))},
    image_tokens={"1K": 1120, "2K": 1120, "4K": 2000},
    thinking="always",
    signed=True,
    max_reference_images=14,
    input_image_tokens=560,
    thought_image=True,
)

_FLASH_31_1K = {**_GEMINI_3_1K, **_FLASH_31_EXTRA_1K}
FLASH_31 = ModelSpec(
    id="gemini-3.1-flash-image-preview",
    pixels={
        "512": _FLASH_31_512,
        "1K": _FLASH_31_1K,
        "2K": _scaled(_FLASH_31_1K, 2),
        "4K": _scaled(_FLASH_31_1K, 4),
    },
    image_tokens={"512": 747, "1K": 1120, "2K": 1680, "4K": 2520},
    thinking="optional",
    signed=True,
    max_reference_images=14,
    signature_error_suffix=(
        " Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures#model-behavior for more details."
    ),
)

# Model id as it appears in the URL → spec. Aliases (§1) share the canonical spec.
DEFAULT_MODELS: Mapping[str, ModelSpec] = {
    FLASH_25.id: FLASH_25,
    "gemini-2.5-flash-image-preview": FLASH_25,
    PRO_3.id: PRO_3,
    "gemini-3-pro-image": PRO_3,
    "nano-banana-pro-preview": PRO_3,
    FLASH_31.id: FLASH_31,
    "gemini-3.1-flash-image": FLASH_31,
}

CANONICAL_MODELS: tuple[ModelSpec, ...] = (FLASH_25, PRO_3, FLASH_31)
