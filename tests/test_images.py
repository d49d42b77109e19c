"""bot.images: sniffing, refusals, reference preparation and upload fitting, all on real images made with Pillow."""

from __future__ import annotations

import io
import os
import resource
import struct
import zlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, features

from bot.images import (
    ImageRejected,
    aspect_ratio_of,
    check_declared,
    fit_upload,
    human_bytes,
    prepare_reference,
    sniff_mime,
)

MB = 1024 * 1024
LIMITS = {"max_bytes": 20 * MB, "max_pixels": 50_000_000, "max_side": 2048}
RED, BLUE = (255, 0, 0), (0, 0, 255)


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def halves(size: tuple[int, int], left: tuple[int, int, int], right: tuple[int, int, int]) -> Image.Image:
    image = Image.new("RGB", size, left)
    image.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return image


def noise(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    return Image.frombytes(mode, size, os.urandom(size[0] * size[1] * len(mode)))


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming width×height RGB, with only a few KB of (zero) pixel data behind it."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", zlib.compress(bytes(64 * 1024))) + png_chunk(b"IEND", b"")


def bomb_jpeg() -> bytes:
    data = bytearray(encode(Image.new("RGB", (16, 16)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 30000, 30000)  # height, width
    return bytes(data)


def bomb_gif() -> bytes:
    data = bytearray(encode(Image.new("P", (16, 16)), "GIF"))
    data[6:10] = struct.pack("<HH", 30000, 30000)  # logical screen
    at = data.index(b",")  # image descriptor: the first frame covers the whole screen
    data[at + 5 : at + 9] = struct.pack("<HH", 30000, 30000)
    return bytes(data)


def bomb_webp() -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (29999).to_bytes(3, "little") * 2
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


PNG = encode(Image.new("RGB", (8, 8), RED), "PNG")
JPEG = encode(Image.new("RGB", (8, 8), RED), "JPEG")
WEBP = encode(Image.new("RGB", (8, 8), RED), "WEBP")
GIF = encode(Image.new("P", (8, 8)), "GIF")
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (WEBP, "image/webp"),
        (GIF, "image/gif"),
        (HEIC, "image/heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", "image/heif"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1", "image/avif"),
        (b"%PDF-1.7\n", None),
        (b"hello, this is text", None),
        (b"", None),
    ],
)
def test_sniff_mime(data: bytes, mime: str | None) -> None:
    assert sniff_mime(data) == mime


async def test_png_named_jpg_is_read_as_png_and_kept_as_is() -> None:
    check_declared(filename="cat.jpg", declared_mime="image/jpeg", size=len(PNG), max_bytes=MB)
    prepared = await prepare_reference(PNG, filename="cat.jpg", **LIMITS)
    assert (prepared.mime, prepared.original_mime, prepared.resized) == ("image/png", "image/png", False)
    assert prepared.data is PNG
    assert (prepared.width, prepared.height) == (8, 8)


async def test_text_named_png_is_not_an_image() -> None:
    with pytest.raises(ImageRejected) as caught:
        await prepare_reference(b"just some notes\n" * 10, filename="notes.png", **LIMITS)
    assert caught.value.reason == "not_image"
    assert caught.value.user_message == "“notes.png” isn't an image I can read. Send PNG, JPEG, WebP or GIF."


@pytest.mark.parametrize(
    ("mime", "size", "reason", "message"),
    [
        (None, int(31.2 * MB), "too_large", "“f.png” is 31.2 MB; the limit is 20 MB."),
        ("image/png", 20 * MB + 5, "too_large", "“f.png” is just over the 20 MB limit."),
        ("application/pdf", 1000, "not_image", "“f.png” isn't an image I can read. Send PNG, JPEG, WebP or GIF."),
        ("text/plain; charset=utf-8", None, "not_image", None),
    ],
)
def test_check_declared_refuses(mime: str | None, size: int | None, reason: str, message: str | None) -> None:
    with pytest.raises(ImageRejected) as caught:
        check_declared(filename="f.png", declared_mime=mime, size=size, max_bytes=20 * MB)
    assert caught.value.reason == reason
    assert message is None or caught.value.user_message == message


@pytest.mark.parametrize(
    ("mime", "size"),
    [(None, None), ("image/png", 20 * MB), ("IMAGE/JPEG; q=1", 10), ("application/octet-stream", None), ("", 5)],
)
def test_check_declared_lets_unknown_or_fitting_through(mime: str | None, size: int | None) -> None:
    check_declared(filename="f.png", declared_mime=mime, size=size, max_bytes=20 * MB)


async def test_too_many_bytes_after_download() -> None:
    with pytest.raises(ImageRejected) as caught:
        await prepare_reference(PNG, filename="a.png", max_bytes=10, max_pixels=100, max_side=10)
    assert caught.value.reason == "too_large"


@pytest.mark.parametrize("make", [lambda: bomb_png(30000, 30000), bomb_jpeg, bomb_gif, bomb_webp])
async def test_decompression_bomb_refused_from_header(make: Callable[[], bytes]) -> None:
    data = make()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(ImageRejected) as caught:
        await prepare_reference(data, filename="bomb.png", **LIMITS)
    assert caught.value.reason == "too_many_pixels"
    assert caught.value.user_message == "“bomb.png” is 30000×30000 pixels; the limit is 50 megapixels."
    # Decoding would need 2.7 GB; refusing from the header must not grow the peak memory noticeably.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024


async def test_bomb_within_pillows_own_limit_still_refused_by_ours() -> None:
    with pytest.raises(ImageRejected) as caught:
        await prepare_reference(bomb_png(2000, 2000), filename="b.png", max_bytes=MB, max_pixels=1_000_000, max_side=99)
    assert caught.value.user_message == "“b.png” is 2000×2000 pixels; the limit is 1 megapixels."


@pytest.mark.parametrize(("fmt", "label"), [("PNG", "PNG"), ("JPEG", "JPEG"), ("WEBP", "WebP"), ("GIF", "GIF")])
async def test_truncated_image_is_corrupt(fmt: str, label: str) -> None:
    data = encode(noise((256, 256)), fmt)
    with pytest.raises(ImageRejected) as caught:
        await prepare_reference(data[: len(data) // 2], filename="broken.img", **LIMITS)
    assert caught.value.reason == "corrupt"
    assert caught.value.user_message == f"“broken.img” looks like a {label} but is damaged or truncated."


async def test_gif_becomes_its_first_frame() -> None:
    frames = [Image.new("RGB", (40, 30), RED), Image.new("RGB", (40, 30), BLUE)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    prepared = await prepare_reference(buffer.getvalue(), filename="anim.gif", **LIMITS)
    assert (prepared.mime, prepared.original_mime, prepared.width, prepared.height) == (
        "image/jpeg",
        "image/gif",
        40,
        30,
    )
    r, g, b = decode(prepared.data).convert("RGB").getpixel((20, 15))  # type: ignore[misc]
    assert r > 200 and g < 50 and b < 50


async def test_transparent_gif_becomes_png_with_alpha() -> None:
    image = Image.new("P", (20, 20), 1)
    image.putpalette([0, 0, 0, 255, 0, 0])
    image.paste(0, (0, 0, 10, 20))
    prepared = await prepare_reference(encode(image, "GIF", transparency=0), filename="t.gif", **LIMITS)
    out = decode(prepared.data)
    assert (prepared.mime, out.mode) == ("image/png", "RGBA")
    assert out.getpixel((2, 2))[3] == 0 and out.getpixel((15, 2)) == (255, 0, 0, 255)  # type: ignore[index]


async def test_rgba_png_keeps_alpha_when_resized() -> None:
    image = Image.new("RGBA", (400, 200), (0, 128, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, 200, 200))
    prepared = await prepare_reference(
        encode(image, "PNG"), filename="a.png", max_bytes=MB, max_pixels=MB, max_side=100
    )
    out = decode(prepared.data)
    assert (prepared.mime, out.mode, out.size, prepared.resized) == ("image/png", "RGBA", (100, 50), True)
    assert out.getpixel((10, 25))[3] == 0 and out.getpixel((90, 25))[3] == 255  # type: ignore[index]


async def test_opaque_rgba_is_resized_to_jpeg() -> None:
    data = encode(Image.new("RGBA", (400, 200), (0, 128, 0, 255)), "PNG")
    prepared = await prepare_reference(data, filename="a.png", max_bytes=MB, max_pixels=MB, max_side=100)
    assert (prepared.mime, prepared.width, prepared.height) == ("image/jpeg", 100, 50)


async def test_big_jpeg_is_downscaled_keeping_aspect() -> None:
    data = encode(halves((4000, 3000), RED, BLUE), "JPEG", quality=80)
    prepared = await prepare_reference(data, filename="big.jpg", **LIMITS)
    out = decode(prepared.data)
    assert (prepared.mime, prepared.resized, out.size) == ("image/jpeg", True, (2048, 1536))
    assert (prepared.width, prepared.height) == out.size


async def test_exif_rotated_jpeg_comes_out_upright() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90° clockwise to display
    data = encode(halves((200, 100), RED, BLUE), "JPEG", exif=exif.tobytes())
    prepared = await prepare_reference(data, filename="phone.jpg", **LIMITS)
    out = decode(prepared.data).convert("RGB")
    assert (prepared.width, prepared.height, out.size, prepared.resized) == (100, 200, (100, 200), False)
    assert out.getpixel((50, 20))[0] > 200 and out.getpixel((50, 180))[2] > 200  # type: ignore[index]
    assert 0x0112 not in out.getexif()


@pytest.mark.parametrize(
    ("image", "fmt", "out_mode"),
    [
        (Image.new("P", (300, 300), 3), "PNG", "RGB"),
        (Image.new("CMYK", (300, 300), (0, 255, 255, 0)), "JPEG", "RGB"),
        (Image.new("L", (300, 300), 77), "PNG", "L"),
        (Image.new("LA", (300, 300), (77, 100)), "PNG", "RGBA"),
        (Image.new("I;16", (300, 300), 40000), "PNG", "L"),
    ],
)
async def test_other_modes_are_converted(image: Image.Image, fmt: str, out_mode: str) -> None:
    prepared = await prepare_reference(encode(image, fmt), filename="m", max_bytes=MB, max_pixels=MB, max_side=150)
    out = decode(prepared.data)
    assert (out.mode, out.size) == (out_mode, (150, 150))
    if image.mode == "I;16":
        assert out.getpixel((75, 75)) == 40000 // 256  # scaled to 8 bits, not clipped to white


async def test_noisy_png_is_reencoded_as_jpeg_to_fit() -> None:
    data = encode(noise((2048, 2048)), "PNG", compress_level=1)
    assert len(data) > 12 * MB
    fitted = await fit_upload(data, "image/png", limit_bytes=10 * MB)
    assert (fitted.mime, fitted.reencoded, fitted.width, fitted.height) == ("image/jpeg", True, 2048, 2048)
    assert len(fitted.data) <= 10 * MB
    assert fitted.note == f"Re-encoded as JPEG ({human_bytes(len(fitted.data))}) to fit the 10 MB upload limit."
    assert decode(fitted.data).format == "JPEG"


async def test_fit_shrinks_when_quality_alone_is_not_enough() -> None:
    fitted = await fit_upload(encode(noise((800, 600)), "PNG"), "image/png", limit_bytes=100 * 1024)
    assert fitted.reencoded and len(fitted.data) <= 100 * 1024
    assert fitted.width < 800 and abs(fitted.width / fitted.height - 4 / 3) < 0.01
    assert fitted.note.startswith(f"Shrunk to {fitted.width}×{fitted.height} and re-encoded as JPEG (")
    assert fitted.note.endswith(" KB) to fit the 100 KB upload limit.")


async def test_fit_leaves_small_images_untouched() -> None:
    fitted = await fit_upload(PNG, "image/png", limit_bytes=MB)
    assert fitted.data is PNG
    assert (fitted.mime, fitted.width, fitted.height, fitted.reencoded, fitted.note) == ("image/png", 8, 8, False, "")


async def test_fit_keeps_alpha_with_webp() -> None:
    image = noise((512, 512), "RGBA")
    image.putalpha(Image.linear_gradient("L").resize((512, 512)))
    data = encode(image, "PNG")
    fitted = await fit_upload(data, "image/png", limit_bytes=len(data) // 2)
    out = decode(fitted.data)
    assert (fitted.mime, out.format, out.mode) == ("image/webp", "WEBP", "RGBA")
    assert fitted.note.startswith("Re-encoded as WebP (") or fitted.note.startswith("Shrunk to")


@pytest.mark.parametrize(
    ("data", "reason"), [(encode(noise((64, 64)), "PNG"), "too_large"), (b"nope" * 9, "not_image")]
)
async def test_fit_refuses_the_impossible(data: bytes, reason: str) -> None:
    with pytest.raises(ImageRejected) as caught:
        await fit_upload(data, "image/png", limit_bytes=30)
    assert caught.value.reason == reason


RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1024, 1024), "1:1"), ((1920, 1080), "16:9"), ((1080, 1920), "9:16"), ((3000, 2000), "3:2"),
     ((2560, 1080), "21:9"), ((10000, 100), "21:9"), ((1000, 1200), "4:5"), ((1100, 1000), "1:1")],
)  # fmt: skip
def test_aspect_ratio_of(size: tuple[int, int], expected: str) -> None:
    assert aspect_ratio_of(*size, RATIOS) == expected


def test_aspect_ratio_of_needs_choices_and_a_size() -> None:
    with pytest.raises(ValueError):
        aspect_ratio_of(10, 10, ())
    with pytest.raises(ValueError):
        aspect_ratio_of(0, 10, RATIOS)


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 bytes"), (1, "1 byte"), (1023, "1023 bytes"), (820 * 1024, "820 KB"), (int(1.4 * MB), "1.4 MB"),
     (10 * MB, "10 MB"), (10 * MB - 1, "10 MB"), (int(31.2 * MB), "31.2 MB"), (3 * 1024 * MB, "3 GB")],
)  # fmt: skip
def test_human_bytes(n: int, text: str) -> None:
    assert human_bytes(n) == text


SAMPLES = [
    encode(noise((24, 16)), "PNG"),
    encode(noise((24, 16)), "JPEG"),
    encode(noise((24, 16)), "WEBP"),
    encode(noise((24, 16), "RGBA"), "WEBP", lossless=True),
    encode(noise((24, 16)).convert("P"), "GIF"),
    encode(noise((24, 16), "RGBA"), "PNG"),
]
MAGICS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBPVP8X", HEIC[:12]]


def damaged(sample: bytes, cut: int | None, flips: list[tuple[int, int]]) -> bytes:
    data = bytearray(sample if cut is None else sample[: max(cut % (len(sample) + 1), 1)])
    for at, value in flips:
        data[at % len(data)] = value
    return bytes(data)


byte_soup = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda magic, rest: magic + rest, st.sampled_from(MAGICS), st.binary(max_size=300)),
    st.builds(
        damaged,
        st.sampled_from(SAMPLES),
        st.none() | st.integers(min_value=0),
        st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=4),
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=byte_soup)
async def test_any_bytes_give_an_image_or_a_rejection(data: bytes) -> None:
    try:
        prepared = await prepare_reference(data, filename="x", max_bytes=MB, max_pixels=250_000, max_side=64)
    except ImageRejected as rejected:
        assert rejected.user_message.startswith("“x”")
    else:
        assert prepared.mime in ("image/png", "image/jpeg", "image/webp")
        assert max(prepared.width, prepared.height) <= 64


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF codec")
async def test_an_avif_photo_is_sent_on_as_jpeg() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), RED).save(buffer, "AVIF")
    prepared = await prepare_reference(
        buffer.getvalue(), filename="photo.avif", max_bytes=20 << 20, max_pixels=50_000_000, max_side=2048
    )
    assert (prepared.mime, prepared.width, prepared.height) == ("image/jpeg", 64, 48)
    assert Image.open(io.BytesIO(prepared.data)).getpixel((32, 24))[0] > 200  # still red


async def test_a_colour_keyed_png_shrunk_keeps_a_clean_transparent_edge() -> None:
    keyed = Image.new("RGB", (3000, 1000), (255, 255, 255))
    keyed.paste((0, 0, 0), (0, 0, 1500, 1000))  # the left half is the transparent colour (tRNS)
    buffer = io.BytesIO()
    keyed.save(buffer, "PNG", transparency=(0, 0, 0))
    prepared = await prepare_reference(
        buffer.getvalue(), filename="keyed.png", max_bytes=50 << 20, max_pixels=50_000_000, max_side=2048
    )
    out = Image.open(io.BytesIO(prepared.data)).convert("RGBA")
    row = [out.getpixel((x, 100)) for x in range(out.width)]
    assert prepared.mime == "image/png" and out.width == 2048
    assert not [px for px in row if px[3] == 255 and px[0] < 128]  # no opaque dark fringe where the key was resampled
